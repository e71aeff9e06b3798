"""Ctrl-C / SIGTERM: trials stop within a bounded time, the experiment is `cancelled`, no orphans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import trainer_pids


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_cancels_cleanly(fake_skill: Path, tmp_path: Path, sig):
    ws = tmp_path / "ws"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "automl.cli", "run", "--skill-dir", str(fake_skill),
         "--workspace", str(ws), "--progress", "plain", "--algo", "random",
         "--max-recommendations", "4", "--max-epochs", "20", "--max-concurrent", "2",
         "--set", "fake.epoch_s=1.0", "--seed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # wait until trials are really training
        if len(list((ws / "trials").glob("*/results/train/status.json"))) >= 2:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("trials never started: " + (proc.stdout.read() if proc.stdout else ""))
    assert trainer_pids(ws), "trainer processes should be running"
    sent = time.monotonic()
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 45, output
    time.sleep(0.5)
    assert not trainer_pids(ws), "orphan trainer processes after cancel"
    state = json.loads((ws / "state.json").read_text())
    assert state["state"] == "cancelled", output
    history = json.loads((ws / "history.json").read_text())
    assert history["trials"], "what ran must be kept"
