"""The engine end to end on Ray Tune, with the fake trainer (fast; failure modes on demand)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automl.cli import main
from automl.results.records import read_history
from automl.results.best import read_best_rec

pytestmark = pytest.mark.usefixtures("ray_session")


def run(fake_skill: Path, tmp_path: Path, *extra: str, name: str = "ws") -> tuple[int, Path]:
    workspace = tmp_path / name
    code = main(["run", "--skill-dir", str(fake_skill), "--workspace", str(workspace),
                 "--progress", "none", "--seed", "7", *extra])
    return code, workspace


def trials(workspace: Path):
    return read_history(workspace / "history.json")[1]


def test_random_search_finds_checkpoint_and_best(fake_skill, tmp_path):
    code, ws = run(fake_skill, tmp_path, "--algo", "random", "--max-recommendations", "4",
                   "--max-epochs", "3")
    assert code == 0
    doc = read_best_rec(ws / "best_rec.json")
    best = doc["best"]
    assert best["observed_budget"] == 3
    assert Path(best["checkpoint_uri"]).name == f"model_epoch_002_step_{best['checkpoint_step']:05d}.pth"
    assert Path(best["checkpoint_uri"]).exists()
    records = trials(ws)
    assert len(records) == 4 and all(r.status == "completed" for r in records)
    xs = {r.params["hp.x"] for r in records}
    assert len(xs) == 4 and all(0.0 <= x <= 1.0 for x in xs)
    assert best["score"] == max(r.score("val_miou") for r in records)
    # train_loss (TAO's "Train metrics generated." line, after the epoch's validation) rides
    # with that epoch's validation result: kept in the results, never a result of its own.
    for record in records:
        assert [r["epoch"] for r in record.results] == [1, 2, 3]
        for result in record.results:
            assert result["train_loss"] == pytest.approx(0.8 * (1 - result["val_miou"]), rel=1e-4)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("automl-fake-skill").experiment_id],
                              filter_string=f"tags.`automl.rec_id` = '{best['rec_id']}'")
    assert runs and [m.step for m in client.get_metric_history(runs[0].info.run_id, "train_loss")] \
        == [1, 2, 3]
    # The store's Default experiment keeps its artifacts inside the workspace, not in ./mlruns.
    assert client.get_experiment("0").artifact_location == (ws / "mlartifacts" / "0").resolve().as_uri()
    state = json.loads((ws / "state.json").read_text())
    assert state["state"] == "completed"
    # Start-up is measured from ray_ready (benchmarks/startup.py): Ray was up before any trial.
    assert state["ray_ready"] <= min(r.started_at for r in records)
    # --keep-checkpoints best (default): only the best trial's scored checkpoint survives.
    left = list((ws / "trials").glob("*/results/train/model_epoch_*.pth"))
    assert left == [Path(best["checkpoint_uri"])] and state["reclaimed_bytes"] > 0


def test_recovered_trials_count(fake_skill, tmp_path):
    code, ws = run(fake_skill, tmp_path, "--algo", "random", "--max-recommendations", "2",
                   "--max-epochs", "2", "--set", "fake.mode=exit1_after_last")
    assert code == 0
    records = trials(ws)
    assert {r.status for r in records} == {"recovered"}
    assert all(r.score("val_miou") is not None and r.failure_message for r in records)
    assert read_best_rec(ws / "best_rec.json")["best"] is not None


def test_all_failing_experiment_stops_early(fake_skill, tmp_path, capsys):
    code, ws = run(fake_skill, tmp_path, "--algo", "random", "--max-recommendations", "10",
                   "--max-concurrent", "1", "--stop-after-failures", "2",
                   "--set", "fake.mode=data")
    assert code == 1
    records = trials(ws)
    assert 2 <= len(records) < 10
    assert all(r.status == "failed" and r.failure_class == "data" for r in records)
    state = json.loads((ws / "state.json").read_text())
    assert state["state"] == "failed" and "data" in state["failures"]


def test_metric_never_reported_is_a_user_error(fake_skill, tmp_path, capsys):
    """A metric the trainer never writes stops the experiment after the first validation line:
    one trial, stopped at its first eval line (not trained to its 9 epochs), one line naming
    the KPIs it does write."""
    code, ws = run(fake_skill, tmp_path, "--algo", "random", "--max-recommendations", "5",
                   "--max-concurrent", "1", "--max-epochs", "9", "--set", "fake.mode=no_metric",
                   "--set", "fake.epoch_s=0.3")
    err = capsys.readouterr().err
    assert code == 2
    assert "--metric val_miou" in err and "val_accuracy_typo" in err
    assert len(err.strip().splitlines()) == 1
    (record,) = trials(ws)
    status = (Path(record.folder) / "results" / "train" / "status.json").read_text()
    assert status.count("Eval metrics generated.") == 1
    assert record.failure_class == "metric"


def test_minimize_direction(fake_skill, tmp_path):
    code, ws = run(fake_skill, tmp_path, "--algo", "bayesian", "--max-recommendations", "3",
                   "--max-epochs", "2", "--metric", "val_loss", "--direction", "min")
    assert code == 0
    doc = read_best_rec(ws / "best_rec.json")
    assert doc["direction"] == "min"
    assert doc["best"]["score"] == min(r.score("val_loss") for r in trials(ws))


def test_same_seed_same_suggestions(fake_skill, tmp_path):
    """12 trials: TPE's 10 random start-up trials (the first is the template's configuration,
    the baseline), then 2 from the fitted model; the same seed gives the same 12. The other
    start-up draws are Optuna's RandomSampler with the seed; the last two are not, so the model
    did fit (a budget of 3 never reached it)."""
    import optuna
    import yaml

    from automl.space.params import SearchSpace

    args = ("--algo", "bayesian", "--max-recommendations", "12", "--max-epochs", "1",
            "--max-concurrent", "1")
    _, first = run(fake_skill, tmp_path, *args, name="a")
    _, second = run(fake_skill, tmp_path, *args, name="b")
    params = [r.params for r in trials(first)]
    assert len(params) == 12 and params == [r.params for r in trials(second)]
    experiment = yaml.safe_load((first / "experiment.yaml").read_text())
    space = SearchSpace.from_json(experiment["space"])
    random_draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    expected = [space.suggest(random_draws.ask()) for _ in range(12)]
    assert params[0] == {"hp.x": 0.5, "hp.y": 1, "hp.c": "a"}  # the schema's defaults
    assert params[1:10] == expected[:9]
    assert all(p != e for p, e in zip(params[10:], expected[10:]))
