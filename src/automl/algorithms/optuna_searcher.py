"""Optuna samplers behind Ray Tune's ``OptunaSearch``, driven by our define-by-run space.

Shared by the algorithms that only differ in their sampler (random, bayesian, asha's searcher).
Define-by-run is what lets conditional parameters (``depends_on``/``math_cond``) be sampled
in order; pinned values come back as constants.
"""

from __future__ import annotations

import optuna
from ray.tune.search.optuna import OptunaSearch

from automl.algorithms.base import AlgoContext


def optuna_search(ctx: AlgoContext, sampler: optuna.samplers.BaseSampler) -> OptunaSearch:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return OptunaSearch(space=ctx.space.suggest, metric=ctx.metric, mode=ctx.mode, sampler=sampler)
