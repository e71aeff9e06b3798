"""Hyperband end to end on Ray Tune with the fake trainer: textbook allocation, promotion resumes.

R=9, eta=3, 17 configurations (one Hyperband iteration): bracket s=2: 9@1 -> 3@3 -> 1@9;
s=1: 5@3 -> 1@9; s=0: 3@9. Counted twice: from history.json and from the trainers' own
status.json files.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from automl.cli import main
from automl.results.records import read_history
from automl.results.best import read_best_rec
from automl.tao.lines import read_status
from automl.tao.progress import runs
from tests.helpers.processes import status_epochs

pytestmark = pytest.mark.usefixtures("ray_session")


def run(fake_skill: Path, workspace: Path, *extra: str) -> Path:
    code = main(["run", "--skill-dir", str(fake_skill), "--workspace", str(workspace),
                 "--progress", "none", "--seed", "11", "--max-epochs", "9",
                 "--reduction-factor", "3", "--keep-checkpoints", "all", *extra])
    assert code == 0
    return workspace


def test_hyperband_textbook_allocation_and_promotion_by_resume(fake_skill, tmp_path):
    ws = run(fake_skill, tmp_path / "ws", "--algo", "hyperband", "--max-recommendations", "17",
             "--max-concurrent", "2")
    experiment, records = read_history(ws / "history.json")
    assert len(records) == 17
    assert "bracket 0 (s=2): 9@1->3@3->1@9" in experiment["plan"]

    # Configurations per (bracket, rung epoch), from the records and from status.json
    rungs = {0: (1, 3, 9), 1: (3, 9), 2: (9,)}  # bracket -> its rung epochs
    reached = Counter((r.bracket, e) for r in records for e in rungs[r.bracket]
                      if any(x["epoch"] == e for x in r.results))
    assert reached == Counter({(0, 1): 9, (0, 3): 3, (0, 9): 1, (1, 3): 5, (1, 9): 1, (2, 9): 3})
    from_status = Counter((r.bracket, e) for r in records for e in set(status_epochs(r.folder))
                          if e in rungs[r.bracket])
    assert from_status == reached
    assert Counter(r.budget for r in records) == Counter({1: 6, 3: 6, 9: 5})
    assert {r.rung for r in records} == {0, 1, 2}

    # Every epoch is trained once: promotion continues from the rung checkpoint
    spent = sum(len(status_epochs(r.folder)) for r in records)
    assert spent == sum(r.observed_budget for r in records) == 69  # vs 17 * 9 = 153
    for record in records:
        assert status_epochs(record.folder) == list(range(1, record.observed_budget + 1))

    top = next(r for r in records if r.bracket == 0 and r.observed_budget == 9)
    folder = Path(top.folder)
    lines = read_status(folder / "results" / "train" / "status.json")
    assert len(runs(lines)) == 3  # three trainer processes: 1 | 2, 3 | 4..9
    segments = [yaml.safe_load((folder / f"spec_segment_{i}.yaml").read_text())["train"]
                for i in range(3)]
    assert [s["num_epochs"] for s in segments] == [1, 3, 9]
    assert segments[0]["resume_training_checkpoint_path"] in ("", None)
    for segment, epoch in ((segments[1], 1), (segments[2], 3)):
        resume = Path(segment["resume_training_checkpoint_path"])
        # TAO's name: the 0-based epoch of the last epoch trained (rung 1 -> epoch 000)
        assert resume.name == f"model_epoch_{epoch - 1:03d}_step_{epoch * 10:05d}.pth"
        assert resume.parent == folder / "results" / "train" and resume.exists()

    # The survivors are the best of their rung
    first = [r for r in records if r.bracket == 0]
    at_1 = sorted(first, key=lambda r: -r.results[0]["val_miou"])
    assert {r.rec_id for r in at_1[:3]} == {r.rec_id for r in first if r.observed_budget >= 3}

    best = read_best_rec(ws / "best_rec.json")["best"]
    assert best["observed_budget"] == 9
    full = [r for r in records if r.observed_budget == 9]
    assert best["score"] == max(r.score("val_miou") for r in full)

