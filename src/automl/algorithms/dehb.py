"""``dehb``: differential evolution within Hyperband brackets (after Awad et al. 2021).

Own implementation on Ray Tune rather than the ``dehb`` package: ``dehb`` 0.1.2 (the latest)
requires ``numpy<2`` (the engine pins numpy 2), pulls in dask/distributed, needs a ConfigSpace
(which cannot express our conditional space, see :mod:`automl.algorithms.bohb`) and runs its
own evaluation loop, where a configuration evaluated at a larger budget is trained from
scratch - we promote by resuming from the rung checkpoint.

Brackets, rungs and promotion are ``hyperband``'s (:class:`automl.brackets.HyperbandScheduler`);
configurations come from :class:`automl.brackets.proposers.DEProposer`: one subpopulation per
budget (sized like the largest bracket's rungs), random initialisation, ``rand/1/bin`` with
``F = CR = 0.5``, selection against the target at the configuration's first budget, and the
survivors of successive halving joining the larger budgets' subpopulations.
"""

from __future__ import annotations

from automl.algorithms import bracket_plans
from automl.algorithms.plan import AlgoContext, Plan
from automl.brackets.proposers import DEProposer


def plan(ctx: AlgoContext) -> Plan:
    scheduler = bracket_plans.hyperband_scheduler(ctx)
    sizes: dict[int, int] = {}
    for bracket in scheduler.plans:
        for i, n in enumerate(bracket.sizes):
            sizes[bracket.start + i] = max(sizes.get(bracket.start + i, 0), n)
    proposer = DEProposer(ctx.space, ctx.mode, ctx.seed, sizes)
    return bracket_plans.plan(ctx, scheduler, proposer,
                         f"DEHB: differential evolution per budget (rand/1/bin, F=CR=0.5, "
                         f"subpopulations {[sizes[k] for k in sorted(sizes)]}), Hyperband "
                         f"(eta={ctx.budget.eta}); {bracket_plans.describe_brackets(scheduler)}")
