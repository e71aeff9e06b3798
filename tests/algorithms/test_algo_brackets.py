"""asha, hyperband_es, bohb, async_bohb and dehb end to end on Ray Tune with the fake trainer.

Small budgets (R=3, eta=3: rungs 1 and 3; Hyperband: 3@1 -> 1@3 and 2@3) so that every
algorithm runs in a few seconds; the allocation itself is tested in test_algo_schedulers.py
(simulated) and test_algo_hyperband.py (R=9, end to end).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from automl.cli import main
from automl.results.records import read_history
from automl.results.best import read_best_rec
from tests.helpers.processes import status_epochs

pytestmark = pytest.mark.usefixtures("ray_session")


def run(fake_skill: Path, workspace: Path, *extra: str) -> Path:
    code = main(["run", "--skill-dir", str(fake_skill), "--workspace", str(workspace),
                 "--progress", "none", "--max-epochs", "3", "--reduction-factor", "3", *extra])
    assert code == 0
    return workspace


def validation_epochs(folder: str) -> list[int]:
    return status_epochs(Path(folder), "val_loss")


@pytest.mark.parametrize("algo", ["asha", "hyperband_es", "bohb", "async_bohb", "dehb"])
def test_runs_end_to_end_minimizing(fake_skill, tmp_path, algo):
    ws = run(fake_skill, tmp_path / algo, "--algo", algo, "--max-recommendations", "5",
             "--metric", "val_loss", "--direction", "min", "--seed", "3")
    _, records = read_history(ws / "history.json")
    assert len(records) == 5
    assert all(r.status in ("completed", "stopped") for r in records)
    for record in records:  # trained once per epoch, never restarted
        assert validation_epochs(record.folder) == list(range(1, record.observed_budget + 1))
        assert record.rung == [1, 3].index(record.observed_budget)
        assert record.bracket is not None
    full = [r for r in records if r.observed_budget == 3]
    assert full and len(full) < 5  # some stopped at 1 epoch
    if algo not in ("asha", "async_bohb"):  # Hyperband brackets: 3@1 -> 1@3, 2@3
        assert sum(r.bracket == 0 for r in records) == 3
        assert sum(r.bracket == 0 and r.observed_budget == 3 for r in records) <= 1
        assert sum(r.bracket == 1 and r.observed_budget == 3 for r in records) == 2
        # the promoted trial of bracket 0 is its best at 1 epoch (lowest loss)
        first = sorted((r for r in records if r.bracket == 0),
                       key=lambda r: r.results[0]["val_loss"])
        assert all(r.observed_budget == 1 for r in first[1:])
    doc = read_best_rec(ws / "best_rec.json")
    assert doc["direction"] == "min" and doc["best"]["observed_budget"] == 3
    assert doc["best"]["score"] == min(r.score("val_loss") for r in full)
    # TAO's names: the file after 3 epochs is model_epoch_002 (checkpoint_epoch = TAO's epoch)
    best = Path(doc["best"]["checkpoint_uri"])
    assert best.exists() and best.name == f"model_epoch_002_step_{doc['best']['checkpoint_step']:05d}.pth"
    assert doc["best"]["checkpoint_epoch"] == 2
    for record in records:  # a promoted trial resumed from its rung's file (after 1 epoch)
        specs = sorted(Path(record.folder).glob("spec_segment_*.yaml"))
        resumes = [yaml.safe_load(p.read_text())["train"]["resume_training_checkpoint_path"]
                   for p in specs]
        if record.observed_budget == 3 and record.bracket == 0:
            assert Path(resumes[-1]).name.startswith("model_epoch_000_step_"), resumes


@pytest.mark.parametrize(("algo", "surrogate"), [("bohb", "gp"), ("async_bohb", "gp"),
                                                 ("bohb", "tpe")])
def test_progress_says_which_model_proposed_each_trial(fake_skill, tmp_path, capsys, algo,
                                                      surrogate):
    """The schema's default configuration first (the prior), then the prior's neighbourhood,
    the model or random draws - each trial's start line and record say which."""
    ws = run(fake_skill, tmp_path / algo, "--algo", algo, "--max-recommendations", "10",
             "--seed", "5", "--progress", "plain", "--max-concurrent", "1",
             "--surrogate", surrogate)
    out = capsys.readouterr().out
    started = [line for line in out.splitlines() if " started (budget " in line]
    # (a promoted trial's restart prints its start line again)
    assert len({line.split()[0] for line in started}) == 10
    assert all("proposed by " in line for line in started)
    assert "proposed by prior (default)" in started[0]
    _, records = read_history(ws / "history.json")
    by_index = sorted(records, key=lambda r: r.index)
    assert by_index[0].proposed_by == "prior (default)"
    assert by_index[0].params == {"hp.x": 0.5, "hp.y": 1, "hp.c": "a"}  # conftest's schema
    sources = {r.proposed_by.split(";")[0] for r in records}  # (a note says why the prior's
    assert sources <= {"prior (default)", "prior", surrogate, "random"}  # weight changed)
    assert surrogate in sources  # the model engages within 10 trials


def test_a_rung_without_its_checkpoint_fails_visibly(fake_skill, tmp_path):
    """The trainer deletes its checkpoints: pausing at the first rung would make a promotion
    retrain from scratch, so each trial fails there with class checkpoint, naming the file."""
    code = main(["run", "--skill-dir", str(fake_skill), "--workspace", str(tmp_path / "ws"),
                 "--progress", "none", "--max-epochs", "3", "--reduction-factor", "3",
                 "--algo", "hyperband", "--max-recommendations", "3", "--max-concurrent", "1",
                 "--set", "fake.mode=delete_ckpt"])
    _, records = read_history(tmp_path / "ws" / "history.json")
    at_rung = [r for r in records if r.budget == 1]
    assert at_rung and all(r.status == "failed" and r.failure_class == "checkpoint"
                           and "model_epoch_000_step_*.pth" in r.failure_message for r in at_rung)
    assert code == 1  # every trial failed: no best


def test_same_seed_same_configurations(fake_skill, tmp_path):
    args = ("--algo", "dehb", "--max-recommendations", "5", "--max-concurrent", "1",
            "--seed", "21")
    first = read_history(run(fake_skill, tmp_path / "a", *args) / "history.json")[1]
    second = read_history(run(fake_skill, tmp_path / "b", *args) / "history.json")[1]
    assert [r.params for r in first] == [r.params for r in second]
    assert [r.observed_budget for r in first] == [r.observed_budget for r in second]
