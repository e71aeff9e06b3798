"""Kill the controller with SIGKILL mid-experiment, then `automl resume` completes it exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automl.records import read_history

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "automl.cli", *args], capture_output=True,
                          text=True, env=ENV, **kw)


def _kill_when(ws: Path, proc: subprocess.Popen, finished: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            trials = json.loads((ws / "history.json").read_text())["trials"]
        except (OSError, ValueError, KeyError):
            trials = []
        done = [t for t in trials if t["status"] in ("completed", "failed", "recovered")]
        # history.json is written at most once a second while trials run: a trial that is
        # mid-run may not show as running yet, so the kill point is "this many finished".
        if len(done) >= finished:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("experiment never reached the kill point")
    os.killpg(proc.pid, signal.SIGKILL)  # the controller and everything it started
    proc.wait()


@pytest.mark.parametrize("algo", ["random", "bayesian"])
def test_sigkill_then_resume_completes_without_duplicates(fake_skill, tmp_path, algo):
    ws = tmp_path / "ws"
    total = 5
    proc = subprocess.Popen(
        [sys.executable, "-m", "automl.cli", "run", "--skill-dir", str(fake_skill),
         "--workspace", str(ws), "--progress", "none", "--algo", algo,
         "--max-recommendations", str(total), "--max-epochs", "3", "--max-concurrent", "1",
         "--set", "fake.epoch_s=1.0", "--seed", "5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, start_new_session=True)
    _kill_when(ws, proc, finished=2)
    before = {r.rec_id: r for r in read_history(ws / "history.json")[1]}

    resumed = _cli("resume", str(ws), "--progress", "none", timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    records = read_history(ws / "history.json")[1]
    ids = [r.rec_id for r in records]
    assert len(ids) == len(set(ids)) == total, ids  # same number of recommendations, no dupes
    assert all(r.status == "completed" for r in records)
    for rec_id, old in before.items():  # nothing finished before the kill was lost or re-run
        if old.status == "completed":
            new = next(r for r in records if r.rec_id == rec_id)
            assert new.results == old.results and new.params == old.params
    assert json.loads((ws / "state.json").read_text())["state"] == "completed"
    again = _cli("resume", str(ws))
    assert again.returncode == 2 and "already completed" in again.stderr
