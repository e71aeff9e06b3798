"""Run the CLI in a subprocess, wait for a kill point, kill it (resume, cancel, status tests).

Kill points are conditions on files the *trials* write themselves, atomically or append-only
(``outcome.json`` at the end of every segment, ``status.json`` lines, ``inherited/`` copies),
polled until true. ``history.json`` (with its journal) is the driver's: a trial that is running
may not show as such there yet (its trainer starts before Tune's start event), so never wait for
a ``running`` record in it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from automl.results.records import read_history
from automl.tao.lines import read_status
from automl.tao.progress import read_results

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}


def cli(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.CompletedProcess:
    """``python -m automl.cli ARGS`` to completion, output captured (``env``: default ENV)."""
    return subprocess.run([sys.executable, "-m", "automl.cli", *args], capture_output=True,
                          text=True, env=env or ENV, **kw)


def start_run(skill: Path, ws: Path, *args: str, output: bool = False,
              env: dict[str, str] | None = None) -> subprocess.Popen:
    """``automl run`` in the background, in its own process group (so a test can kill the
    controller alone, or the controller and everything it started). With ``output`` its plain
    progress lines are readable from ``proc.stdout`` (stderr included); ``env`` is added to
    ENV."""
    return subprocess.Popen(
        [sys.executable, "-m", "automl.cli", "run", "--skill-dir", str(skill),
         "--workspace", str(ws), "--progress", "plain" if output else "none", *args],
        stdout=subprocess.PIPE if output else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if output else subprocess.DEVNULL, text=output,
        env={**ENV, **(env or {})}, start_new_session=True)


def wait_until(condition: Callable[[], Any], proc: subprocess.Popen | None = None,
               timeout: float = 150.0, what: str = "the kill point", poll_s: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); fail the test if the
    process ends first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the experiment ended (exit {proc.returncode}) before {what}")
        time.sleep(poll_s)
    if proc is not None:
        proc.kill()
    pytest.fail(f"the experiment never reached {what} in {timeout:.0f}s")


def kill_controller(proc: subprocess.Popen, group: bool = True) -> None:
    """SIGKILL the controller: with ``group`` also everything in its process group (Ray's
    processes; trainers run in their own sessions), else the controller's pid alone."""
    if group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def trial_folders(ws: Path) -> list[Path]:
    root = ws / "trials"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def ended_segments(ws: Path) -> int:
    """Trials with an ``outcome.json`` (a trial writes it when a segment of it ends)."""
    return sum(1 for f in trial_folders(ws) if (f / "outcome.json").exists())


def status_epochs(folder: Path, metric: str = "val_miou") -> list[int]:
    """Epochs completed at each validation the trainer wrote into the trial's status.json
    (across all its runs, in order), read the way the engine reads TAO's dialect."""
    lines = read_status(Path(folder) / "results" / "train" / "status.json")
    return [r.epochs for r in read_results(lines) if metric in r.kpi]


def kill_when(ws: Path, proc: subprocess.Popen, finished: int) -> None:
    """Kill the controller's process group once ``finished`` trials ended (from the history
    and its journal, which has each trial end, fsync'd, before anything else learns of it)."""

    def reached() -> bool:
        try:
            records = read_history(ws / "history.json")[1]
        except (OSError, ValueError, KeyError):
            return False
        return sum(r.status in ("completed", "failed", "recovered") for r in records) >= finished

    wait_until(reached, proc, timeout=120)
    kill_controller(proc)


def trainer_pids(ws: Path) -> set[int]:
    """Fake-trainer processes of this experiment (their argv names a spec inside ``ws``)."""
    out = subprocess.run(["pgrep", "-f", f"fake_trainer.py train -e {ws}"], capture_output=True,
                         text=True)
    return {int(p) for p in out.stdout.split()}
