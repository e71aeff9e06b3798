"""The algorithm registry: ``--algo NAME`` → an :class:`Algorithm` whose module plans the search.

This dict is the one list of algorithms: the Settings literal (study-file validation), the
``--algo`` help, the progress totals (:meth:`Algorithm.trial_count`) and the README's table
(:func:`markdown_table`, checked by a test) are derived from it. Adding an algorithm is one
module with ``plan(ctx) -> Plan`` plus one line here (README, "Extending").

Entries name their module instead of importing it: the CLI and the settings model read the
registry without importing Ray Tune.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from automl.algorithms.plan import AlgoContext, Budget, Plan
from automl.errors import UserError, did_you_mean


@dataclass(frozen=True)
class Algorithm:
    """One ``--algo`` choice: where its ``plan`` lives, what the CLI must know before planning,
    and its row of the README's table."""

    module: str  # under automl.algorithms, with a ``plan(ctx: AlgoContext) -> Plan``
    search: str  # README: what proposes configurations
    scheduler: str  # README: what decides how long a trial trains
    budget: str = "full"  # README: the budget column
    # A population of population_size trials (PBT family) instead of max_recommendations configs.
    population: bool = False
    # Searches several objectives (automl.objective: a Pareto front or their weighted sum);
    # the others optimize the primary objective only and refuse several.
    multi_objective: bool = False

    def plan(self, ctx: AlgoContext) -> Plan:
        return importlib.import_module(f"automl.algorithms.{self.module}").plan(ctx)

    def trial_count(self, max_recommendations: int, population_size: int) -> int:
        """How many trials an experiment runs: a population, or max_recommendations configs."""
        return population_size if self.population else max_recommendations


_PBT = ("Ray Tune's {}; each trainer run stops at the next perturbation boundary "
        "(`train.num_epochs`); exploit copies the parent's checkpoint into the child's folder "
        "(`lineage.json`), explore stays inside the schema's bounds and types")
ALGORITHMS: dict[str, Algorithm] = {
    "random": Algorithm("random", "Optuna RandomSampler", "FIFO", multi_objective=True),
    "bayesian": Algorithm("bayesian", "Optuna multivariate TPE, constant liar for parallel trials "
                          "(several objectives: multi-objective TPE, MOTPE)", "FIFO",
                          multi_objective=True),
    "nsga2": Algorithm("nsga2", "Optuna NSGAIISampler (NSGA-II: non-dominated sorting and crowding "
                       "distance; generations of max(4, configurations / 4))", "FIFO",
                       multi_objective=True),
    "bfbo": Algorithm("bfbo", "batch BO for parallel full-budget trials (see `algorithms/bfbo.py`)",
                      "FIFO"),
    "asha": Algorithm("asha", "random", "promotion-based ASHA (our `TrialScheduler`): a paused "
                      "trial is promoted by **resuming** from its rung checkpoint (several "
                      "objectives: MO-ASHA, a rung ranked by non-dominated sorting and crowding "
                      "distance)", "epochs, rungs r·η^k", multi_objective=True),
    "hyperband": Algorithm("hyperband", "random", "textbook Hyperband brackets, synchronous "
                           "successive halving, survivors resumed (several objectives: "
                           "non-dominated sorting)", "epochs", multi_objective=True),
    "hyperband_es": Algorithm("hyperband_es", "random", "Hyperband + stop a bracket whose best is "
                              "outside the top 1/η of other brackets at the same budget", "epochs"),
    "bohb": Algorithm("bohb", "a Gaussian process over (configuration, budget): expected "
                      "improvement at the largest budget with enough results, trials in flight "
                      "as kriging believers, 1/4 random (`--surrogate tpe`: one Optuna TPE over "
                      "every rung's results, higher budgets first); the schema's defaults as a "
                      "prior weighted by evidence at each rung: dropped once the default ranks "
                      "below the random median, sampled closer while above it (`--no-prior` to "
                      "switch off); several objectives: multi-objective TPE at the largest "
                      "budget with 5 results, the template's configuration first",
                      "Hyperband brackets (several objectives: non-dominated sorting)",
                      "epochs", multi_objective=True),
    "async_bohb": Algorithm("async_bohb", "the same model and prior as `bohb`",
                            "promotion-based ASHA: no slot waits at a bracket barrier (several "
                            "objectives: MO-ASHA)", "epochs", multi_objective=True),
    "dehb": Algorithm("dehb", "differential evolution per budget", "Hyperband brackets", "epochs"),
    "pbt": Algorithm("pbt", "population", _PBT.format("PBT"), "epochs", population=True),
    "pb2": Algorithm("pb2", "population (GP-bandit explore)", _PBT.format("PB2"), "epochs",
                     population=True),
}
DEFAULT = "bayesian"
# Full-budget algorithms always lock train.num_epochs.
FIXED_BUDGET = frozenset(name for name, algo in ALGORITHMS.items() if algo.budget == "full")


def available() -> list[str]:
    return list(ALGORITHMS)


def get_algorithm(name: str) -> Algorithm:
    algorithm = ALGORITHMS.get(name)
    if algorithm is None:
        raise UserError(f"--algo {name}: unknown or not yet available algorithm"
                        f"{did_you_mean(name, ALGORITHMS)}; available: {', '.join(ALGORITHMS)}")
    return algorithm


def build_plan(name: str, ctx: AlgoContext) -> Plan:
    return get_algorithm(name).plan(ctx)


def markdown_table() -> str:
    """The README's table of algorithms (a test checks that the README has this exact text)."""
    rows = ["| name | search | scheduler | budget |", "|---|---|---|---|"]
    rows += [f"| `{name}`{' (default)' if name == DEFAULT else ''} | {algo.search} | "
             f"{algo.scheduler} | {algo.budget} |" for name, algo in ALGORITHMS.items()]
    return "\n".join(rows)


__all__ = ["ALGORITHMS", "DEFAULT", "AlgoContext", "Algorithm", "Budget", "Plan", "FIXED_BUDGET",
           "available", "build_plan", "get_algorithm", "markdown_table"]
