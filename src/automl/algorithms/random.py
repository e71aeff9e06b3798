"""``random``: independent uniform sampling of the space (Optuna's RandomSampler), full budget."""

from __future__ import annotations

import optuna

from automl.algorithms.plan import AlgoContext, Plan
from automl.algorithms.optuna_searcher import baseline_description, optuna_search


def plan(ctx: AlgoContext) -> Plan:
    sampler = optuna.samplers.RandomSampler(seed=ctx.seed)
    return Plan(optuna_search(ctx, sampler), None, ctx.max_recommendations,
                description=f"random search, FIFO, full budget{baseline_description(ctx)}")
