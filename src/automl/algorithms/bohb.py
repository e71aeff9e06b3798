"""``bohb``: BOHB (Falkner et al. 2018) - Hyperband brackets, configurations from a model.

Own implementation on Optuna rather than Ray's ``TuneBOHB`` + ``HyperBandForBOHB``:

* ``TuneBOHB`` needs ``hpbandster`` and ``ConfigSpace`` (plus Pyro4, serpent, statsmodels and
  ``netifaces``, a C extension built from source on Python 3.11). They do install and run with
  numpy 2 here, but a ConfigSpace cannot express our space's conditions (a child bounded by its
  parent's value, ``math_cond`` ``/ N``, powers, weighted options); the define-by-run space
  (:meth:`automl.space.params.SearchSpace.suggest`) already drives Optuna.
* ``HyperBandForBOHB`` inherits ``HyperBandScheduler``'s allocation and its halving of partly
  filled brackets (see :mod:`automl.algorithms.hyperband`).
* BOHB's model per budget waits for ``d + 3`` results at a budget (19 for SegFormer's 16
  parameters): at TAO's sizes no rung gets there and BOHB is Hyperband with random search.

Brackets, rungs and promotion are ``hyperband``'s (:class:`automl.brackets.HyperbandScheduler`).
Configurations come from :func:`proposer`, one of two models (``--surrogate``):

* ``gp`` (the default): a Gaussian process over (configuration, budget), expected improvement
  at the largest budget with enough results, trials in flight as kriging believers, after 3
  random configurations (:class:`automl.algorithms.mf_gp.MultiFidelityGP`; MOBSTER's model).
  Chosen on ``benchmarks/suite.py`` (README, "Search efficiency").
* ``tpe``: one TPE over every rung's results, higher budgets ranked first, from 5 results on,
  pending trials as constant liars, 1/3 at random
  (:class:`automl.algorithms.mf_tpe.MultiFidelityTPE`).

Either way the schema's defaults are a prior unless ``--no-prior``
(:class:`automl.algorithms.prior.PriorProposer`: the default configuration first, then its
neighbourhood, weighted by how the default ranks among random configurations at the highest
budget it reached: dropped when worse than their median, sampled more and closer while better).

Several objectives: the chosen model on their weighted sum (``scalarize: weighted``, the prior
judged on the sum), or, for a Pareto search, the model as multi-objective TPE at the largest
budget with enough results, the template's configuration first and no prior (see
:mod:`automl.algorithms.mf_tpe`); rungs promote by non-dominated sorting (MO-Hyperband).
"""

from __future__ import annotations

from automl.algorithms import bracket_plans
from automl.algorithms.plan import AlgoContext, Plan, template_configuration
from automl.algorithms.mf_gp import MultiFidelityGP
from automl.algorithms.mf_tpe import MultiFidelityTPE
from automl.algorithms.prior import PriorProposer
from automl.brackets import BracketScheduler


def proposer(ctx: AlgoContext, scheduler: BracketScheduler) -> MultiFidelityTPE | PriorProposer:
    """The model-based proposer of ``bohb`` and ``async_bohb`` (a MultiFidelityGP is a
    MultiFidelityTPE: the same bookkeeping, another model)."""
    objectives = ctx.all_objectives
    first = template_configuration(ctx.space) if ctx.prior and objectives.pareto else None
    if ctx.surrogate == "gp" and not objectives.pareto:
        gp = MultiFidelityGP(ctx.space, ctx.mode, ctx.seed, scheduler.rungs, objectives=objectives)
        return PriorProposer(gp, ctx.space, ctx.seed, ctx.budget.eta) if ctx.prior else gp
    model = MultiFidelityTPE(ctx.space, ctx.mode, ctx.seed, top_rung=len(scheduler.rungs) - 1,
                             objectives=objectives, first=first)
    if not ctx.prior or objectives.pareto:
        return model
    return PriorProposer(model, ctx.space, ctx.seed, ctx.budget.eta)


def describe(chosen: MultiFidelityTPE | PriorProposer) -> str:
    model = chosen.model if isinstance(chosen, PriorProposer) else chosen
    prior = "; schema defaults as a prior (default first, kept while better than the " \
        "median random configuration at its budget)" \
        if isinstance(chosen, PriorProposer) else ""
    if isinstance(model, MultiFidelityGP):
        return (f"a GP over (configuration, budget), expected improvement at the largest "
                f"budget with enough results, after {model.min_points} random configurations, "
                f"trials in flight as kriging believers{prior}")
    if model.objectives.pareto:
        first = "; the template's configuration first (baseline)" if model.first else ""
        return (f"multi-objective TPE at the largest budget with {model.min_points} results "
                f"(constant liar, {model.random_fraction:.0%} random){first}")
    return (f"one TPE over all rungs (higher budgets first, model after {model.min_points} "
            f"results, constant liar, {model.random_fraction:.0%} random){prior}")


def plan(ctx: AlgoContext) -> Plan:
    scheduler = bracket_plans.hyperband_scheduler(ctx)
    chosen = proposer(ctx, scheduler)
    return bracket_plans.plan(ctx, scheduler, chosen,
                         f"BOHB: {describe(chosen)}, Hyperband (eta={ctx.budget.eta}); "
                         f"{bracket_plans.describe_brackets(scheduler)}")
