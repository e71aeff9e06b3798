"""Ctrl-C / SIGTERM: trials stop within a bounded time, the experiment is `canceled`, no orphans."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.helpers.processes import start_run, trainer_pids, wait_until


# SIGINT is the same path as SIGTERM (one handler): outside CI's default run, for its time budget.
@pytest.mark.parametrize("sig", [pytest.param(signal.SIGINT, marks=pytest.mark.slow), signal.SIGTERM])
def test_signal_cancels_cleanly(fake_skill: Path, tmp_path: Path, sig):
    ws = tmp_path / "ws"
    proc = start_run(fake_skill, ws, "--algo", "random", "--max-recommendations", "4",
                     "--max-epochs", "20", "--max-concurrent", "2", "--set", "fake.epoch_s=1.0",
                     "--seed", "1", output=True)
    wait_until(lambda: len(list((ws / "trials").glob("*/results/train/status.json"))) >= 2,
               proc, timeout=90, what="two trials training")
    assert trainer_pids(ws), "trainer processes should be running"
    sent = time.monotonic()
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 45, output
    time.sleep(0.5)
    assert not trainer_pids(ws), "orphan trainer processes after cancel"
    state = json.loads((ws / "state.json").read_text())
    assert state["state"] == "canceled", output
    history = json.loads((ws / "history.json").read_text())
    assert history["trials"], "what ran must be kept"
