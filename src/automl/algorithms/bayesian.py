"""``bayesian``: model-based search at full budget.

Optuna's multivariate TPE (``group=True`` so conditional parameters are modelled jointly). TPE
rather than Optuna's GPSampler because the engine must stay lean (GPSampler needs torch) and TPE
handles categorical and conditional parameters natively; the first 10 trials are random
(``n_startup_trials``, Optuna's default) so the model has something to fit: a budget of 10 trials
or fewer is a random search, and says so. With several objectives the same sampler is Optuna's
multi-objective TPE (MOTPE: its split into good and bad points ranks by non-dominated sorting).
"""

from __future__ import annotations

import warnings

import optuna

from automl.algorithms.plan import AlgoContext, Plan
from automl.algorithms.optuna_searcher import baseline_description, optuna_search


def plan(ctx: AlgoContext) -> Plan:
    # Optuna's own default: 10 random points before TPE fits. A model fitted on 2-3 points in
    # SegFormer's 16-D space only exploits whichever poor point came first: on the bundled trainer
    # 6-trial TPE runs with 2 start-up points scored below 6 random draws (benchmarks/segformer.md).
    startup = min(10, ctx.max_recommendations)
    with warnings.catch_warnings():  # `group`/`multivariate` are "experimental" since Optuna 2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=ctx.seed, multivariate=True, group=True,
                                             n_startup_trials=startup, constant_liar=True)
    kind = "multi-objective TPE (MOTPE)" if ctx.all_objectives.pareto else "TPE"
    return Plan(optuna_search(ctx, sampler), None, ctx.max_recommendations,
                description=f"{kind} (multivariate, {startup} random start-up trials), FIFO, "
                            f"full budget{baseline_description(ctx)}")
