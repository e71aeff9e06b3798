"""``async_bohb``: asynchronous model-based multi-fidelity search - promotion-based ASHA whose
new configurations come from BOHB's model (in the spirit of A-BOHB and Syne Tune's
MOBSTER/Hyper-Tune).

Scheduler: :class:`automl.brackets.PromotionASHA` (promotion = resume from the rung
checkpoint; a free slot promotes a paused trial in the top ``1/eta`` of its rung, else starts a
new configuration), so no slot waits at a synchronous bracket barrier. Configurations: the same
proposer as ``bohb`` (:func:`automl.algorithms.bohb.proposer`: one TPE over every rung's
results, higher budgets first, from 5 results on, constant liar for the trials in flight, and
the schema's defaults as a prior that evidence keeps or drops).
"""

from __future__ import annotations

from automl.algorithms import bohb, bracket_plans
from automl.algorithms.plan import AlgoContext, Plan


def plan(ctx: AlgoContext) -> Plan:
    scheduler = bracket_plans.asha_scheduler(ctx)
    chosen = bohb.proposer(ctx, scheduler)
    return bracket_plans.plan(ctx, scheduler, chosen,
                         f"asynchronous BOHB: {bohb.describe(chosen)}; ASHA with promotion "
                         f"(eta={ctx.budget.eta}), {ctx.max_recommendations} configurations")
