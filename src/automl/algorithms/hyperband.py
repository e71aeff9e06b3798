"""``hyperband``: Hyperband (Li et al. 2018) with random search and promotion by resume.

Scheduler: :class:`automl.brackets.HyperbandScheduler` (own code). Ray's
``HyperBandScheduler`` was tried and not used: it fills brackets from ``s = 0`` up instead of
``s_max`` down, keeps ``ceil(n / eta)`` instead of ``floor(n * eta**-i)`` (5 -> 2 rather than
5 -> 1 at R=9, eta=3), halves a bracket once the trials *added so far* reached the rung, and
runs every trial with the full ``train.num_epochs``, so a pause lands mid-run. Measured on this
engine (fake trainer, R=9, eta=3, 17 configurations, 2 concurrent): every trial trained all 9
epochs (153 epochs; this scheduler: 69) - probably because the ``ConcurrencyLimiter`` Tune
wraps around the searcher counts paused trials as running, so those brackets never fill.

Allocation (R=9, eta=3, 17 configurations): bracket s=2: 9@1 -> 3@3 -> 1@9; s=1: 5@3 -> 1@9;
s=0: 3@9 - see :mod:`automl.brackets.budgets` for other budgets and for
``max_recommendations`` that is not a whole number of Hyperband iterations.
"""

from __future__ import annotations

from automl.algorithms import bracket_plans
from automl.algorithms.plan import AlgoContext, Plan
from automl.brackets.proposers import RandomProposer


def plan(ctx: AlgoContext) -> Plan:
    scheduler = bracket_plans.hyperband_scheduler(ctx)
    proposer = RandomProposer(ctx.space, ctx.mode, ctx.seed)
    return bracket_plans.plan(ctx, scheduler, proposer,
                         f"Hyperband (eta={ctx.budget.eta}), random search; "
                         f"{bracket_plans.describe_brackets(scheduler)}")
