"""An interrupted trial continues from its last complete checkpoint, on the TAO-dialect path.

A FIFO algorithm (``random``) reports no checkpoints to Tune, so before automl.resume.continuation
a trial cut at epoch k trained again from epoch 0 (status.json: epochs 1, 2, then 1, 2, 3 ...).
Each test cuts a trial after it validated and checkpointed k >= 2 epochs, then reads status.json
the way the engine reads TAO's dialect: every epoch is validated exactly once (the resumed
process continues at k + 1), its "Resuming training from checkpoint" line names a finished epoch's
file that the engine chose, and every recorded result is the uninterrupted run's (the fake
trainer's score is a known function of the hyperparameters and the epochs trained).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from automl.results.records import read_history
from automl.tao.checkpoints import CheckpointFile
from automl.tao.lines import read_status
from automl.tao.progress import RESUME_PREFIX, runs
from tests.helpers.processes import (
    cli,
    kill_controller,
    start_run,
    status_epochs,
    trial_folders,
    wait_until,
)

R = 4  # epochs per trial


def objective(params: dict, epochs: int) -> float:
    """The fake trainer's val_miou (tests/fixtures/fake_trainer.py)."""
    x, y, c = params["hp.x"], params["hp.y"], params["hp.c"]
    score = 1.0 - (x - 0.7) ** 2 - 0.02 * abs(y - 3) + (0.05 if c == "b" else 0.0)
    return score * (1.0 - 0.5 / (1 + epochs))


def cut_trial(ws: Path) -> Path | None:
    """A trial that validated and checkpointed at least 2 epochs (the last one validated
    included) and is still training."""
    for folder in trial_folders(ws):
        epochs = status_epochs(folder)
        if len(epochs) >= 2 and epochs[-1] < R and (folder / "results" / "train" / (
                f"model_epoch_{epochs[-1] - 1:03d}_step_{epochs[-1] * 10:05d}.pth")).exists():
            return folder
    return None


def resumed_from(folder: Path) -> list[CheckpointFile]:
    """The checkpoints the trainer's later processes resumed from (their resume lines)."""
    lines = read_status(folder / "results" / "train" / "status.json")
    named = [line.message[len(RESUME_PREFIX):].strip() for run in runs(lines)[1:] for line in run
             if line.message.startswith(RESUME_PREFIX)]
    return [CheckpointFile.parse(Path(path)) for path in named]


def check_continued(ws: Path, cut: Path) -> None:
    lines = read_status(cut / "results" / "train" / "status.json")
    before = [e for e in status_epochs(cut) if e <= max(
        line.epoch + 1 for line in runs(lines)[0] if line.epoch is not None)]
    epochs = status_epochs(cut)
    assert epochs == list(range(1, R + 1)), f"an epoch trained twice or missing: {epochs}"
    (resume,) = resumed_from(cut)  # one continuation, from the last finished epoch's file
    assert resume is not None and resume.epochs == max(before) >= 2, (resume, before)
    spec = (cut / "spec.yaml").read_text()
    assert f"resume_training_checkpoint_path: {resume.path}" in spec  # named by the engine
    records = read_history(ws / "history.json")[1]
    assert all(r.status == "completed" for r in records), [(r.rec_id, r.status) for r in records]
    for record in records:  # the results of an uninterrupted run, each epoch once
        assert [r["epoch"] for r in record.results] == list(range(1, R + 1)), record.results
        for result in record.results:
            assert result["val_miou"] == pytest.approx(objective(record.params, result["epoch"]))
    for folder in trial_folders(ws):
        assert status_epochs(folder) == list(range(1, R + 1)), folder.name


def run_args() -> list[str]:
    return ["--algo", "random", "--max-recommendations", "2", "--max-epochs", str(R),
            "--max-concurrent", "1", "--set", "fake.epoch_s=0.8", "--seed", "7",
            "--keep-checkpoints", "all"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_cut_trial_continues_at_the_next_epoch_after_resume(fake_skill, tmp_path, sig):
    """Ctrl-C/SIGTERM of ``automl run`` (the service's pause) or SIGKILL of the controller and
    its Ray processes, then ``automl resume``."""
    ws = tmp_path / "ws"
    proc = start_run(fake_skill, ws, *run_args())
    cut = wait_until(lambda: cut_trial(ws), proc, what="a trial with 2 checkpointed epochs")
    if sig == signal.SIGKILL:  # everything dies at once, the trainer too (a machine crash)
        os.killpg(json.loads((cut / "trainer.json").read_text())["pid"], signal.SIGKILL)
        kill_controller(proc)
    else:
        proc.send_signal(sig)
        proc.wait(timeout=90)
        assert json.loads((ws / "state.json").read_text())["state"] == "canceled"
    resumed = cli("resume", str(ws), "--progress", "none", timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    check_continued(ws, cut)


def test_trainer_sigterm_from_outside_is_resumed_not_completed(fake_skill, tmp_path):
    """``docker stop``/eviction of the trainer alone: TAO exits 0 without its closing line after
    writing an exception checkpoint; the trial is not recorded as completed at 2 epochs, it
    continues in the same run from the last finished epoch (named explicitly, not TAO's latest)."""
    ws = tmp_path / "ws"
    proc = start_run(fake_skill, ws, *run_args())
    cut = wait_until(lambda: cut_trial(ws), proc, what="a trial with 2 checkpointed epochs")
    trainer = json.loads((cut / "trainer.json").read_text())["pid"]
    os.kill(trainer, signal.SIGTERM)
    assert proc.wait(timeout=240) == 0
    check_continued(ws, cut)
    first = runs(read_status(cut / "results" / "train" / "status.json"))[0]
    assert first[-1].message == "Train metrics generated."  # no closing line, and it exited 0
    exception = [c for c in (CheckpointFile.parse(p) for p in (cut / "results" / "train").iterdir())
                 if c and c.path.name not in {f"model_epoch_{e - 1:03d}_step_{e * 10:05d}.pth"
                                              for e in range(1, R + 1)}]
    assert exception, "the fake trainer wrote TAO's exception checkpoint"
    outcome = json.loads((cut / "outcome.json").read_text())
    assert outcome["status"] == "completed" and outcome["retries"] == 1
    assert "continues after" in (cut / "train.log").read_text()
