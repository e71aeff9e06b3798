"""One TPE over every rung's results: the model behind ``bohb`` and ``async_bohb``.

BOHB (Falkner et al. 2018) keeps one model per budget and waits for ``d + 3`` results at a
budget before it uses that model - 19 results for SegFormer's 16 parameters, which no rung of
TAO's default sizes (20 configurations, R = 27, eta = 3) ever gets, so BOHB degrades to
Hyperband with random search. This proposer models from the first few results instead:

* **One model, all budgets, higher budgets first.** Every configuration is one Optuna trial.
  A configuration that reached the top rung is ``COMPLETE`` with its value there; every other
  one that reported is ``PRUNED`` with its rung results as intermediate values. Optuna's TPE
  ranks exactly like that (:func:`optuna.samplers._tpe.sampler._split_trials`): completed
  trials by value first, then pruned ones by the largest step reached, then by their value at
  it. So once configurations exist at a higher budget they make the "good" set before any
  lower-budget result; until then the best low-budget results do (budget-aware weighting
  without a weight to tune; Optuna's TPE + HyperbandPruner models the same way).
* **Few points.** The model is used once ``min_points`` configurations have reported
  (Optuna's ``n_startup_trials``, default 5 here - not ``d + 3`` per budget).
* **Pending configurations.** Configurations proposed but without a result yet are
  ``RUNNING`` trials and TPE's constant liar puts them in the "bad" set, so two slots asking
  at once do not get the same point.
* **Random fraction.** ``random_fraction`` of the proposals (BOHB's 1/3 by default) are
  uniform draws, so the model cannot lock itself in.

The study is rebuilt from the recorded results at every proposal (a few hundred trials at
most; Optuna cannot change a finished trial's state once a configuration reports again at a
higher rung), seeded by the proposal's number, so a seed reproduces the proposals for a fixed
order of results. Every proposal records which model made it (:attr:`sources`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState, create_trial

from automl.brackets.proposers import quiet_study
from automl.brackets.base import Slot
from automl.space.params import SearchSpace

MIN_POINTS = 5


@dataclass
class _Config:
    params: dict[str, Any]
    distributions: dict[str, Any]
    results: dict[int, float] = field(default_factory=dict)  # epochs -> value (as reported)
    top: bool = False  # reported at the top rung


class MultiFidelityTPE:
    """Proposer (:class:`automl.brackets.base.Proposer`) for the bracket schedulers."""

    def __init__(self, space: SearchSpace, mode: str, seed: int, top_rung: int,
                 random_fraction: float = 1 / 3, min_points: int = MIN_POINTS) -> None:
        self.space = space
        self.mode = mode
        self.seed = seed
        self.top_rung = top_rung
        self.random_fraction = random_fraction
        self.min_points = min_points
        self.rng = np.random.default_rng(seed)
        self.configs: dict[str, _Config] = {}
        self.sources: dict[str, str] = {}  # trial -> "random" | "tpe" (what proposed it)
        self.count = 0

    def reported(self) -> int:
        return sum(1 for c in self.configs.values() if c.results)

    def _frozen(self) -> list[optuna.trial.FrozenTrial]:
        trials = []
        for config in self.configs.values():
            if not config.results:
                trials.append(create_trial(params=config.params,
                                           distributions=config.distributions,
                                           state=TrialState.RUNNING))
                continue
            last = max(config.results)
            if config.top:
                trials.append(create_trial(params=config.params,
                                           distributions=config.distributions,
                                           value=config.results[last],
                                           intermediate_values=dict(config.results)))
            else:
                trials.append(create_trial(params=config.params,
                                           distributions=config.distributions,
                                           state=TrialState.PRUNED,
                                           intermediate_values=dict(config.results)))
        return trials

    def propose(self, trial_id: str, slot: Slot, epochs: int) -> dict[str, Any]:
        modelled = self.reported() >= self.min_points and self.rng.random() >= self.random_fraction
        return self.ask(trial_id, "tpe" if modelled else "random")

    def ask(self, trial_id: str, source: str, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
        """Draw a configuration with the model (``source`` "tpe") or at random, with the raw
        Optuna values in ``fixed`` taken as given (a prior's proposal; a value outside its
        range is drawn instead, by Optuna's rule for enqueued parameters)."""
        self.count += 1
        seed = self.seed * 100_003 + self.count
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)  # "fixed parameter out of range"
            if source == "tpe":
                sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(
                    seed=seed, multivariate=True, group=True, constant_liar=True,
                    n_startup_trials=0)
            else:
                sampler = optuna.samplers.RandomSampler(seed=seed)
            study = quiet_study(self.mode, sampler)
            if source == "tpe":
                study.add_trials(self._frozen())
            if fixed:
                study.enqueue_trial(fixed)
            trial = study.ask()
            values = self.space.suggest(trial)
        self.configs[trial_id] = _Config(dict(trial.params), dict(trial.distributions))
        self.sources[trial_id] = source
        return values

    def observe(self, trial_id: str, rung: int, epochs: int, value: float) -> None:
        config = self.configs.get(trial_id)
        if config is None or not math.isfinite(value):
            return
        config.results[int(epochs)] = float(value)
        config.top = config.top or rung >= self.top_rung

    def source(self, trial_id: str) -> str | None:
        return self.sources.get(trial_id)
