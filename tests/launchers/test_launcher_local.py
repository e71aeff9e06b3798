"""Local launcher: commands resolved beside this Python when not on PATH; process groups stop."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from launchers.base import LaunchSpec
from launchers.local import LocalLauncher, resolve_command


def test_console_scripts_beside_the_interpreter_are_found(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    found = resolve_command("pytest")  # installed as a console script of this Python
    assert found and Path(found).is_file()
    LocalLauncher().preflight(("pytest", "--version"))


def test_stop_kills_the_whole_process_group(tmp_path):
    code = ("import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "time.sleep(60)")
    job = LaunchSpec(argv=(sys.executable, "-c", code), cwd=tmp_path, log_path=tmp_path / "log")
    handle = LocalLauncher().start(job)
    time.sleep(0.5)
    pgid = handle.local_pid()
    handle.stop(grace_s=2)
    time.sleep(0.2)
    alive = [p for p in os.listdir("/proc")
             if p.isdigit() and _pgid(int(p)) == pgid and not _zombie(int(p))]
    assert not alive
    assert handle.poll() is not None


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _zombie(pid: int) -> bool:
    """A killed grandchild may linger as a zombie until init reaps it: it runs nothing."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
