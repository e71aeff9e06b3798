"""Bracket schedulers and proposers without Ray's controller (fast, exhaustive).

A small simulator plays Ray Tune's part: it asks the searcher for trials, starts what the
scheduler chooses, advances every running trial one epoch per tick, reports each epoch and
applies PAUSE / CONTINUE, and stops/removes trials the way ``TuneController`` does. Trials
train exactly like the engine's trainable with the fake trainer: the trainer writes a checkpoint
every ``plan.interval`` epochs and at the end of its segment (``__epochs__``), and a paused trial
runs again from its latest checkpoint, retraining whatever it had done past it; so "each segment
starts where the previous one stopped" holds only if the scheduler pauses trials at checkpoint
epochs.
"""

from __future__ import annotations

import math
import pickle
from collections import Counter
from dataclasses import dataclass, field

import optuna
import pytest
from ray.tune.experiment import Trial
from ray.tune.search import Searcher

from automl.algorithms import AlgoContext, Budget, build_plan
from automl.brackets.proposers import DEProposer
from automl.brackets import Slot, epochs_of, hyperband_brackets, rung_ladder
from automl.space.params import Param, SearchSpace
from automl.contract import BRACKET_KEY, EPOCHS_KEY, RUNG_KEY

SPACE = SearchSpace(params=(
    Param("hp.x", "float", 0.0, 1.0),
    Param("hp.y", "int", 1, 5),
    Param("hp.c", "categorical", choices=("a", "b")),
))


def objective(config: dict, epoch: int) -> float:
    """The fake trainer's val_miou."""
    score = 1.0 - (config["hp.x"] - 0.7) ** 2 - 0.02 * abs(config["hp.y"] - 3)
    score += 0.05 if config["hp.c"] == "b" else 0.0
    return score * (1.0 - 0.5 / (1 + epoch))


@dataclass
class FakeTrial:
    trial_id: str
    config: dict
    status: str = Trial.PENDING
    epoch: int = 0  # the last epoch it reported
    checkpoint: int = 0  # epochs completed in its latest checkpoint (0: none, from scratch)
    segments: list = field(default_factory=list)  # (start, end) epochs trained per run

    def set_config(self, config: dict) -> None:
        self.config = config


class Sim:
    """Ray Tune's controller, reduced to what a scheduler sees."""

    def __init__(self, plan, cpus: int, metric: str = "val_miou", fail: set[int] = frozenset(),
                 value=objective):
        self.scheduler, self.searcher = plan.scheduler, plan.search_alg
        self.interval = plan.interval or 1  # None: the template's interval, 1 for the fake trainer
        self.cpus, self.metric, self.fail, self.value = cpus, metric, fail, value
        self.trials: list[FakeTrial] = []
        self.finished = False
        self.ticks = 0

    def get_trials(self):
        return self.trials

    def stop_trial(self, trial: FakeTrial) -> None:
        assert trial.status in (Trial.PAUSED, Trial.PENDING), trial.status
        self.scheduler.on_trial_remove(self, trial)
        trial.status = Trial.TERMINATED

    def _suggest(self) -> None:
        while not self.finished:
            config = self.searcher.suggest(f"t{len(self.trials):03d}")
            if config == Searcher.FINISHED:
                self.finished = True
            if not isinstance(config, dict):
                return
            trial = FakeTrial(f"t{len(self.trials):03d}", config)
            self.trials.append(trial)
            self.scheduler.on_trial_add(self, trial)

    def run(self, max_ticks: int = 10_000, pause_at: int | None = None) -> Sim:
        running: dict[str, int] = {}  # trial -> epoch reached in this segment
        while self.ticks < max_ticks:
            if self.ticks == pause_at:
                return self
            self.ticks += 1
            self._suggest()
            while len(running) < self.cpus:  # Tune asks the scheduler, then starts PENDING ones
                chosen = self.scheduler.choose_trial_to_run(self)
                if chosen is None:
                    break
                chosen.status = Trial.RUNNING
                chosen.segments.append([chosen.checkpoint, chosen.checkpoint])
                running[chosen.trial_id] = chosen.checkpoint
            if not running:
                if self.finished and all(t.status in (Trial.TERMINATED, Trial.ERROR)
                                         for t in self.trials):
                    return self
                if not any(t.status == Trial.PENDING for t in self.trials) and self.ticks > 3:
                    raise AssertionError("deadlock: nothing runs, nothing is pending")
                continue
            for trial_id in sorted(running):
                trial = next(t for t in self.trials if t.trial_id == trial_id)
                epoch = running[trial_id] + 1
                if int(trial_id[1:]) in self.fail:
                    del running[trial_id]
                    trial.status = Trial.ERROR
                    self.scheduler.on_trial_error(self, trial)
                    continue
                running[trial_id] = epoch
                trial.segments[-1][1] = epoch
                if epoch % self.interval == 0 or epoch >= trial.config[EPOCHS_KEY]:
                    trial.checkpoint = epoch
                result = {"epoch": epoch, self.metric: self.value(trial.config, epoch)}
                decision = self.scheduler.on_trial_result(self, trial, result)
                trial.epoch = epoch
                if decision == "PAUSE":
                    trial.status = Trial.PAUSED
                    del running[trial_id]
                elif epoch >= trial.config[EPOCHS_KEY]:
                    trial.status = Trial.TERMINATED
                    del running[trial_id]
                    self.scheduler.on_trial_complete(self, trial, result)
        raise AssertionError("simulation did not end")

    # -- what happened ---------------------------------------------------------------------
    def epochs(self) -> int:
        return sum(end - start for t in self.trials for start, end in t.segments)

    def reached(self) -> Counter:
        """(bracket, epochs) -> number of trials that reported that epoch."""
        return Counter((t.config[BRACKET_KEY], e) for t in self.trials
                       for e in {end for _, end in t.segments})


def plan_for(algo: str, R: int = 9, n: int = 17, mode: str = "max", seed: int = 3,
             slots: int = 1, metric: str = "val_miou", eta: int = 3, r: int = 1,
             fixed: bool = False, surrogate: str = "gp"):
    ctx = AlgoContext(space=SPACE, metric=metric, mode=mode, seed=seed, budget=Budget(R, r, eta),
                      max_recommendations=n, max_concurrent=slots, population_size=4,
                      fixed_budget=fixed, surrogate=surrogate)
    return build_plan(algo, ctx)


# -- budgets ------------------------------------------------------------------------------------

def test_rung_ladder():
    assert rung_ladder(9, 1, 3) == [1, 3, 9]
    assert rung_ladder(27, 1, 3) == [1, 3, 9, 27]
    assert rung_ladder(81, 3, 3) == [3, 9, 27, 81]
    assert rung_ladder(10, 1, 3) == [1, 3, 10]
    assert rung_ladder(16, 1, 2) == [1, 2, 4, 8, 16]
    assert rung_ladder(5, 5, 3) == [5]


def test_textbook_hyperband_allocation():
    plans = hyperband_brackets(3, 3, 17)  # R=9, eta=3: one full iteration
    assert [(p.s, p.start, p.sizes) for p in plans] == [(2, 0, (9, 3, 1)), (1, 1, (5, 1)),
                                                        (0, 2, (3,))]
    assert epochs_of(plans, [1, 3, 9]) == 69
    plans = hyperband_brackets(4, 3, 49)  # R=27 (the paper's table for R=81 shifted down)
    assert [(p.s, p.sizes) for p in plans] == [(3, (27, 9, 3, 1)), (2, (12, 4, 1)), (1, (6, 2)),
                                               (0, (4,))]
    # TAO's defaults, 20 < 49: the last (here only) iteration is scaled, every bracket kept
    plans = hyperband_brackets(4, 3, 20)
    assert [(p.s, p.sizes) for p in plans] == [(3, (11, 3, 1, 1)), (2, (5, 1, 1)), (1, (2, 1)),
                                               (0, (2,))]
    assert sum(p.n for p in hyperband_brackets(3, 3, 40)) == 40


# -- schedulers in the simulator ----------------------------------------------------------------

@pytest.mark.parametrize("algo", ["hyperband", "bohb", "dehb"])
@pytest.mark.parametrize("slots", [1, 3])
def test_hyperband_allocation_is_textbook(algo, slots):
    sim = Sim(plan_for(algo, slots=slots), cpus=slots).run()
    assert len(sim.trials) == 17
    assert sim.reached() == Counter({(0, 1): 9, (0, 3): 3, (0, 9): 1, (1, 3): 5, (1, 9): 1,
                                     (2, 9): 3})
    assert sim.epochs() == 69  # promotions resume: 69 epochs instead of 17 * 9 = 153
    for trial in sim.trials:  # each run continues where the previous one stopped
        assert [s for s, _ in trial.segments] == [0] + [e for _, e in trial.segments[:-1]]
        assert trial.status == Trial.TERMINATED


@pytest.mark.parametrize("fixed", [False, True], ids=["next-rung", "fixed-budget"])
@pytest.mark.parametrize("algo", ["hyperband", "bohb", "dehb", "asha", "hyperband_es"])
def test_promotions_resume_from_the_rung_checkpoint(algo, fixed):
    """Rungs 3, 9, 27: the trainer checkpoints every 3 epochs and at the end of a segment, so a
    trial paused anywhere but at a checkpoint would retrain from an older one and the segments
    would overlap. With --fixed-budget every segment runs to R and the scheduler pauses it at
    the rung."""
    sim = Sim(plan_for(algo, R=27, r=3, n=12, slots=2, fixed=fixed), cpus=2).run()
    assert sim.interval == 3
    rungs = {3, 9, 27}
    for trial in sim.trials:
        starts = [s for s, _ in trial.segments]
        assert starts == [0] + [e for _, e in trial.segments[:-1]], trial.segments
        assert {e for _, e in trial.segments[:-1]} <= rungs, trial.segments
    assert any(len(t.segments) > 1 for t in sim.trials)  # some trial was promoted


def test_hyperband_promotes_the_best_for_min_and_max():
    for mode, metric, value in (("max", "val_miou", objective),
                                ("min", "val_loss", lambda c, e: 1 - objective(c, e))):
        sim = Sim(plan_for("hyperband", mode=mode, metric=metric), cpus=1, metric=metric,
                  value=value).run()
        first = [t for t in sim.trials if t.config[BRACKET_KEY] == 0]
        ranked = sorted(first, key=lambda t: -objective(t.config, 1))
        promoted = {t.trial_id for t in first if t.epoch >= 3}
        assert promoted == {t.trial_id for t in ranked[:3]}
        top = max((t for t in first if t.epoch >= 3), key=lambda t: objective(t.config, 3))
        assert top.epoch == 9


def test_asha_promotes_top_fraction_and_ends():
    sim = Sim(plan_for("asha", n=12), cpus=1).run()
    assert len(sim.trials) == 12
    scheduler = sim.scheduler
    for rung in (0, 1):  # every promotion out of a rung came from its top 1/eta at that time
        members = [j for j in scheduler.jobs.values() if j.reached(rung)]
        promoted = [j for j in members if j.reached(rung + 1)]
        assert len(promoted) >= len(members) // 3
    assert any(t.epoch == 9 for t in sim.trials)
    for trial in sim.trials:
        assert [s for s, _ in trial.segments] == [0] + [e for _, e in trial.segments[:-1]]
    assert all(t.status == Trial.TERMINATED for t in sim.trials)
    assert sim.epochs() < 12 * 9


@pytest.mark.parametrize("seed", range(4))
def test_asha_always_delivers_a_full_budget_trial(seed):
    """20 configurations on rungs 1/3/9/27: the top-1/eta rule alone often stops below 27."""
    sim = Sim(plan_for("asha", R=27, n=20, seed=seed, slots=2), cpus=2).run()
    assert sum(t.epoch == 27 for t in sim.trials) >= 1
    assert sim.epochs() < 20 * 27 / 3


def test_asha_top_rule_sequential():
    """With one worker ASHA is deterministic: check the promotions against the rule."""
    plan = plan_for("asha", n=9)
    sim = Sim(plan, cpus=1)
    promotions = []
    original = plan.scheduler._promote

    def spy(job):
        rung = job.rung
        members = sorted((j for j in plan.scheduler.jobs.values() if j.reached(rung)),
                         key=lambda j: -j.scores[rung])
        assert job in members[: len(members) // 3]
        promotions.append((job.trial_id, rung))
        original(job)

    plan.scheduler._promote = spy
    sim.run()
    assert promotions and all(r in (0, 1) for _, r in promotions)
    assert Counter(r for _, r in promotions)[0] >= 3


def test_failed_trials_do_not_block_brackets():
    sim = Sim(plan_for("hyperband", slots=2), cpus=2, fail={1, 4}).run()
    assert len(sim.trials) == 17
    errored = [t for t in sim.trials if t.status == Trial.ERROR]
    assert len(errored) == 2 and all(t.status in (Trial.TERMINATED, Trial.ERROR)
                                     for t in sim.trials)
    assert any(t.epoch == 9 and t.config[BRACKET_KEY] == 0 for t in sim.trials)


def test_hyperband_es_stops_hopeless_brackets():
    # Bracket 1 (s=1) sees only poor configurations: they are worse at 3 epochs than the top
    # third of bracket 0's results at 3 epochs, so none is trained to 9.
    def value(config, epoch):
        return objective(config, epoch) - (1.0 if config[BRACKET_KEY] == 1 else 0.0)

    es = Sim(plan_for("hyperband_es"), cpus=1, value=value).run()
    plain = Sim(plan_for("hyperband"), cpus=1, value=value).run()
    assert es.scheduler.early_stopped and es.scheduler.early_stopped[0]["bracket"] == 1
    assert (1, 9) not in es.reached() and plain.reached()[(1, 9)] == 1
    assert es.epochs() == plain.epochs() - 6
    # With the fake objective unchanged, hopeless or not depends on the draws; never more work
    assert Sim(plan_for("hyperband_es"), cpus=1).run().epochs() <= 69


def test_fixed_budget_keeps_num_epochs_and_pauses_at_rungs():
    sim = Sim(plan_for("hyperband", fixed=True), cpus=1).run()
    assert {t.config[EPOCHS_KEY] for t in sim.trials} == {9}
    # Pauses still happen at the rungs (the simulator's trainer stops on PAUSE)
    assert sim.reached()[(0, 1)] == 9 and sim.reached()[(0, 3)] == 3


def test_reported_rung_and_bracket_in_config():
    sim = Sim(plan_for("hyperband"), cpus=1).run()
    for trial in sim.trials:
        assert trial.config[RUNG_KEY] == [1, 3, 9].index(trial.config[EPOCHS_KEY])
        assert trial.config[BRACKET_KEY] in (0, 1, 2)


@pytest.mark.parametrize("algo", ["asha", "hyperband", "hyperband_es", "bohb", "async_bohb", "dehb"])
def test_same_seed_same_configurations(algo):
    def configs(seed):
        sim = Sim(plan_for(algo, seed=seed, n=17), cpus=1).run()
        return [{k: v for k, v in t.config.items() if not k.startswith("__")} for t in sim.trials]

    first = configs(5)
    assert first == configs(5)
    assert first != configs(6)
    for config in first:
        SPACE.validate(config)


def test_state_survives_pickling_midway():
    """The searcher's saved state restores the scheduler (for `automl resume`)."""
    plan = plan_for("hyperband", slots=2)
    sim = Sim(plan, cpus=2)
    sim.run(pause_at=6)
    saved = pickle.dumps(plan.search_alg.get_state())
    fresh = plan_for("hyperband", slots=2)
    fresh.search_alg.set_state(pickle.loads(saved))
    assert fresh.scheduler.jobs.keys() == plan.scheduler.jobs.keys()
    assert [b.created for b in fresh.scheduler.brackets] == \
        [b.created for b in plan.scheduler.brackets]


# -- proposers ---------------------------------------------------------------------------------

def test_de_selection_and_mutation():
    proposer = DEProposer(SPACE, "max", seed=0, pop_sizes={0: 4, 1: 2})
    first = [proposer.propose(f"i{k}", Slot(0, 0), 1) for k in range(4)]
    assert all(proposer.kind[f"i{k}"] == "random" for k in range(4))
    for k, config in enumerate(first):
        proposer.observe(f"i{k}", 0, 1, objective(config, 1))
    child = proposer.propose("c0", Slot(0, 0), 1)
    assert proposer.kind["c0"] == "mutant" and proposer.targets["c0"] == (0, 0)
    target = proposer.pop[0][0]
    proposer.observe("c0", 0, 1, target.score + 1.0)  # better than its target: replaces it
    assert proposer.pop[0][0].trial_id == "c0"
    proposer.propose("c1", Slot(0, 0), 1)
    proposer.observe("c1", 0, 1, -math.inf)  # not finite: ignored
    assert proposer.pop[0][1].trial_id == "i1"
    proposer.observe("i1", 1, 3, 0.9)  # a promotion joins the larger budget's subpopulation
    assert proposer.pop[1][0].trial_id == "i1"
    SPACE.validate(child)


@pytest.mark.parametrize("algo", ["random", "bayesian", "asha", "hyperband", "bohb", "async_bohb", "dehb"])
def test_building_a_plan_warns_nothing(algo):
    """Optuna's 'experimental argument' warnings would reach the user's terminal at every run."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = plan_for(algo)
        if plan.search_alg is not None and hasattr(plan.search_alg, "suggest"):
            plan.search_alg.suggest("t1")
    assert not [w for w in caught if issubclass(w.category, optuna.exceptions.ExperimentalWarning)]
