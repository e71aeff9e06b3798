"""Multi-objective promotion (MO-ASHA / MO-Hyperband): non-dominated sorting with crowding
distance, the schedulers driven directly, the multi-objective TPE proposer, and a 2-objective
asha run on the fake trainer whose promotions are replayed from its records."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from ray.tune.experiment import Trial

from automl.algorithms.mf_tpe import MultiFidelityTPE
from automl.brackets import HyperbandScheduler, PromotionASHA
from automl.brackets.base import PAUSED, PROMOTING, BracketScheduler
from automl.cli import main
from automl.objective import (
    Objective,
    Objectives,
    crowding_distances,
    nondominated_ranks,
)
from automl.results.best import read_best_rec
from automl.results.records import read_history
from automl.space.params import Param, SearchSpace

ACC_LAT = Objectives((Objective("acc", "max"), Objective("lat", "min")))


def test_nondominated_ranks_and_crowding_distance():
    # maximized coordinates: (2, 0), (0, 2), (1, 1) are the front; (0, 0) is behind (1, 1)
    assert nondominated_ranks([(1, 1), (0, 0), (2, 0), (0, 2), (1, 1), (-1, -1)]) == \
        [0, 1, 0, 0, 0, 2]
    assert crowding_distances([(0, 3), (1, 2), (2, 1), (3, 0), (1.5, 1.5)]) == \
        [math.inf, 1.0, 1.0, math.inf, pytest.approx(2 / 3)]
    assert crowding_distances([(0, 1), (1, 0)]) == [math.inf, math.inf]
    assert crowding_distances([(1, 1)] * 3) == [0.0, 0.0, 0.0]  # no range: no preference


def test_order_ranks_fronts_then_crowding_then_given_order():
    points = [("a", (0.5, 10.0)), ("b", (0.6, 30.0)), ("c", (0.59, 31.0)),
              ("d", (0.55, 20.0)), ("e", (0.3, 50.0))]
    # front 0: a, b, d (d inside: finite crowding); front 1: c; front 2: e (behind a and c)
    assert ACC_LAT.order(points) == ["a", "b", "d", "c", "e"]
    assert Objectives.single("acc", "max").order([(k, v[:1]) for k, v in points]) == \
        ["b", "c", "d", "a", "e"]
    weighted = Objectives(ACC_LAT.items, "weighted")  # acc - lat: a best, e worst
    assert weighted.order(points)[0] == "a" and weighted.order(points)[-1] == "e"


class _Trial:
    """What a bracket scheduler reads of a Ray Tune trial."""

    def __init__(self, trial_id: str) -> None:
        self.trial_id, self.status, self.config = trial_id, Trial.PENDING, {}

    def set_status(self, status: str) -> None:
        self.status = status

    def set_config(self, config: dict[str, Any]) -> None:
        self.config = config


def _start(scheduler: BracketScheduler, trial_id: str) -> _Trial:
    assert scheduler.take_slot(trial_id) is not None, f"no slot for {trial_id}"
    trial = _Trial(trial_id)
    scheduler.on_trial_add(None, trial)
    return trial


def _promoted(scheduler: BracketScheduler) -> list[str]:
    return [t for t, job in scheduler.jobs.items() if job.state == PROMOTING]


def test_mo_asha_promotes_by_nondominated_sorting_and_never_a_result_missing_an_objective():
    asha = PromotionASHA([1, 3], "acc", "max", slots=1, eta=3, num_configs=6,
                         objectives=ACC_LAT)
    results = {"t0": {"acc": 0.5, "lat": 10.0}, "t1": {"acc": 0.6, "lat": 30.0},
               "t2": {"acc": 0.59, "lat": 31.0},  # dominated by t1
               "t3": {"acc": 0.99},  # the best accuracy, no latency: never promotable
               "t4": {"acc": 0.3, "lat": 50.0}, "t5": {"acc": 0.55, "lat": 8.0}}
    trials: dict[str, _Trial] = {}
    order: list[str] = []

    def finish(trial_id: str) -> None:  # the promoted trial trains to R and ends
        trial = trials[trial_id]
        assert asha.on_trial_result(None, trial, {"epoch": 3, **results[trial_id]}) == "CONTINUE"
        asha.on_trial_complete(None, trial, {})

    for trial_id, result in results.items():
        trials[trial_id] = _start(asha, trial_id)
        assert asha.on_trial_result(None, trials[trial_id], {"epoch": 1, **result}) == "PAUSE"
        while promoted := _promoted(asha):
            order += promoted
            finish(promoted[0])
    # 3 results: t0 and t1 are the front, both extremes: t0 first (creation order), where
    # one objective (acc) would promote t1. 6 results: top 2 = the front {t1, t5}.
    assert order == ["t0", "t1", "t5"]
    assert asha.jobs["t3"].state == PAUSED and 0 not in asha.jobs["t3"].points
    single = PromotionASHA([1, 3], "acc", "max", slots=1, eta=3, num_configs=6)
    for trial_id in ("t0", "t1", "t2"):
        single.on_trial_result(None, _start(single, trial_id),
                               {"epoch": 1, **results[trial_id]})
    assert _promoted(single) == ["t1"]


def test_mo_hyperband_keeps_the_front_of_a_bracket_rung():
    hyperband = HyperbandScheduler([1, 3], "acc", "max", slots=3, eta=3, num_configs=5,
                                   objectives=ACC_LAT)
    assert list(hyperband.plans[0].sizes) == [3, 1]
    points = {"a": (0.59, 31.0), "b": (0.6, 30.0), "c": (0.5, 10.0)}
    for trial_id, (acc, lat) in points.items():
        hyperband.on_trial_result(None, _start(hyperband, trial_id),
                                  {"epoch": 1, "acc": acc, "lat": lat})
    # b and c are the front (both extremes: b first by creation order); a is dominated
    assert _promoted(hyperband) == ["b"]
    assert hyperband.jobs["a"].trial_id in hyperband._to_stop  # stopped later
    with pytest.raises(ValueError, match="one objective"):
        HyperbandScheduler([1, 3], "acc", "max", 1, 3, 5, early_stop=True, objectives=ACC_LAT)


def test_mo_tpe_models_the_largest_budget_with_enough_results_baseline_first():
    space = SearchSpace(params=(Param("x", "float", 0.0, 1.0, default=0.25),
                                Param("arch", "categorical", choices=("s", "m", "l"),
                                      default="m")))
    model = MultiFidelityTPE(space, "max", seed=1, top_rung=1, objectives=ACC_LAT,
                             first={"x": 0.25, "arch": "m"})
    first = model.propose("b", None, 1)
    assert first == {"x": 0.25, "arch": "m"} and model.source("b") == "baseline"
    lat = {"s": 1.0, "m": 4.0, "l": 9.0}
    for i in range(8):
        config = model.propose(f"t{i}", None, 1)
        acc = 1 - (config["x"] - 0.7) ** 2 + 0.1 * lat[config["arch"]]
        model.observe(f"t{i}", 0, 1, acc, (acc, lat[config["arch"]]))
        if i < 5:  # five of them also reach 3 epochs
            model.observe(f"t{i}", 1, 3, acc + 0.1, (acc + 0.1, lat[config["arch"]]))
    assert model.model_budget() == 3
    model.observe("t5", 0, 1, 0.5, None)  # a result missing an objective: not modelled there
    sources = {model.source(f"n{i}") for i in range(12) if model.propose(f"n{i}", None, 1)}
    assert "tpe" in sources
    frozen = model._frozen()  # the trials the model is fitted on
    complete = [t for t in frozen if t.state.name == "COMPLETE"]
    assert len(complete) == 5 and all(len(t.values) == 2 for t in complete)


# -- the real path ---------------------------------------------------------------------------

def _replay(records, objectives: Objectives, eta: int = 3) -> set[str]:
    """Promotion-based ASHA's decisions with one slot (trials created one after another, a
    promoted trial trained to R before the next starts), replayed from the records' rung-0
    results with :meth:`Objectives.order`."""
    seen, promoted = [], []
    for record in sorted(records, key=lambda r: r.index):
        first = next(r for r in record.results if int(r["epoch"]) == 1)
        seen.append((record.rec_id, tuple(first[name] for name in objectives.names)))
        while True:
            top = objectives.order(seen)[: len(seen) // eta]
            chosen = next((t for t in top if t not in promoted), None)
            if chosen is None:
                break
            promoted.append(chosen)
    return set(promoted)


@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("second", [
    "val_loss:max",
    # The aligned pair is the same code path with a one-member front: outside CI's default run.
    pytest.param("val_mf1:max", marks=pytest.mark.slow),
])
def test_asha_two_objectives_promotes_by_nondominated_sorting(fake_skill: Path, tmp_path,
                                                               second: str):
    """val_loss:max conflicts exactly with val_miou (every trial on the front: crowding
    distance decides, the extremes first); val_mf1 is aligned with it (one front member)."""
    workspace = tmp_path / "ws"
    assert main(["run", "--skill-dir", str(fake_skill), "--workspace", str(workspace),
                 "--progress", "none", "--seed", "5", "--algo", "asha", "--max-epochs", "3",
                 "--max-recommendations", "6", "--max-concurrent", "1",
                 "--objective", "val_miou", "--objective", second]) == 0
    records = read_history(workspace / "history.json")[1]
    objectives = Objectives((Objective("val_miou", "max"),
                             Objective(second.split(":")[0], "max")))
    at_r = {r.rec_id for r in records if r.observed_budget == 3}
    assert at_r and at_r == _replay(records, objectives)
    doc = read_best_rec(workspace / "best_rec.json")
    front = {m["rec_id"] for m in doc["pareto_front"]}
    assert front <= at_r and all(m["observed_budget"] == 3 for m in doc["pareto_front"])
    if second == "val_loss:max":
        assert front == at_r
    else:
        assert front == {doc["best"]["rec_id"]}


@pytest.mark.usefixtures("ray_session")
def test_nsga2_searches_two_objectives_at_full_budget(fake_skill: Path, tmp_path):
    workspace = tmp_path / "ws"
    assert main(["run", "--skill-dir", str(fake_skill), "--workspace", str(workspace),
                 "--progress", "none", "--seed", "2", "--algo", "nsga2", "--max-epochs", "2",
                 "--max-recommendations", "5", "--objective", "val_miou",
                 "--objective", "val_loss:max"]) == 0
    doc = read_best_rec(workspace / "best_rec.json")
    records = read_history(workspace / "history.json")[1]
    assert len(records) == 5 and all(r.observed_budget == 2 for r in records)
    # val_loss = 1 - val_miou: maximizing both, every distinct trial is on the front
    assert {m["rec_id"] for m in doc["pareto_front"]} == {r.rec_id for r in records}
