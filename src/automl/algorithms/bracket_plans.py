"""Shared plan builder of the bracket family (asha, hyperband, hyperband_es, bohb, dehb).

Every one of them trains to the same rung epochs (:func:`automl.brackets.rung_ladder` of
R = ``--max-epochs``, r = ``--min-epochs``, eta = ``--reduction-factor``), reports a checkpoint
pointer with each result (so a paused trial resumes from its rung), and sets the checkpoint and
validation interval to the gcd of the rung epochs so every rung epoch has both.
"""

from __future__ import annotations

from automl.algorithms.plan import AlgoContext, Plan
from automl.brackets import BracketScheduler, BracketSearcher, HyperbandScheduler, PromotionASHA, Proposer, checkpoint_interval, epochs_of, rung_ladder


def ladder(ctx: AlgoContext) -> list[int]:
    return rung_ladder(ctx.budget.max_epochs, ctx.budget.min_epochs, ctx.budget.eta)


def asha_scheduler(ctx: AlgoContext) -> PromotionASHA:
    return PromotionASHA(ladder(ctx), ctx.metric, ctx.mode, ctx.max_concurrent, ctx.budget.eta,
                         ctx.max_recommendations, fixed_budget=ctx.fixed_budget,
                         objectives=ctx.all_objectives, trials_dir=ctx.trials_dir)


def hyperband_scheduler(ctx: AlgoContext, early_stop: bool = False) -> HyperbandScheduler:
    return HyperbandScheduler(ladder(ctx), ctx.metric, ctx.mode, ctx.max_concurrent,
                              ctx.budget.eta, ctx.max_recommendations, early_stop=early_stop,
                              fixed_budget=ctx.fixed_budget, objectives=ctx.all_objectives,
                              trials_dir=ctx.trials_dir)


def describe_brackets(scheduler: HyperbandScheduler) -> str:
    parts = []
    for plan in scheduler.plans:
        steps = "->".join(f"{n}@{scheduler.rungs[plan.start + i]}"
                          for i, n in enumerate(plan.sizes))
        parts.append(f"bracket {plan.index} (s={plan.s}): {steps}")
    planned = epochs_of(scheduler.plans, scheduler.rungs)
    return f"{'; '.join(parts)}; planned {planned} epochs"


def plan(ctx: AlgoContext, scheduler: BracketScheduler, proposer: Proposer,
         description: str) -> Plan:
    rungs = scheduler.rungs
    searcher = BracketSearcher(scheduler, proposer, ctx.metric, ctx.mode)
    budget = "fixed train.num_epochs = R, paused at rungs" if ctx.fixed_budget else \
        "train.num_epochs = next rung"
    return Plan(searcher, scheduler, ctx.max_recommendations, checkpoints=True,
                interval=checkpoint_interval(rungs),
                description=f"{description}; rungs {rungs} epochs ({budget}); "
                            f"promotion resumes from the rung checkpoint")
