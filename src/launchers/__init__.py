"""Launchers: how a trial process is started, watched and stopped."""
