"""Every algorithm survives a SIGKILL of its controller at several points and `automl resume`.

Matrix: algorithm × kill point. The controller (and its process group: Ray) is killed with
SIGKILL at

* ``early``: the first trial is training, nothing has ended;
* ``mid``: some trial segments ended - for the bracket family a rung is full and a promotion is
  pending or starting; for PBT/PB2 an exploit has happened (an ``inherited/`` copy exists);
* ``late``: every configuration has started and all but one have ended a segment (PBT/PB2: all
  members but one reached the full budget).

then ``automl resume`` must finish the experiment with: no duplicate trial and the same number
of recommendations (PBT/PB2: the same population, every member at the full budget); the trials
that had ended before the kill unchanged (params and results); no epoch trained twice by a trial
that was not cut off by the kill (paused trials are promoted from their rung checkpoint, not
retrained); and the search/scheduler state restored, checked by what a silent reset would
break: a reset sampler proposes the first configurations again (so every trial's params must be
distinct), a reset bracket scheduler creates configurations beyond the budget and restarts paused
trials (so the count and the brackets' textbook allocation must hold), a reset PBT forgets its
lineage (so every member's recorded parent must match its ``lineage.json`` and the lineage
written before the kill must be kept).

The default run has the ``mid`` kill point of one algorithm per way of saving state (see
``DEFAULT``); the others are ``slow``: ``python3 -m pytest -m slow tests/resume/test_resume_matrix.py``
runs them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from automl.brackets import hyperband_brackets
from automl.results.records import read_history
from automl.run.ray.tune_state import MIN_INTERVAL_ENV
from automl.tao.lines import read_status
from tests.helpers.processes import (cli, ended_segments, kill_controller, start_run,
                                     status_epochs, trial_folders, wait_until)

FIFO = ("random", "bayesian", "bfbo")
BRACKETS = ("asha", "hyperband", "hyperband_es", "bohb", "dehb")
POPULATION = ("pbt", "pb2")
ALGOS = FIFO + BRACKETS + POPULATION
POINTS = ("early", "mid", "late")

TOTAL = 5  # recommendations (FIFO and brackets)
POP = 4  # population (PBT/PB2): more members than the 2 trial slots, so members take turns
R = {"fifo": 2, "brackets": 3, "population": 4}  # --max-epochs (brackets: rungs 1, 3)
EPOCH_S = {"fifo": 0.4, "brackets": 0.4, "population": 0.3}


def family(algo: str) -> str:
    return "fifo" if algo in FIFO else "brackets" if algo in BRACKETS else "population"


def run_args(algo: str) -> list[str]:
    fam = family(algo)
    args = ["--algo", algo, "--max-epochs", str(R[fam]), "--seed", "5",
            "--set", f"fake.epoch_s={EPOCH_S[fam]}", "--keep-checkpoints", "all"]
    if fam == "population":
        return [*args, "--population-size", str(POP)]
    return [*args, "--max-recommendations", str(TOTAL), "--max-concurrent", "1"]


def _started(folder: Path) -> bool:
    return (folder / "results" / "train" / "status.json").exists()


def kill_point(ws: Path, algo: str, point: str):
    """The condition (on files the trials write themselves) that says the point is reached."""
    fam = family(algo)
    total = POP if fam == "population" else TOTAL

    def early() -> bool:
        folders = trial_folders(ws)
        return any(_started(f) for f in folders) and ended_segments(ws) == 0

    def mid() -> bool:
        if fam == "population":  # an exploit copied a parent's checkpoint
            return any((f / "inherited").is_dir() for f in trial_folders(ws))
        # FIFO: 2 trials ended. Brackets: 3 rung-0 segments ended (hyperband: bracket 0's rung
        # is full and its best is being promoted; asha: the first promotion is due).
        return ended_segments(ws) >= (2 if fam == "fifo" else 3)

    def late() -> bool:
        folders = trial_folders(ws)
        if fam == "population":
            return sum(R[fam] in status_epochs(f) for f in folders) >= total - 1
        return len(folders) == total and ended_segments(ws) >= total - 1

    return {"early": early, "mid": mid, "late": late}[point]


def _training(folder: Path) -> bool:
    """Whether the trainer was mid-run or starting: no status.json yet, or its last line is not a
    final one. A trainer that had not written its first line at the kill can still train an
    epoch or two before it dies with its Ray worker (seen under load); those epochs were never
    reported, so the resumed trial trains them again from its last registered checkpoint."""
    lines = read_status(folder / "results" / "train" / "status.json")
    return not lines or lines[-1].status not in ("SUCCESS", "FAILURE")


def snapshot_trials(ws: Path) -> dict[str, dict]:
    """What each trial folder holds at the kill: validation epochs, segments, lineage, outcome."""
    out = {}
    for folder in trial_folders(ws):
        lineage = folder / "lineage.json"
        out[folder.name] = {
            "epochs": status_epochs(folder),
            "segments": len(list(folder.glob("spec_segment_*.yaml"))),
            "lineage": json.loads(lineage.read_text()) if lineage.exists() else [],
            "training": _training(folder),
        }
    return out


def mlflow_status(ws: Path, rec_ids: set[str]) -> dict[str, str]:
    """The ``status`` tag of these trials' MLflow runs (read from the workspace's store)."""
    if not rec_ids:
        return {}
    with sqlite3.connect(ws / "mlflow.db") as db:
        rows = db.execute(
            "SELECT r.value, s.value FROM tags r JOIN tags s ON s.run_uuid = r.run_uuid "
            "WHERE r.key = 'automl.rec_id' AND s.key = 'status'").fetchall()
    return {rec_id: status for rec_id, status in rows if rec_id in rec_ids}


def params_key(params: dict) -> tuple:
    return tuple(sorted((k, round(v, 9) if isinstance(v, float) else v) for k, v in params.items()))


def check_resumed(ws: Path, algo: str, before: dict, at_kill: dict) -> None:
    fam = family(algo)
    records = read_history(ws / "history.json")[1]
    ids = [r.rec_id for r in records]
    assert len(ids) == len(set(ids)), f"duplicate trial records: {ids}"
    assert json.loads((ws / "state.json").read_text())["state"] == "completed"
    assert {f.name for f in trial_folders(ws)} == set(ids), "a trial folder without a record"
    # A trial started in the controller step the kill cut short never reached Tune's saved
    # state: resume sets its folder aside and the restored search proposes it again (reconcile).
    abandoned = {p.name for p in (ws / "abandoned").iterdir()} if (ws / "abandoned").is_dir() else set()
    assert not abandoned & set(ids)
    if fam == "fifo":  # the searcher creates them again instead (automl.resume.replay)
        assert not abandoned, abandoned
    assert set(at_kill) - abandoned <= set(ids), "a trial started before the kill was forgotten"
    assert all(status == "set_aside" for status in mlflow_status(ws, abandoned).values()), \
        mlflow_status(ws, abandoned)
    for rec_id, old in before.items():  # what had ended before the kill is kept as it was
        if old.status in ("completed", "recovered", "failed", "stopped"):
            new = next(r for r in records if r.rec_id == rec_id)
            assert (new.status, new.params, new.results) == (old.status, old.params, old.results), \
                rec_id
    assert all(r.status in ("completed", "stopped") for r in records), \
        [(r.rec_id, r.status, r.failure_message) for r in records]
    # A trial the kill did not cut off (it was not training at that moment) never trains an
    # epoch twice: a paused one is promoted from its rung checkpoint, an ended one stays ended.
    for record in records:
        snap = at_kill.get(record.rec_id)
        epochs = status_epochs(Path(record.folder))
        if fam != "population" and not (snap and snap["training"]):
            assert epochs == sorted(set(epochs)), (record.rec_id, epochs)
    if fam == "population":
        check_population(ws, records, at_kill)
        return
    assert len(ids) == TOTAL, f"{len(ids)} recommendations instead of {TOTAL}"
    # A sampler whose state was reset after the resume proposes the first configurations again.
    keys = [params_key(r.params) for r in records]
    assert len(set(keys)) == len(keys), f"a configuration was proposed twice: {keys}"
    if fam == "fifo":
        assert all(r.observed_budget == R[fam] for r in records)
    else:
        check_brackets(algo, records)


def check_brackets(algo: str, records) -> None:
    """The allocation is the scheduler's (a reset one would create more configurations, rerun
    paused ones, or lose a bracket's promotions)."""
    budgets = Counter((r.bracket, r.observed_budget) for r in records)
    if algo == "asha":
        # rungs 1 and 3, eta 3: the top third of rung 0 is promoted; at the end the best paused
        # trial of the highest rung is carried to R if none reached it.
        assert sum(n for (_, b), n in budgets.items() if b == 3) >= 1, budgets
        assert all(b in (1, 3) for (_, b) in budgets), budgets
        return
    plans = hyperband_brackets(2, 3, TOTAL)
    expected = Counter()
    for plan in plans:
        for i, n in enumerate(plan.sizes):
            survivors = plan.sizes[i + 1] if i + 1 < len(plan.sizes) else 0
            expected[(plan.index, [1, 3][plan.start + i])] += n - survivors
    if algo == "hyperband_es":  # a hopeless bracket may stop before its last rung
        for (bracket, budget), n in budgets.items():
            assert budget in (1, 3) and n <= expected[(bracket, budget)] + \
                expected.get((bracket, 3), 0), budgets
        return
    assert budgets == expected, budgets


def check_population(ws: Path, records, at_kill: dict) -> None:
    """The same population trained to the full budget; lineage kept and consistent."""
    assert len(records) == POP, f"{len(records)} members instead of the population of {POP}"
    assert all(r.observed_budget == R["population"] for r in records), \
        [(r.rec_id, r.observed_budget) for r in records]
    for record in records:
        lineage_path = Path(record.folder) / "lineage.json"
        lineage = json.loads(lineage_path.read_text()) if lineage_path.exists() else []
        old = at_kill.get(record.rec_id, {}).get("lineage", [])
        assert lineage[:len(old)] == old, f"{record.rec_id}: lineage before the kill rewritten"
        if record.parent:
            assert lineage and lineage[-1]["parent"] == record.parent, (record.rec_id, lineage)


# The default run (CI: 2 cores, a 3-minute allowance for these tests) kills mid-experiment once
# per way the state is saved: random, bayesian and hyperband in their own resume tests
# (test_resume.py, test_algo_hyperband_resume.py); bfbo (its own searcher), asha (promotion
# scheduler), bohb (Hyperband scheduler + TPE proposer, saved as dehb's and hyperband_es's) and
# pbt (population state in the generator, as pb2's) here. Every other case is slow.
DEFAULT = ("asha", "bohb")  # FIFO resume (deferred saves, replays): test_resume.py; PBT: test_algo_pbt
CASES = [pytest.param(algo, point, id=f"{algo}-{point}",
                      marks=() if point == "mid" and algo in DEFAULT else pytest.mark.slow)
         for algo in ALGOS for point in POINTS]


@pytest.mark.parametrize("algo, point", CASES)
def test_sigkill_and_resume(fake_skill, tmp_path, algo, point):
    ws = tmp_path / "ws"
    started = time.monotonic()
    # FIFO: Tune's saves of added/ended trials are held for the whole run, so every kill leaves
    # trials the saved state lacks, which resume creates again (automl.resume.replay).
    env = {MIN_INTERVAL_ENV: "3600"} if family(algo) == "fifo" else {}
    proc = start_run(fake_skill, ws, *run_args(algo), env=env)
    wait_until(kill_point(ws, algo, point), proc, what=f"the {point} kill point")
    kill_controller(proc)
    at_kill = snapshot_trials(ws)
    before = {r.rec_id: r for r in read_history(ws / "history.json")[1]} \
        if (ws / "history.json").exists() else {}

    resumed = cli("resume", str(ws), "--progress", "none", timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    check_resumed(ws, algo, before, at_kill)
    print(f"{algo}-{point}: {time.monotonic() - started:.1f}s")


class _Trial:
    """What Ray's PBT reads of a trial (hashable by identity, like Tune's Trial)."""

    def __init__(self, index: int) -> None:
        self.trial_id, self.experiment_tag = f"t{index}", str(index)
        self.config, self.checkpoint = {"hp.x": 0.1 * index, "hp.c": "a"}, f"checkpoint-{index}"


@pytest.mark.parametrize("algo", POPULATION)
def test_population_scheduler_state_travels_with_the_searcher(algo):
    """Tune saves the searcher, not the scheduler (``Tuner.restore`` rebuilds the scheduler as
    it was at the start): what PBT/PB2 learned - each member's score, perturbation and train
    time, the exploit count, PB2's GP data - comes back from the saved searcher state, by id."""
    import pickle

    import pandas as pd
    from ray.tune.schedulers.pbt import _PBTTrialState

    from automl.algorithms import AlgoContext, Budget, build_plan
    from automl.space.params import Param, SearchSpace

    space = SearchSpace(params=(Param("hp.x", "float", 0.0, 1.0, default=0.5),
                                Param("hp.c", "categorical", choices=("a", "b"), default="a")))
    ctx = AlgoContext(space=space, metric="val_miou", mode="max", seed=3, budget=Budget(4, 1, 3),
                      max_recommendations=3, max_concurrent=2, population_size=3,
                      fixed_budget=False)
    first = build_plan(algo, ctx)
    for index in range(3):
        trial = _Trial(index)
        state = first.scheduler._trial_state[trial] = _PBTTrialState(trial)
        state.last_score, state.last_perturbation_time, state.last_train_time = index / 10, 2, 3
    first.scheduler._num_perturbations = 2
    if algo == "pb2":
        first.scheduler.data = pd.DataFrame({"Trial": ["t0"], "Time": [2], "hp.x": [0.1],
                                             "Reward": [0.01]})
    saved = pickle.loads(pickle.dumps(first.search_alg.get_state()))  # as Tune writes it

    fresh = build_plan(algo, ctx)  # what Tuner.restore starts from
    fresh.search_alg.set_state(saved)
    for index in range(3):
        trial = _Trial(index)  # Tune's restored trial: a new object, the same id
        fresh.scheduler._trial_state[trial] = _PBTTrialState(trial)  # as on_trial_add makes it
        fresh.scheduler._apply_restored(trial)
        state = fresh.scheduler._trial_state[trial]
        assert (state.last_score, state.last_perturbation_time, state.last_train_time,
                state.last_checkpoint) == (index / 10, 2, 3, f"checkpoint-{index}")
    assert fresh.scheduler._num_perturbations == 2
    if algo == "pb2":
        assert fresh.scheduler.data.equals(first.scheduler.data)
