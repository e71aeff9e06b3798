"""The GP over (configuration, budget) behind bohb/async_bohb (automl.algorithms.mf_gp)."""

from __future__ import annotations

import numpy as np
import pytest
from ray.tune.experiment import Trial

from automl.algorithms.mf_gp import RANDOM_CANDIDATES, MultiFidelityGP, warp
from automl.algorithms.prior import PriorProposer
from automl.brackets import Slot
from automl.contract import PROPOSER_KEY
from automl.space.params import Param, SearchSpace
from tests.algorithms.test_algo_schedulers import SPACE, Sim, objective, plan_for

SLOT = Slot(0, 0)
RUNGS = (1, 3, 9)


def test_model_engages_after_three_random_results():
    """Syne Tune's start for its GP searchers; and the prior's first verdict needs eta = 3."""
    model = MultiFidelityGP(SPACE, "max", seed=0, rungs=RUNGS, random_fraction=0.0)
    for i in range(3):
        config = model.propose(f"a{i}", SLOT, 1)
        assert model.sources[f"a{i}"] == "random"
        model.observe(f"a{i}", 0, 1, objective(config, 1))
    config = model.propose("b", SLOT, 1)
    assert model.sources["b"] == "gp"
    SPACE.validate(config)  # a GP proposal is a valid configuration of the space


def test_model_moves_towards_the_optimum():
    """On a 2-D quadratic (minimum at x = 0.7, lr = 1e-3, lr searched on a log scale) the GP's
    proposals after 30 results are far closer to the optimum than its random start."""
    space = SearchSpace(params=(Param("x", "float", 0.0, 1.0),
                                Param("lr", "float", 1e-5, 1e-1, log=True)))

    def f(config: dict) -> float:
        return (config["x"] - 0.7) ** 2 + (np.log10(config["lr"]) + 3) ** 2 / 16

    model = MultiFidelityGP(space, "min", seed=4, rungs=(1,))
    distances = []
    for i in range(30):
        config = model.propose(f"t{i}", SLOT, 1)
        model.observe(f"t{i}", 0, 1, f(config))
        distances.append(f(config))
    assert np.median(distances[-10:]) < 0.02 < np.median(distances[:5])


def test_acquisition_budget_is_the_largest_with_d_plus_1_results():
    model = MultiFidelityGP(SPACE, "max", seed=0, rungs=RUNGS)
    for i in range(6):
        model.propose(f"a{i}", SLOT, 1)
        model.observe(f"a{i}", 0, 1, 0.1 * i)
    for i in range(3):
        model.observe(f"a{i}", 1, 3, 0.2 * i)
    assert model.acquisition_budget(dims=4) == 1  # 3 results at 3 epochs: fewer than 5
    for i in range(3, 5):
        model.observe(f"a{i}", 1, 3, 0.2 * i)
    assert model.acquisition_budget(dims=4) == 3


def test_trials_in_flight_spread_the_proposals():
    """Many asks with no result in between do not repeat one point: the kriging believer puts
    each pending one into the GP, whose uncertainty there collapses (converged, they still
    differ)."""
    space = SearchSpace(params=(Param("x", "float", 0.0, 1.0),))
    model = MultiFidelityGP(space, "min", seed=1, rungs=(1,))
    for i in range(8):
        config = model.propose(f"a{i}", SLOT, 1)
        model.observe(f"a{i}", 0, 1, (config["x"] - 0.5) ** 2)
    pending = [model.propose(f"p{i}", SLOT, 1)["x"] for i in range(4)]
    assert all(model.sources[f"p{i}"] == "gp" for i in range(4))
    assert len({round(x, 6) for x in pending}) == 4


def test_lower_budgets_inform_the_top_budget():
    """Configurations seen only at 1 and 3 epochs, where the ranking holds across budgets:
    the model's expected improvement at the top budget points to the good region although no
    configuration reached it in that region."""
    space = SearchSpace(params=(Param("x", "float", 0.0, 1.0),))
    model = MultiFidelityGP(space, "min", seed=3, rungs=(1, 3, 9), min_points=5,
                            random_fraction=0.0)

    def f(x: float, epochs: int) -> float:
        return (x - 0.2) ** 2 + 1.0 / epochs

    for i, x in enumerate(np.linspace(0.0, 1.0, 11)):
        model.ask(f"a{i}", "random", fixed={"x": float(x)})
        model.observe(f"a{i}", 0, 1, f(x, 1))
        if i % 2 == 0:
            model.observe(f"a{i}", 1, 3, f(x, 3))
    proposals = [model.propose(f"b{i}", SLOT, 3)["x"] for i in range(3)]
    assert np.median(proposals) < 0.45, proposals


def test_the_prior_wraps_the_gp():
    space = SearchSpace(params=(Param("x", "float", 0.0, 1.0, default=0.3),
                                Param("c", "categorical", choices=("a", "b"), default="b")))
    model = MultiFidelityGP(space, "max", seed=0, rungs=RUNGS, random_fraction=0.0)
    prior = PriorProposer(model, space, seed=0, eta=3)
    assert prior.propose("d", SLOT, 1) == {"x": 0.3, "c": "b"}
    assert prior.source("d") == "prior (default)"
    prior.observe("d", 0, 1, 0.9)
    for i in range(12):  # the GP starts after 3 random draws, however many the prior made
        config = prior.propose(f"t{i}", SLOT, 1)
        prior.observe(f"t{i}", 0, 1, 0.5 + 0.1 * (config["c"] == "b"))
    sources = [model.sources[f"t{i}"] for i in range(12)]
    assert sources.count("random") == 3 and "gp" in sources
    assert sources.index("gp") > max(i for i, s in enumerate(sources) if s == "random")


def test_a_few_huge_losses_do_not_flatten_the_rest():
    """The power transform keeps the order and undoes a heavy bad tail: a diverged run's loss
    of 1e4 (maximized: -1e4) leaves the others spread over a third of a standard deviation
    (standardized raw values, they would sit within 0.001 of each other)."""
    y = -np.array([0.31, 0.30, 1e4, 0.29, 0.5, 0.35, 0.42])
    z = warp(y)
    assert list(np.argsort(z)) == list(np.argsort(y))
    assert abs(z.mean()) < 1e-6 and abs(z.std() - 1) < 1e-6
    raw = (y - y.mean()) / y.std()
    assert np.ptp(raw[y > -1]) < 0.001 and np.ptp(z[y > -1]) > 0.25
    assert np.all(warp(np.full(4, 0.3)) == 0)  # no spread: nothing to scale


def test_a_heavy_good_tail_is_not_squeezed():
    """Hartmann-like values (maximized): most configurations near 0, a few far better. A fitted
    power transform would squeeze the good end, where expected improvement needs its
    resolution; the values stay linear (standardized) instead."""
    y = np.array([0.0, 0.01, 0.02, 0.05, 0.03, 0.1, 0.04, 1.2, 2.6, 3.1])
    z = warp(y)
    np.testing.assert_allclose(z, (y - y.mean()) / y.std())


def test_refinement_raises_the_acquisition_of_the_proposal():
    """The local search from the best candidates ends at least as high in expected
    improvement as where it started, and higher on a smooth problem whose peak lies between
    the random candidates (a narrow 3-D bowl)."""
    space = SearchSpace(params=tuple(Param(f"x{i}", "float", 0.0, 1.0) for i in range(3)))
    model = MultiFidelityGP(space, "min", seed=2, rungs=(1,), random_fraction=0.0)
    for i in range(25):
        config = model.propose(f"t{i}", SLOT, 1)
        model.observe(f"t{i}", 0, 1, sum((config[f"x{j}"] - 0.37) ** 2 for j in range(3)))
    X = np.array([[*model.codec.features(c.values), 0.0] for c in model.configs.values()])
    y = warp(np.array([-c.results[1] for c in model.configs.values()]))
    gp = model.fit(X, (y - y.mean()) / y.std())
    best = float(np.max(gp.predict(X)))
    rng = np.random.default_rng(0)
    units = model.candidates(rng, [])
    candidates = [model.codec.decode(u) for u in units]
    score = model.acquisition(gp, candidates, 1, best)
    refined, refined_score = model.refine(gp, rng, units, candidates, score, 1, best)
    assert len(refined) > len(candidates)  # it found steps that raise the acquisition
    assert refined_score.max() > score.max()


def test_local_candidates_change_categoricals():
    """A Gaussian step keeps a categorical's coordinate within its choice; the neighbourhood of
    an incumbent also redraws categoricals, or the model could never propose the incumbent's
    numbers with another optimizer."""
    space = SearchSpace(params=(Param("x", "float", 0.0, 1.0),
                                Param("opt", "categorical", choices=("sgd", "adam", "adamw"))))
    model = MultiFidelityGP(space, "min", seed=0, rungs=(1,))
    incumbent = {"x": 0.5, "opt": "sgd"}
    units = model.candidates(np.random.default_rng(0), [incumbent])[RANDOM_CANDIDATES:]
    local = [model.codec.decode(u) for u in units]
    assert {c["opt"] for c in local} == {"sgd", "adam", "adamw"}
    assert sum(c["opt"] == "sgd" for c in local) > len(local) / 2


def test_local_steps_fold_back_at_the_bounds():
    """A Gaussian step around an incumbent on a bound, clipped, puts half its candidates exactly
    on the bound (a schema's closed range may be open for the trainer: AdamW's beta1 = 1 fails);
    folded back, none."""
    space = SearchSpace(params=(Param("x", "float", 0.0, 1.0),))
    model = MultiFidelityGP(space, "min", seed=0, rungs=(1,))
    units = model.candidates(np.random.default_rng(0), [{"x": 1.0}])[RANDOM_CANDIDATES:]
    assert len(units) and np.all((units > 0.0) & (units < 1.0))
    assert np.mean(units > 0.9) > 0.5  # still around the incumbent
