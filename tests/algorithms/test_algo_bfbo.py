"""bfbo: batch BO (GP-UCB + local penalization) - distinct concurrent suggestions, full budget."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from automl.algorithms import AlgoContext, Budget, build_plan
from automl.algorithms.bfbo import BatchBOSearcher
from automl.cli import main
from automl.results.records import read_history
from automl.results.best import read_best_rec
from automl.space.params import Param, SearchSpace

SPACE = SearchSpace(
    params=(
        Param("lr", "float", 1e-6, 1e-3, log=True, default=1e-4),
        Param("x", "float", 0.0, 1.0, default=0.5),
        Param("batch", "int", 1, 64, math_cond="^ 2", default=8),
        Param("y", "int", 1, 5, default=1),
        Param("max_size", "int", 16, 64, default=32),
        Param("min_size", "int", 1, 63, depends_on="max_size", math_cond="< depends_on", default=8),
        Param("c", "categorical", choices=("a", "b", "c"), weights=(0.5, 0.25, 0.25), default="a"),
    ),
    pinned={"seed": 3},
)


def objective(config: dict) -> float:
    return (1.0 - (config["x"] - 0.7) ** 2 - 0.02 * abs(config["y"] - 3)
            + (0.05 if config["c"] == "b" else 0.0) - 0.01 * abs(math.log10(config["lr"]) + 4.5))


def _searcher(seed: int = 3, mode: str = "max") -> BatchBOSearcher:
    return BatchBOSearcher(SPACE, "m", mode, seed=seed, budget=2, n_initial=3, max_suggestions=20)


def _complete(searcher: BatchBOSearcher, trial_id: str, config: dict, sign: float = 1.0) -> None:
    searcher.on_trial_complete(trial_id, {"m": sign * objective(config), "epoch": 2})


def _key(config: dict) -> tuple:
    return tuple(sorted(config.items()))


def test_concurrent_suggestions_differ_and_stay_in_space():
    searcher = _searcher()
    for i in range(3):  # Sobol start-up, one at a time
        config = searcher.suggest(f"s{i}")
        _complete(searcher, f"s{i}", config)
    for round_ in range(2):  # two model-based rounds of 3 concurrent suggestions
        batch = [searcher.suggest(f"b{round_}{i}") for i in range(3)]
        for config in batch:
            SPACE.validate(config)
            assert type(config["batch"]) is int and type(config["lr"]) is float
            assert config["min_size"] < config["max_size"]
        assert len({_key(c) for c in batch}) == 3
        features = np.array([searcher.codec.features(c) for c in batch])
        gaps = [np.linalg.norm(features[i] - features[j]) for i in range(3) for j in range(i)]
        assert min(gaps) > 0.05, "local penalization spreads a batch out"
        for i, config in enumerate(batch):
            _complete(searcher, f"b{round_}{i}", config)
    assert not searcher.pending and len(searcher.observed) == 9


def test_results_below_the_budget_and_failures_are_not_modelled():
    searcher = _searcher()
    first, second, third = (searcher.suggest(t) for t in ("a", "b", "c"))
    searcher.on_trial_complete("a", {"m": 0.5, "epoch": 1})  # stopped early
    searcher.on_trial_complete("b", None, error=True)
    searcher.on_trial_complete("c", {"m": float("nan"), "epoch": 2})
    assert searcher.observed == [] and searcher.pending == {}


def test_sequential_suggestions_are_reproducible_and_improve():
    def run(seed: int) -> list[dict]:
        searcher = _searcher(seed)
        configs = []
        for i in range(8):
            config = searcher.suggest(f"t{i}")
            _complete(searcher, f"t{i}", config)
            configs.append(config)
        return configs

    first, second = run(3), run(3)
    assert first == second
    assert run(4) != first
    assert max(objective(c) for c in first[3:]) >= max(objective(c) for c in first[:3])


def test_minimize_models_the_negated_metric():
    searcher = _searcher(mode="min")
    config = searcher.suggest("a")
    searcher.on_trial_complete("a", {"m": 0.25, "epoch": 2})
    assert searcher.observed == [(config, -0.25)]


def test_save_and_restore(tmp_path):
    searcher = _searcher()
    for i in range(4):
        config = searcher.suggest(f"t{i}")
        _complete(searcher, f"t{i}", config)
    searcher.save(str(tmp_path / "state.pkl"))
    restored = _searcher(seed=99)
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.suggest("next") == searcher.suggest("next")


def test_plan_is_full_budget_fifo():
    ctx = AlgoContext(space=SPACE, metric="val_miou", mode="max", seed=1, budget=Budget(9),
                      max_recommendations=12, max_concurrent=3, population_size=4,
                      fixed_budget=True)
    plan = build_plan("bfbo", ctx)
    assert plan.scheduler is None and plan.num_samples == 12 and not plan.checkpoints
    assert isinstance(plan.search_alg, BatchBOSearcher) and plan.search_alg.n_initial == 4


# -- end to end with the fake trainer -----------------------------------------------------------

def _run(fake_skill: Path, tmp_path: Path, name: str, *extra: str) -> Path:
    workspace = tmp_path / name
    code = main(["run", "--skill-dir", str(fake_skill), "--workspace", str(workspace),
                 "--progress", "none", "--seed", "7", "--algo", "bfbo", *extra])
    assert code == 0
    return workspace


@pytest.mark.usefixtures("ray_session")
def test_bfbo_end_to_end_parallel(fake_skill, tmp_path):
    workspace = _run(fake_skill, tmp_path, "par", "--max-recommendations", "6", "--max-epochs", "2",
                     "--max-concurrent", "3", "--cpus-per-trial", "0.5",
                     "--set", "fake.epoch_s=0.2")
    space = SearchSpace.from_json(yaml.safe_load((workspace / "experiment.yaml").read_text())["space"])
    _, records = read_history(workspace / "history.json")
    assert len(records) == 6 and all(r.status == "completed" for r in records)
    assert len({_key(r.params) for r in records}) == 6
    for record in records:
        space.validate(record.params)
        assert record.observed_budget == 2  # full budget, every trial
        spec = yaml.safe_load((Path(record.folder) / "spec.yaml").read_text())
        assert spec["train"]["num_epochs"] == 2
    doc = read_best_rec(workspace / "best_rec.json")
    assert doc["best"]["score"] == max(r.score("val_miou") for r in records)
    epochs = sum(r.observed_budget for r in records)
    print(f"bfbo epochs: {epochs} for {len(records)} full-budget trials")


@pytest.mark.slow  # 30 s; the parallel run and the unit tests cover bfbo in the default suite
@pytest.mark.usefixtures("ray_session")
def test_bfbo_same_seed_same_suggestions_sequentially(fake_skill, tmp_path):
    args = ("--max-recommendations", "4", "--max-concurrent", "1", "--max-epochs", "1")
    first = _run(fake_skill, tmp_path, "a", *args)
    second = _run(fake_skill, tmp_path, "b", *args)
    params = [[r.params for r in read_history(ws / "history.json")[1]] for ws in (first, second)]
    assert params[0] == params[1] and len(params[0]) == 4
