"""``nsga2``: NSGA-II (Deb et al. 2002), Optuna's ``NSGAIISampler``, full budget.

The evolutionary alternative to ``bayesian``'s MOTPE for a multi-objective search at full
budget: each generation's parents are chosen by non-dominated sorting and crowding distance,
children by uniform crossover and mutation. It needs no model, so it keeps working when
objectives are noisy or the space is mostly categorical (architecture choices), but it learns
only once per generation: with TAO's budgets (20 configurations) a generation is
:func:`population_size` trials, so the search gets a few generations rather than being one
random generation of Optuna's default 50. With one objective (or their weighted sum) it is a
genetic algorithm on that number.

Trials run under Ray Tune like ``random``/``bayesian`` (:mod:`automl.algorithms.optuna_searcher`),
the template's configuration first (the baseline, enqueued as generation 0's first member).
"""

from __future__ import annotations

import optuna

from automl.algorithms.plan import AlgoContext, Plan
from automl.algorithms.optuna_searcher import baseline_description, optuna_search


def population_size(max_recommendations: int) -> int:
    """A quarter of the configurations (at least 4, Optuna's default 50 at most): four
    generations whatever the budget, so selection acts a few times."""
    return max(4, min(50, max_recommendations // 4))


def plan(ctx: AlgoContext) -> Plan:
    population = population_size(ctx.max_recommendations)
    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=ctx.seed)
    kind = "several objectives" if ctx.all_objectives.pareto else "one objective"
    return Plan(optuna_search(ctx, sampler), None, ctx.max_recommendations,
                description=f"NSGA-II ({kind}, generations of {population}), FIFO, full "
                            f"budget{baseline_description(ctx)}")
