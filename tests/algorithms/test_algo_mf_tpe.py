"""The model behind bohb/async_bohb (one TPE over every rung) and the schema-default prior."""

from __future__ import annotations

import numpy as np
import pytest
from ray.tune.experiment import Trial

from automl.algorithms.mf_tpe import MultiFidelityTPE
from automl.algorithms.prior import PriorProposer
from automl.brackets import Slot
from automl.space.params import Param, SearchSpace
from automl.contract import PROPOSER_KEY
from tests.algorithms.test_algo_schedulers import SPACE, Sim, objective, plan_for

SLOT = Slot(0, 0)


def test_model_engages_after_five_results_not_d_plus_3_per_rung():
    model = MultiFidelityTPE(SPACE, "max", seed=0, top_rung=2, random_fraction=0.0)
    for i in range(5):
        config = model.propose(f"a{i}", SLOT, 1)
        assert model.sources[f"a{i}"] == "random"
        model.observe(f"a{i}", 0, 1, objective(config, 1))
    model.propose("b", SLOT, 1)
    assert model.sources["b"] == "tpe"  # 5 results, all at the lowest rung


def test_model_moves_towards_the_optimum():
    model = MultiFidelityTPE(SPACE, "min", seed=2, top_rung=0, random_fraction=0.0)
    xs = []
    for i in range(40):
        config = model.propose(f"t{i}", SLOT, 1)
        model.observe(f"t{i}", 0, 1, (config["hp.x"] - 0.7) ** 2)
        xs.append(config["hp.x"])
    assert np.mean([abs(x - 0.7) for x in xs[-10:]]) < np.mean([abs(x - 0.7) for x in xs[:10]])


def test_constant_liar_spreads_proposals_made_before_any_new_result():
    """Pending configurations count as bad: many asks in a row, with no result in between,
    do not collapse on the model's single best guess."""
    space = SearchSpace(params=(Param("x", "float", 0.0, 1.0),))
    model = MultiFidelityTPE(space, "min", seed=1, top_rung=0, random_fraction=0.0)
    for i in range(8):
        config = model.propose(f"a{i}", SLOT, 1)
        model.observe(f"a{i}", 0, 1, (config["x"] - 0.5) ** 2)
    pending = [model.propose(f"p{i}", SLOT, 1)["x"] for i in range(6)]
    assert len({round(x, 6) for x in pending}) == 6
    frozen = model._frozen()
    assert sum(t.state.name == "RUNNING" for t in frozen) == 6


def test_higher_budgets_rank_first():
    """A configuration that reached a higher rung is in TPE's good set before any lower-rung
    result, however good (Optuna ranks pruned trials by the step reached)."""
    from optuna.samplers._tpe.sampler import _split_trials

    model = MultiFidelityTPE(SPACE, "min", seed=0, top_rung=2, random_fraction=0.0)
    for i in range(10):
        model.propose(f"a{i}", SLOT, 1)
        model.observe(f"a{i}", 0, 1, 0.01 * i)  # a0 is the best at 1 epoch
    model.observe("a9", 1, 3, 5.0)  # the worst at 1 epoch, but the only one at 3
    import optuna

    study = optuna.create_study()
    study.add_trials(model._frozen())
    below, _ = _split_trials(study, study.get_trials(deepcopy=False), 1)
    assert [t.intermediate_values for t in below] == [{1: 0.09, 3: 5.0}]
    model.observe("a9", 2, 9, 4.0)  # reached the top rung: complete
    assert model._frozen()[9].state.name == "COMPLETE"


@pytest.mark.parametrize("algo", ["bohb", "async_bohb"])
def test_models_propose_from_the_first_bracket_at_tao_sizes(algo):
    """R = 27, eta = 3, 20 configurations, 2 in flight: the model proposes within the first
    bracket (the old per-budget model needed d + 3 results at one rung and never did)."""
    plan = plan_for(algo, R=27, n=20, slots=2, seed=0, surrogate="tpe")
    sim = Sim(plan, cpus=2).run()
    sources = [t.config[PROPOSER_KEY] for t in sim.trials]
    assert sources[0] == "random"  # SPACE has no schema defaults: no prior
    assert "tpe" in sources[:12]
    assert all(t.status in (Trial.TERMINATED,) for t in sim.trials)
    assert any(t.epoch == 27 for t in sim.trials)


def test_async_bohb_never_waits_for_a_bracket():
    """Promotion-based ASHA: while configurations remain, a free slot is never idle."""
    plan = plan_for("async_bohb", R=9, n=12, slots=2, seed=1)
    sim = Sim(plan, cpus=2).run()
    assert len(sim.trials) == 12
    assert sim.epochs() < 12 * 9


# -- the prior ---------------------------------------------------------------------------------

PRIOR_SPACE = SearchSpace(params=(
    Param("hp.x", "float", 0.0, 1.0, default=0.7),
    Param("hp.lr", "float", 1e-5, 1e-1, log=True, default=1e-3),
    Param("hp.y", "int", 1, 5, default=3),
    Param("hp.c", "categorical", choices=("a", "b"), default="b"),
    Param("hp.p", "int", 1, 64, math_cond="^ 2", default=16),
))


def _prior(seed: int = 0) -> PriorProposer:
    model = MultiFidelityTPE(PRIOR_SPACE, "max", seed=seed, top_rung=2)
    return PriorProposer(model, PRIOR_SPACE, seed, eta=3)


def test_default_configuration_first_then_its_neighbourhood():
    prior = _prior()
    first = prior.propose("d", SLOT, 1)
    assert first == {"hp.x": 0.7, "hp.lr": 1e-3, "hp.y": 3, "hp.c": "b", "hp.p": 16}
    assert prior.source("d") == "prior (default)"
    near = [prior.propose(f"n{i}", SLOT, 1) for i in range(30)]
    from_prior = [c for i, c in enumerate(near) if prior.source(f"n{i}") == "prior"]
    assert 5 <= len(from_prior) <= 25  # weight 0.5 before any result
    for config in from_prior:
        PRIOR_SPACE.validate(config)
    assert np.median([abs(c["hp.x"] - 0.7) for c in from_prior]) < 0.2


def _judged(default_value: float, random_values: list[float], epochs: int = 1,
            prior: PriorProposer | None = None) -> PriorProposer:
    """A prior whose default reported ``default_value`` and whose model's random draws
    reported ``random_values`` at ``epochs`` (mode max)."""
    prior = prior or _prior()
    if prior.default_id is None:
        prior.propose("d", SLOT, 1)
    for i, value in enumerate(random_values):
        trial = f"r{epochs}-{i}"
        prior.model.ask(trial, "random")
        prior.observe(trial, 0, epochs, value)
    prior.observe("d", 0, epochs, default_value)
    return prior


def test_no_verdict_before_eta_random_results_then_weight0():
    prior = _judged(0.1, [0.5, 0.6])  # two random results: not yet evidence
    assert prior.verdict is None and prior.notes == []
    assert prior.weight() == pytest.approx(0.5 * 0.5 ** (3 / 10))


def test_a_default_worse_than_the_random_median_is_dropped_at_once():
    prior = _judged(0.1, [0.5, 0.6, 0.7])  # the worst of four at 1 epoch (max)
    assert prior.weight() == 0 and not prior.verdict.better
    assert prior.notes == ["prior weight 0.50 -> 0.00: default 0.1 at 1 epoch is worse than the "
                           "median 0.6 of 3 random configurations (beats 0%); no more sampling "
                           "around it"]
    labels = []
    for i in range(10):
        prior.propose(f"m{i}", SLOT, 1)
        labels.append(prior.source(f"m{i}"))
    assert not any(label.startswith("prior") for label in labels)
    assert labels[0].endswith(prior.notes[0])  # why, on the next proposal's label
    assert all("prior weight" not in label for label in labels[1:])


def test_a_better_default_gets_more_and_closer_neighbours():
    prior = _judged(0.9, [0.5, 0.6, 0.7, 0.8])  # beats all four
    assert prior.verdict.beats == 1.0
    assert prior.spread == pytest.approx(0.075)
    assert prior._base_weight() == pytest.approx(0.8)
    assert "is better than the median 0.65 of 4 random" in prior.notes[0]
    level = _judged(0.65, [0.5, 0.6, 0.7, 0.8])  # at the median: kept at the initial weight
    assert level.verdict.better and level._base_weight() == pytest.approx(0.5)
    assert "level with" in level.notes[0]


def test_min_mode_ranks_lower_as_better():
    model = MultiFidelityTPE(PRIOR_SPACE, "min", seed=0, top_rung=2)
    prior = PriorProposer(model, PRIOR_SPACE, 0, eta=3)
    _judged(0.1, [0.5, 0.6, 0.7], prior=prior)
    assert prior.verdict.beats == 1.0 and prior.weight() > 0


def test_a_higher_rung_overturns_a_low_fidelity_verdict():
    """A low-fidelity trap: the default is the worst at 1 epoch, survives to 3 epochs and is the
    best there; the verdict of the higher budget decides and the prior comes back, with why."""
    prior = _judged(0.1, [0.5, 0.6, 0.7], epochs=1)
    assert prior.weight() == 0
    _judged(0.9, [0.2, 0.3, 0.4], epochs=3, prior=prior)
    assert prior.verdict.epochs == 3 and prior.weight() > 0
    assert prior.notes[-1].startswith("prior weight 0.00 -> 0.80: default 0.9 at 3 epochs is "
                                      "better than")


def test_more_evidence_for_the_same_decision_adds_no_note():
    prior = _judged(0.9, [0.5, 0.6, 0.7])
    _judged(0.9, [0.4], prior=prior)  # four random results now; still the best
    assert len(prior.notes) == 1


def test_prior_weight_decays_with_evidence():
    prior = _judged(0.9, [0.1, 0.2, 0.3])
    w0 = prior.weight()
    for i in range(20):
        prior.propose(f"n{i}", SLOT, 1)
        prior.observe(f"n{i}", 0, 1, 0.1)  # the default stays the best
    assert prior.verdict.better
    assert 0 < prior.weight() < w0 / 3


def test_prior_and_model_on_segformers_real_space():
    """The bundled SegFormer trainer's schema (16 parameters: powers, a child bounded by its parent,
    weighted options, log ranges): the default configuration is the schema's defaults made
    valid, and every later proposal (prior neighbourhood, model, random) is a valid config."""
    from automl.skill.schema import load_schema
    from automl.skill.folder import bundled_skill_dir
    from automl.space.build import build_space

    space = build_space(load_schema(bundled_skill_dir() / "schemas" / "train.schema.json"))
    assert len(space.params) == 16
    model = MultiFidelityTPE(space, "max", seed=3, top_rung=3)
    prior = PriorProposer(model, space, 3, eta=3)
    first = prior.propose("d", SLOT, 1)
    space.validate(first)
    env = {**space.context, **space.pinned}
    for param in space.params:
        if param.default is not None:
            expected = param.nearest(param.default, env)
            env[param.name] = expected
            assert first[param.name] == pytest.approx(expected), param.name
    rng = np.random.default_rng(0)
    for i in range(30):
        config = prior.propose(f"t{i}", SLOT, 1)
        space.validate(config)
        prior.observe(f"t{i}", 0, 1, float(rng.random()))
    sources = {prior.source(f"t{i}") for i in range(30)}
    assert "tpe" in sources and "prior" in sources


@pytest.mark.parametrize(("algo", "surrogate"), [("bohb", "tpe"), ("async_bohb", "tpe"),
                                                 ("bohb", "gp"), ("async_bohb", "gp")])
def test_a_bad_prior_costs_under_two_percent_of_the_budget(algo, surrogate):
    """TAO's sizes (R = 27, eta = 3, 2 in flight, ~30 R epochs), through the real plan: schema
    defaults at the worst corner. The prior's proposals (the default and its neighbours, made
    before the default's first result drops the prior) get under 2 % of the epochs; a good prior
    gets many more. The trial labels (progress lines, MLflow's proposed_by) say why."""
    from automl.algorithms import AlgoContext, Budget, build_plan

    def spent(default_x: float) -> tuple[float, int, list[str]]:
        space = SearchSpace(params=(
            Param("hp.x", "float", 0.0, 1.0, default=default_x),
            Param("hp.y", "int", 1, 5, default=3),
            Param("hp.c", "categorical", choices=("a", "b"), default="b"),
        ))
        ctx = AlgoContext(space=space, metric="val_miou", mode="max", seed=0,
                          budget=Budget(27, 1, 3), max_recommendations=100, max_concurrent=2,
                          population_size=4, fixed_budget=False, surrogate=surrogate)
        sim = Sim(build_plan(algo, ctx), cpus=2).run()
        by_prior = sum(end - start for t in sim.trials for start, end in t.segments
                       if t.config[PROPOSER_KEY].startswith("prior"))
        notes = [t.config[PROPOSER_KEY].split("; ", 1)[1] for t in sim.trials
                 if "; prior weight" in t.config[PROPOSER_KEY]]
        return by_prior / sim.epochs(), sim.epochs(), notes

    bad, total, notes = spent(0.0)  # objective(): best at x = 0.7, worst at x = 0
    print(f"{algo}/{surrogate}: bad prior {bad:.1%} of {total} epochs; {notes}")
    assert total > 300  # 100 configurations: ASHA's ~3.3 R per 10, Hyperband's more
    assert bad < 0.02
    assert notes and notes[0].startswith("prior weight 0.50 -> 0.00: default ")
    assert "worse than the median" in notes[0]
    good, _, notes = spent(0.7)
    print(f"{algo}: good prior {good:.1%}; {notes}")
    assert good > 5 * bad
    assert "better than the median" in notes[0]


def test_neighbours_of_a_default_at_a_log_bound_stay_inside_it():
    """exp(log(high)) is a rounding above ``high``: a neighbour drawn at the bound must not
    reach the model as a value outside its distribution (Optuna refuses such a trial)."""
    space = SearchSpace(params=(Param("lr", "float", 1e-5, 1e-1, log=True, default=1e-1),))
    prior = PriorProposer(MultiFidelityTPE(space, "min", seed=0, top_rung=0), space, 0, eta=3)
    prior.spread0 = 1.0  # wide steps: many neighbours clip to the bound
    for i in range(30):
        config = prior.propose(f"t{i}", SLOT, 1)
        assert 1e-5 <= config["lr"] <= 1e-1
        prior.observe(f"t{i}", 0, 1, abs(np.log10(config["lr"]) + 1))


def test_the_largest_engine_seed_proposes():
    """The engine draws seeds up to 2**32 - 1 when none is given; every proposal's sampler
    seed must still fit Optuna's 32 bits (``seed * k + count`` did not: bohb crashed on its
    first trial without --seed)."""
    model = MultiFidelityTPE(SPACE, "max", seed=2**32 - 1, top_rung=0)
    prior = PriorProposer(model, PRIOR_SPACE, 2**32 - 1, eta=3)
    for i in range(8):
        SPACE.validate(model.propose(f"t{i}", SLOT, 1))
        model.observe(f"t{i}", 0, 1, 0.1 * i)
    prior.model = MultiFidelityTPE(PRIOR_SPACE, "max", seed=2**32 - 1, top_rung=0)
    PRIOR_SPACE.validate(prior.propose("d", SLOT, 1))


def test_the_neighbourhood_never_lands_exactly_on_a_bound():
    """SegFormer's ``train.optim.momentum`` is [0, 1] in the schema, default 0.9, and AdamW's
    beta1 for the trainer, which rejects 1.0. A step of 0.15 clipped to the range set it to
    exactly 1.0 a quarter of the time (a real run lost a trial to it); folded back at the bound,
    never."""
    space = SearchSpace(params=(Param("train.optim.momentum", "float", 0.0, 1.0, default=0.9),))
    model = MultiFidelityTPE(space, "max", seed=0, top_rung=2)
    prior = PriorProposer(model, space, 0, eta=3)
    prior.propose("d", SLOT, 1)
    near = [prior.propose(f"n{i}", SLOT, 1) for i in range(200)]
    drawn = [c["train.optim.momentum"] for i, c in enumerate(near) if prior.source(f"n{i}") == "prior"]
    assert len(drawn) > 50
    assert all(0.0 < m < 1.0 for m in drawn)
    assert sum(m > 0.95 for m in drawn) > 5  # the fold keeps mass near the bound, off it
