"""Several objectives, the Pareto front and the baseline, through the real engine on the fake
trainer (val_loss = 1 - val_miou there, so val_miou:max with val_loss:max conflict exactly:
every trial is on the front), and the objective arithmetic itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from automl.cli import main
from automl.objective import Objective, Objectives, parse_objective
from automl.results.best import read_best_rec
from automl.results.records import read_history

MO = Objectives((Objective("acc", "max"), Objective("latency", "min", weight=2.0, scale=10.0)))


def test_parse_objective_reads_from_the_right():
    assert parse_objective("val_miou") == {"metric": "val_miou"}
    assert parse_objective("latency_ms:min") == {"metric": "latency_ms", "direction": "min"}
    assert parse_objective("a:b:max:0.5") == {"metric": "a:b", "direction": "max", "weight": 0.5}


def test_dominance_front_and_weighted_sum():
    assert MO.dominates((0.9, 5.0), (0.8, 5.0)) and not MO.dominates((0.9, 5.0), (0.9, 5.0))
    assert not MO.dominates((0.9, 9.0), (0.8, 5.0))
    points = [("a", (0.9, 9.0)), ("b", (0.8, 5.0)), ("c", (0.7, 6.0)), ("d", (0.9, 9.0))]
    assert MO.front(points) == ["a", "b", "d"]
    assert MO.scalar((0.9, 10.0)) == pytest.approx(0.9 - 2.0)


def run(fake_skill: Path, tmp_path: Path, *extra: str) -> tuple[int, Path]:
    workspace = tmp_path / "ws"
    code = main(["run", "--skill-dir", str(fake_skill), "--workspace", str(workspace),
                 "--progress", "none", "--seed", "3", "--max-epochs", "2", *extra])
    return code, workspace


@pytest.mark.usefixtures("ray_session")
def test_two_objectives_keep_a_front_with_checkpoints_and_the_baseline_first(
        fake_skill, tmp_path, capsys):
    code, ws = run(fake_skill, tmp_path, "--algo", "bayesian", "--max-recommendations", "4",
                   "--objective", "val_miou", "--objective", "val_loss:max",
                   "--objective", "checkpoint_mb")
    assert code == 0
    doc = read_best_rec(ws / "best_rec.json")
    records = read_history(ws / "history.json")[1]
    assert [o["metric"] for o in doc["objectives"]] == ["val_miou", "val_loss", "checkpoint_mb"]
    assert [o["direction"] for o in doc["objectives"]] == ["max", "max", "min"]
    front = doc["pareto_front"]
    assert len(front) >= 2
    for member in front:  # exact checkpoints, kept by retention, measured size on record
        checkpoint = Path(member["checkpoint_uri"])
        assert checkpoint.exists() and member["observed_budget"] == 2
        assert member["objectives"]["checkpoint_mb"] == pytest.approx(
            checkpoint.stat().st_size / 1e6)
    assert doc["best"]["rec_id"] in {m["rec_id"] for m in front}
    # The template's configuration (the fake schema's defaults) is the first trial.
    first = min(records, key=lambda r: r.index)
    assert doc["baseline"]["rec_id"] == first.rec_id
    assert first.params["hp.x"] == pytest.approx(0.5)
    gain = doc["comparison_to_baseline"]["val_miou"]
    assert gain["gain"] == pytest.approx(doc["best"]["score"] - doc["baseline"]["scores"]["val_miou"])
    out = capsys.readouterr().out
    assert "over the template's configuration" in out
    assert main(["best", str(ws), "--pareto"]) == 0
    printed = capsys.readouterr().out
    assert all(m["rec_id"] in printed for m in front)
    # Any front member can be handed off (the spec is written, not run).
    info = fake_skill / "references" / "skill_info.yaml"
    skill_info = yaml.safe_load(info.read_text())
    skill_info["actions"]["evaluate"] = {"command": "segformer evaluate -e {config_path}"}
    info.write_text(yaml.safe_dump(skill_info))
    other = next(m for m in front if m["rec_id"] != doc["best"]["rec_id"])
    assert main(["handoff", "evaluate", str(ws), "--trial", other["rec_id"]]) == 0
    assert other["checkpoint_uri"] in capsys.readouterr().out


@pytest.mark.usefixtures("ray_session")
def test_no_prior_under_random_says_the_baseline_was_not_trained(fake_skill, tmp_path, capsys):
    code, ws = run(fake_skill, tmp_path, "--algo", "random", "--max-recommendations", "2",
                   "--no-prior")
    assert code == 0
    doc = read_best_rec(ws / "best_rec.json")
    assert doc["baseline"] is None and doc["comparison_to_baseline"] is None
    assert "not trained" in doc["baseline_note"]
    assert [o["metric"] for o in doc["objectives"]] == ["val_miou"]
    assert len(doc["pareto_front"]) == 1 and doc["pareto_front"][0]["rec_id"] == doc["best"]["rec_id"]
    assert "not trained" in capsys.readouterr().out


def test_several_objectives_are_refused_by_single_objective_algorithms(fake_skill, tmp_path,
                                                                        capsys):
    code, _ = run(fake_skill, tmp_path, "--algo", "dehb", "--objective", "val_miou",
                  "--objective", "val_loss")
    assert code == 2 and "--algo dehb optimizes one objective" in capsys.readouterr().err
    code, _ = run(fake_skill, tmp_path, "--objective", "checkpoint_mb", "--objective", "val_miou")
    assert code == 2 and "cannot be the first" in capsys.readouterr().err
