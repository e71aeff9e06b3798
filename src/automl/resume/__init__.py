"""Continuing an interrupted experiment and rebuilding its records."""
