"""``pb2``: Population Based Bandits (Parker-Holder et al., 2020) on Ray Tune's ``PB2``.

PB2 is PBT with a model-based *explore*: instead of multiplying the copied hyperparameters by
0.8/1.2, it fits a Gaussian process to the population's **reward changes** per interval,
``(time, reward before, hyperparameters) -> Δreward/Δtime``, with a time-varying kernel
(old observations are forgotten) and picks the new values by maximizing UCB, with the points
chosen for the other members in the same round fed back so that they are spread out (Ray's
``pb2._select_config``). Exploit, checkpoints, lineage and the "no exploit at R" rule are the
same as :mod:`automl.algorithms.pbt`, and so is the rewrite of the inherited checkpoint's
optimizer state, without which PB2's chosen learning rate and weight decay would not reach a
resumed trainer (:mod:`automl.run.perturbation`).

Ray 2.60's PB2 implements the GP with scikit-learn (no GPy), which works with numpy 2, so it is
used as is; this module only adapts it to the schema:

* **Model space.** Ray's PB2 models the raw values inside linear ``[low, high]`` bounds. A
  learning rate searched over [6e-7, 6e-4] on a log scale would then be explored only near
  6e-4, so numeric parameters are modelled in the space they are searched in: log10 of
  log-scale parameters, the exponent of powers (``math_cond '^ 2'``), the value otherwise
  (:class:`ModelSpace`). The data PB2 keeps and the UCB argmax are in that space; the chosen
  point is mapped back and clipped to the schema (:class:`~automl.algorithms.pbt.ClipToSpace`:
  bounds, conditions, multiples, ints stay ints).
* **Categoricals.** PB2's GP-bandit handles continuous parameters only (PB2-Mix, the
  categorical extension, is not in Ray). Categorical values are inherited from the parent and
  resampled with probability 0.25 (PBT's resample rate), so the population does not collapse
  onto the first winner's choices. A space with no numeric parameter is refused (use pbt).
"""

from __future__ import annotations

import math
import random
import warnings
from typing import Any

import numpy as np

from automl.algorithms.plan import AlgoContext, Plan
from automl.algorithms.pbt import (
    QUANTILE,
    RESAMPLE_PROBABILITY,
    ClipToSpace,
    EngineSchedulerMixin,
    perturbation_interval,
    population_search,
    static_bounds,
)
from automl.errors import UserError
from automl.space.params import SearchSpace


class ModelSpace:
    """Numeric parameters <-> the coordinates PB2 models (log10 / exponent / value)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.names = [p.name for p in space.params if p.kind != "categorical"]
        self._how: dict[str, tuple[str, float]] = {}
        self._bounds: dict[str, list[float]] = {}
        for name in self.names:
            param = space[name]
            low, high, _, base = static_bounds(space, param)
            if base:
                how = ("power", float(base))
                lo, hi = math.log(max(low, 1), base), math.log(max(high, 1), base)
            elif param.log and low > 0:
                how = ("log", 10.0)
                lo, hi = math.log10(low), math.log10(high)
            else:
                how = ("linear", 1.0)
                lo, hi = float(low), float(high)
            self._how[name] = how
            self._bounds[name] = [lo, hi]

    def bounds(self) -> dict[str, list[float]]:
        return {name: list(b) for name, b in self._bounds.items()}

    def to_model(self, name: str, value: Any) -> float:
        how, base = self._how[name]
        value = float(value)
        if how == "power":
            return math.log(max(value, 1e-300), base)
        if how == "log":
            return math.log10(max(value, 1e-300))
        return value

    def from_model(self, name: str, x: float) -> Any:
        how, base = self._how[name]
        x = float(x)
        if how == "power":
            value = base ** round(x)
        elif how == "log":
            value = 10.0**x
        else:
            value = x
        return int(round(value)) if self.space[name].kind == "int" else float(value)


def _model_space_pb2_class():
    import pandas as pd
    from sklearn.exceptions import ConvergenceWarning
    from ray.tune.schedulers.pb2 import PB2
    from ray.tune.schedulers.pb2 import _explore as pb2_explore
    from ray.tune.schedulers.pbt import PopulationBasedTraining

    class ModelSpacePB2(PB2):
        """Ray's PB2 with its data and its GP in :class:`ModelSpace` coordinates."""

        def __init__(self, *, space: SearchSpace, seed: int, **kwargs: Any) -> None:
            self.model = ModelSpace(space)
            super().__init__(hyperparam_bounds=self.model.bounds(), **kwargs)
            self.space = space
            self.clip = ClipToSpace(space)
            self.rng = random.Random(seed)

        def _save_trial_state(self, state, time, result, trial):
            # As PB2's, with the config in model coordinates.
            score = PopulationBasedTraining._save_trial_state(self, state, time, result, trial)
            names = self.model.names
            values = [self.model.to_model(name, trial.config[name]) for name in names]
            entry = pd.DataFrame([[trial, result[self._time_attr], *values, score]],
                                 columns=["Trial", "Time", *names, "Reward"])
            self.data = entry if self.data.empty else pd.concat([self.data, entry])
            self.data = self.data.reset_index(drop=True)
            self.data.Trial = self.data.Trial.astype("str")
            return score

        def _get_new_config(self, trial, trial_to_clone):
            # As PB2's (the GP-UCB step and its bookkeeping of the points chosen this round),
            # in model coordinates; then back to the schema.
            names = self.model.names
            if self.data["Time"].max() > self.last_exploration_time:
                self.current = None
            parent = {name: self.model.to_model(name, trial_to_clone.config[name]) for name in names}
            with warnings.catch_warnings():  # GP fit/optimizer chatter, not the user's business
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                chosen, data = pb2_explore(self.data, self._hyperparam_bounds_flat, self.current,
                                           trial_to_clone, trial, parent)
            self.data = data.copy()
            new = np.array([float(chosen[name]) for name in names]).reshape(1, len(names))
            if self.data["Time"].max() > self.last_exploration_time:
                self.last_exploration_time = self.data["Time"].max()
                self.current = new.copy()
            else:
                self.current = np.concatenate((self.current, new), axis=0)
            config = dict(trial_to_clone.config)
            for name in names:
                config[name] = self.model.from_model(name, chosen[name])
            for param in self.space.params:
                if param.kind == "categorical" and self.rng.random() < RESAMPLE_PROBABILITY:
                    config[param.name] = self.rng.choice(list(param.choices))
            return self.clip(config), {}

    return ModelSpacePB2


def _engine_pb2_class():
    class EnginePB2(EngineSchedulerMixin, _model_space_pb2_class()):
        """PB2 in model coordinates, with the engine's lineage, copies and end-of-budget rule."""

        def __init__(self, *, max_epochs: int, population: int, multiplex: bool | None = None,
                     **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.max_epochs, self.population, self.multiplex = max_epochs, population, multiplex

    return EnginePB2


def plan(ctx: AlgoContext) -> Plan:
    if not any(p.kind != "categorical" for p in ctx.space.params):
        raise UserError("--algo pb2: PB2 explores numeric parameters and none is searched; use "
                        "--algo pbt for a categorical-only space")
    interval = perturbation_interval(ctx)
    scheduler = _engine_pb2_class()(
        space=ctx.space, seed=ctx.seed, max_epochs=ctx.budget.max_epochs,
        population=ctx.population_size, time_attr="epoch",
        metric=ctx.metric, mode=ctx.mode, perturbation_interval=interval,
        quantile_fraction=QUANTILE, log_config=False, synch=False,
    )
    return Plan(population_search(ctx, scheduler), scheduler, ctx.population_size,
                checkpoints=True, interval=interval,
                description=f"PB2: population {ctx.population_size}, {ctx.budget.max_epochs} "
                            f"epochs each, exploit every {interval} epochs, GP-UCB explore "
                            f"(time-varying kernel) of {len(ModelSpace(ctx.space).names)} "
                            f"numeric parameters")
