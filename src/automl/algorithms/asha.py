"""``asha``: promotion-based ASHA (Li et al. 2020) with random search.

Scheduler: :class:`automl.brackets.PromotionASHA` (own code: Ray's ``ASHAScheduler`` only
stops trials, it never pauses and promotes them). A trial pauses at every rung ``r * eta**k``;
a free slot promotes the best paused trial that is in the top ``1/eta`` of its rung (resumed
from the rung checkpoint), else starts one of the ``max_recommendations`` configurations.

Searcher: random (Optuna ``RandomSampler``, seeded), as in the paper. ASHA's guarantee - a
configuration is trained further only when it beats ``1 - 1/eta`` of the configurations seen
at the same budget - holds for any sequence of configurations, but with few configurations
(20 by default) a TPE fitted on a mix of 1-, 3- and 9-epoch results would mostly chase the
low-budget noise and concentrate the early rungs on look-alikes, which makes the top-``1/eta``
test less informative. Model-based proposals with a model per budget are what ``bohb`` is.
"""

from __future__ import annotations

from automl.algorithms import bracket_plans
from automl.algorithms.plan import AlgoContext, Plan
from automl.brackets.proposers import RandomProposer


def plan(ctx: AlgoContext) -> Plan:
    scheduler = bracket_plans.asha_scheduler(ctx)
    proposer = RandomProposer(ctx.space, ctx.mode, ctx.seed)
    return bracket_plans.plan(ctx, scheduler, proposer,
                         f"ASHA with promotion (eta={ctx.budget.eta}), random search, "
                         f"{ctx.max_recommendations} configurations")
