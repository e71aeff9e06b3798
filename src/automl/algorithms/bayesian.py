"""``bayesian``: model-based search at full budget.

Optuna's multivariate TPE (``group=True`` so conditional parameters are modelled jointly). TPE
rather than Optuna's GPSampler because the engine must stay lean (GPSampler needs torch) and TPE
handles categorical and conditional parameters natively; the first trials are random
(``n_startup_trials``) so the model has something to fit.
"""

from __future__ import annotations

import warnings

import optuna

from automl.algorithms.base import AlgoContext, Plan
from automl.algorithms.optuna_searcher import optuna_search


def plan(ctx: AlgoContext) -> Plan:
    startup = max(2, min(10, ctx.max_recommendations // 3))
    with warnings.catch_warnings():  # `group`/`multivariate` are "experimental" since Optuna 2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=ctx.seed, multivariate=True, group=True,
                                             n_startup_trials=startup, constant_liar=True)
    return Plan(optuna_search(ctx, sampler), None, ctx.max_recommendations,
                description=f"TPE (multivariate, {startup} random start-up trials), FIFO, full budget")
