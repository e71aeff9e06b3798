"""Trainer faults at run time, through the real engine on Ray Tune (the fake trainer's modes).

Each experiment is small (1-2 trials of 1-3 epochs); the assertions are on ``history.json``
(status, failure class), ``best_rec.json`` and the ``--progress plain`` output, which must name
the failure class of every failed trial.

Decisions documented here:

* a hung trainer (no output, no exit) is stopped at ``--trial-timeout``: class ``timeout``, its
  process group is killed, the experiment goes on and ends normally;
* ``No space left on device`` (ENOSPC) is its own class, ``disk``, with a hint (free space, keep
  fewer checkpoints); it is not retried (another attempt on the same full disk fails the same
  way), and the experiment goes on with its next trial;
* a best trial whose checkpoint file is missing (the trainer deleted it or never wrote it) still
  counts with its score: ``best_rec.json`` has ``checkpoint_uri: null``, and ``automl run`` /
  ``automl best`` print ``checkpoint: none`` plus a one-line warning on stderr (exit 0); a
  hand-off then refuses with a one-line error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from automl.cli import main
from automl.results.failures import HINTS, classify
from automl.results.records import read_history
from automl.results.best import read_best_rec
from automl.tao.lines import parse_text

pytestmark = pytest.mark.usefixtures("ray_session")


def objective(params: dict, epoch: int) -> float:
    """The fake trainer's val_miou (tests/fixtures/fake_trainer.py)."""
    x, y, c = params["hp.x"], params["hp.y"], params["hp.c"]
    score = 1.0 - (x - 0.7) ** 2 - 0.02 * abs(y - 3) + (0.05 if c == "b" else 0.0)
    return score * (1.0 - 0.5 / (1 + epoch))


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> str:
    """One MLflow store for the module: creating a fresh sqlite store (its schema migrations)
    costs seconds per experiment, and tracking is not what these tests are about."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def run(fake_skill: Path, tmp_path: Path, capsys, tracking_uri: str):
    def go(mode: str, *extra: str) -> tuple[int, Path, str, str]:
        workspace = tmp_path / "ws"
        code = main(["run", "--skill-dir", str(fake_skill), "--workspace", str(workspace),
                     "--progress", "plain", "--seed", "11", "--algo", "random",
                     "--tracking-uri", tracking_uri, "--set", f"fake.mode={mode}", *extra])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, workspace, out, err

    return go


def records(workspace: Path):
    return sorted(read_history(workspace / "history.json")[1], key=lambda r: r.index)


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions ``text`` (e.g. a workspace path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(") ", 1)[1][:1]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def test_hung_trainer_is_stopped_at_the_trial_timeout(run):
    code, ws, out, err = run("hang", "--trial-timeout", "3",
                             "--max-recommendations", "2", "--max-concurrent", "2",
                             "--max-epochs", "2")
    assert code == 1  # no trial produced a metric; the experiment ended on its own
    trials = records(ws)
    assert len(trials) == 2
    assert all(r.status == "failed" and r.failure_class == "timeout" for r in trials)
    assert all("--trial-timeout 3s" in r.failure_message for r in trials)
    for r in trials:
        outcome = json.loads((Path(r.folder) / "outcome.json").read_text())
        assert outcome["hint"] == HINTS["timeout"] and outcome["retries"] == 0
    assert not processes_mentioning(str(ws)), "a hung trainer outlived its trial"
    assert json.loads((ws / "state.json").read_text())["state"] == "failed"
    assert out.count("[timeout: ") == 2 and "2× timeout" in out


def test_garbage_lines_in_status_json_are_skipped(run):
    code, ws, out, _ = run("garbage", "--max-recommendations", "1",
                           "--max-epochs", "2")
    assert code == 0
    (trial,) = records(ws)
    status = (Path(trial.folder) / "results" / "train" / "status.json").read_text()
    assert status.count("this is not json {{{") == 2
    assert trial.status == "completed" and [r["epoch"] for r in trial.results] == [1, 2]
    assert trial.score("val_miou") == pytest.approx(objective(trial.params, 2))
    assert read_best_rec(ws / "best_rec.json")["best"]["checkpoint_epoch"] == 1  # TAO's 0-based


def test_deleted_checkpoint_counts_but_is_reported_missing(run, capsys):
    code, ws, out, err = run("delete_ckpt",
                             "--max-recommendations", "2", "--max-epochs", "2")
    assert code == 0
    trials = records(ws)
    assert {r.status for r in trials} == {"completed"}
    best = read_best_rec(ws / "best_rec.json")["best"]
    assert best["score"] == pytest.approx(max(r.score("val_miou") for r in trials))
    assert best["observed_budget"] == 2
    assert best["checkpoint_uri"] is None and best["checkpoint_epoch"] is None
    assert "checkpoint: none" in out
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and best["rec_id"] in warning[0] and "no checkpoint" in warning[0]
    # `automl best` says the same; a hand-off would refuse (no file to hand off).
    assert main(["best", str(ws)]) == 0
    out, err = capsys.readouterr()
    assert "checkpoint: none" in out and "no model to hand off" in err


def test_disk_full_is_classified_and_the_experiment_goes_on(run):
    code, ws, out, _ = run("disk_full", "--max-recommendations", "2",
                           "--max-concurrent", "1", "--max-epochs", "2")
    # TAO writes the checkpoint after the epoch's status lines: the first epoch's result is in
    # before the disk fills, so the experiment has a (1-epoch) best and ends normally.
    assert code == 0
    trials = records(ws)
    assert len(trials) == 2, "the experiment stops only after --stop-after-failures trials"
    for r in trials:
        assert r.status == "failed" and r.failure_class == "disk"
        assert "No space left on device" in r.failure_message
        assert r.retries == 0  # not an infrastructure failure: not retried
    assert out.count("[disk: ") == 2
    assert "2× disk (no space left on device: free disk space" in out


def test_nan_metric_is_diverged(run):
    code, ws, out, _ = run("nan", "--max-recommendations", "1",
                           "--max-epochs", "2")
    (trial,) = records(ws)
    assert trial.status == "failed" and trial.failure_class == "diverged"
    assert "val_miou is nan after 2 epoch(s)" in trial.failure_message
    # The NaN never reaches the scheduler or the history; epoch 1 stays as context.
    assert [r["epoch"] for r in trial.results] == [1]
    assert "[diverged: " in out and "1× diverged (the metric or loss became NaN/inf" in out
    best = read_best_rec(ws / "best_rec.json")["best"]
    assert code == 0 and best["observed_budget"] == 1  # honest: the best seen was at 1 epoch


def test_exit_137_is_oom_with_its_hint(run):
    code, ws, out, _ = run("oom", "--max-recommendations", "1",
                           "--max-epochs", "2")
    (trial,) = records(ws)
    assert trial.status == "failed" and trial.failure_class == "oom"
    assert "CUDA out of memory" in trial.failure_message
    assert "[oom: " in out and f"1× oom ({HINTS['oom']})" in out


def test_torn_last_line_keeps_the_results_before_it(run):
    code, ws, out, _ = run("torn", "--max-recommendations", "1",
                           "--max-epochs", "3")
    assert code == 0
    (trial,) = records(ws)
    status = (Path(trial.folder) / "results" / "train" / "status.json").read_text()
    assert not status.endswith("\n")  # the torn line is really there
    # The process exited 0 without its closing line, short of its budget: interrupted (TAO's
    # SIGTERM path), so it continued from epoch 2's checkpoint and tore again; after
    # --max-retries it fails as interrupted. The torn epoch-3 lines are skipped, epochs 1-2 read.
    assert (trial.status, trial.failure_class) == ("failed", "interrupted")
    assert [r["epoch"] for r in trial.results] == [1, 2]
    assert trial.score("val_miou") == pytest.approx(objective(trial.params, 2))
    best = read_best_rec(ws / "best_rec.json")["best"]
    assert best["observed_budget"] == 2 and best["checkpoint_epoch"] == 1


def test_exit_1_after_the_last_epoch_is_recovered(run):
    code, ws, out, _ = run("exit1_after_last",
                           "--max-recommendations", "1", "--max-epochs", "2")
    assert code == 0
    (trial,) = records(ws)
    assert trial.status == "recovered" and trial.failure_class == "error"
    assert "cleanup failed" in trial.failure_message
    assert trial.score("val_miou") == pytest.approx(objective(trial.params, 2))
    best = read_best_rec(ws / "best_rec.json")["best"]
    assert best["rec_id"] == trial.rec_id and best["observed_budget"] == 2
    assert Path(best["checkpoint_uri"]).name == "model_epoch_001_step_00020.pth"
    assert f"{trial.rec_id} recovered at epoch 2" in out and "[error: " in out


def test_disk_full_classification_unit():
    failure = parse_text(json.dumps({"status": "FAILURE",
                                     "message": "OSError: [Errno 28] No space left on device"}))
    assert classify(1, failure, "") == ("disk", "OSError: [Errno 28] No space left on device")
    assert classify(1, [], "torch.save: ENOSPC")[0] == "disk"
    assert classify(1, [], "OSError: [Errno 122] Disk quota exceeded")[0] == "disk"
    assert classify(137, [], "No space left on device")[0] == "oom"  # exit code first
