"""Launchers: how a trial process is started, watched and stopped.

:data:`LAUNCHERS` is the one list of launchers: the Settings literal (``--launcher``), the engine
and ``automl cleanup`` read it. Adding a launcher is one module with a :class:`Launcher`
subclass plus one line here (README, "Extending").
"""

from __future__ import annotations

from launchers.base import Launcher
from launchers.docker import DockerLauncher
from launchers.local import LocalLauncher

LAUNCHERS: dict[str, type[Launcher]] = {
    "local": LocalLauncher,
    "docker": DockerLauncher,
}

__all__ = ["LAUNCHERS", "Launcher"]
