"""The algorithm interface: settings in, a Ray Tune (search algorithm, scheduler) pair out.

Like Ray Tune, we keep *what to try next* (a ``Searcher``) apart from *how long to let a trial
run* (a ``TrialScheduler``); an algorithm module only decides which of each to combine and how
the trial processes must behave (report checkpoints so they can be paused/promoted, the
checkpoint interval that lines up with rungs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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
    prior: bool = True  # bohb/async_bohb: the schema's defaults as a prior


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
