"""``hyperband_es``: Hyperband that also stops hopeless brackets early.

Same brackets, searcher and promotion as ``hyperband``. In addition, when a bracket completes
a rung that is not its last (budget ``b``), its best result is compared with the results at
``b`` of all trials of the other brackets: if there are at least ``eta`` of those and the
bracket's best is not within their top ``1/eta`` (worse than the ``ceil(m / eta)``-th best of
``m``), the bracket is stopped - nothing of it is promoted, its paused trials are stopped. The
rule is the successive-halving rule itself applied across brackets: under the rank assumption
that justifies halving, a configuration outside the top ``1/eta`` at budget ``b`` would not be
kept, so training it further cannot produce the winner. Brackets that start at a budget no
other bracket has reached yet, and last rungs, are never stopped. Details:
:class:`automl.brackets.HyperbandScheduler`.
"""

from __future__ import annotations

from automl.algorithms import bracket_plans
from automl.algorithms.plan import AlgoContext, Plan
from automl.brackets.proposers import RandomProposer


def plan(ctx: AlgoContext) -> Plan:
    scheduler = bracket_plans.hyperband_scheduler(ctx, early_stop=True)
    proposer = RandomProposer(ctx.space, ctx.mode, ctx.seed)
    return bracket_plans.plan(ctx, scheduler, proposer,
                         f"Hyperband with early stop of hopeless brackets (eta={ctx.budget.eta}),"
                         f" random search; {bracket_plans.describe_brackets(scheduler)}")
