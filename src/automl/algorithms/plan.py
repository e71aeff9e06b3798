"""The algorithm interface: settings in, a Ray Tune (search algorithm, scheduler) pair out.

Like Ray Tune, we keep *what to try next* (a ``Searcher``) apart from *how long to let a trial
run* (a ``TrialScheduler``); an algorithm module only decides which of each to combine and how
the trial processes must behave (report checkpoints so they can be paused/promoted, the
checkpoint interval that lines up with rungs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from automl.objective import Objectives
from automl.space.params import SearchSpace


@dataclass(frozen=True)
class Budget:
    """Fidelity is epochs: R = ``max_epochs``, r = ``min_epochs``, η = ``eta``."""

    max_epochs: int
    min_epochs: int = 1
    eta: int = 3


@dataclass(frozen=True)
class AlgoContext:
    space: SearchSpace
    metric: str
    mode: Literal["max", "min"]
    seed: int
    budget: Budget
    max_recommendations: int
    max_concurrent: int
    population_size: int
    fixed_budget: bool
    prior: bool = True  # the template's configuration first (bohb/async_bohb: as a prior)
    # Every objective (metric/mode above are its primary's, what single-objective algorithms
    # follow); None: the primary alone.
    objectives: Objectives | None = None
    # Where trial folders are (trials/<trial id>): measured objectives are read from them.
    trials_dir: Path | None = None
    # The model of bohb/async_bohb: a GP over (configuration, budget) or one TPE over all rungs.
    surrogate: Literal["gp", "tpe"] = "gp"

    @property
    def all_objectives(self) -> Objectives:
        return self.objectives or Objectives.single(self.metric, self.mode)


def template_configuration(space: SearchSpace) -> dict[str, Any] | None:
    """The template's configuration, the baseline of every result: each searched parameter at
    its schema default, made valid for the space by :meth:`~automl.space.params.Param.nearest`
    (the user's ``--set`` overrides and pins are in every trial's spec anyway). None when a parameter has no default or none
    fits: then there is no such configuration to train, and none is invented."""
    env = {**space.context, **space.pinned}
    values: dict[str, Any] = {}
    for param in space.params:
        if param.default is None:
            return None
        try:
            values[param.name] = env[param.name] = param.nearest(param.default, env)
        except ValueError:
            return None
    return values


@dataclass
class Plan:
    """What the engine hands to ``tune.Tuner``."""

    search_alg: Any  # ray.tune.search.Searcher | None
    scheduler: Any  # ray.tune.schedulers.TrialScheduler | None
    num_samples: int
    # Trials report a checkpoint with each result so a scheduler can pause and resume them.
    checkpoints: bool = False
    # Checkpoint/validation interval in epochs (None: keep the template's).
    interval: int | None = None
    description: str = ""
