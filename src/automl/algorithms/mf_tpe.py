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

Several objectives (:class:`automl.objective.Objectives`):

* **Weighted sum** (``scalarize: weighted``): the model above, on the weighted sum (maximized).
* **Pareto** (the default): Optuna's TPE is then MOTPE (its good set is chosen by non-dominated
  sorting, ties by hypervolume contribution), but Optuna ranks ``PRUNED`` trials by one
  intermediate value, which a multi-objective study does not have. So the model follows BOHB's
  rule instead: it is fitted on the results at the **largest budget where at least**
  ``min_points`` **configurations reported every objective** (the most populated budget until
  one has that many), each a ``COMPLETE`` trial with its objectives there; configurations
  without a result yet are the constant liar's ``RUNNING`` trials, and those that stopped below
  that budget are left out (their budget is not comparable). ``first`` (the template's
  configuration) is proposed first, so the result has its baseline (the schema-defaults prior
  of :mod:`automl.algorithms.prior` ranks one objective and is not used).

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

from automl.brackets.base import Slot
from automl.brackets.proposers import quiet_study
from automl.objective import Objectives
from automl.space.params import SearchSpace

MIN_POINTS = 5


@dataclass
class _Config:
    params: dict[str, Any]
    distributions: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)  # the configuration (space.suggest's)
    results: dict[int, float] = field(default_factory=dict)  # epochs -> value (as reported)
    top: bool = False  # reported at the top rung
    # epochs -> every objective as reported (a Pareto search; absent where one was missing)
    points: dict[int, tuple[float, ...]] = field(default_factory=dict)


class MultiFidelityTPE:
    """Proposer (:class:`automl.brackets.base.Proposer`) for the bracket schedulers."""

    def __init__(self, space: SearchSpace, mode: str, seed: int, top_rung: int,
                 random_fraction: float = 1 / 3, min_points: int = MIN_POINTS,
                 objectives: Objectives | None = None,
                 first: dict[str, Any] | None = None) -> None:
        self.space = space
        self.objectives = objectives or Objectives.single("value", mode)  # type: ignore[arg-type]
        # What ``results`` hold and how they rank: the weighted sum is maximized.
        self.mode = "max" if self.objectives.weighted else mode
        self.first = first  # a configuration proposed before any other (Pareto: the baseline)
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
        if self.objectives.pareto:
            return self._frozen_front()
        trials = []
        for config in self.configs.values():
            if not config.results:
                trials.append(_as_trial(config, state=TrialState.RUNNING))
            elif config.top:
                trials.append(_as_trial(config, value=config.results[max(config.results)],
                                        intermediate_values=dict(config.results)))
            else:
                trials.append(_as_trial(config, state=TrialState.PRUNED,
                                        intermediate_values=dict(config.results)))
        return trials

    def model_budget(self) -> int | None:
        """Pareto: the budget (epochs) the model is fitted at (see the module's docstring)."""
        counts: dict[int, int] = {}
        for config in self.configs.values():
            for epochs in config.points:
                counts[epochs] = counts.get(epochs, 0) + 1
        if not counts:
            return None
        enough = [epochs for epochs, n in counts.items() if n >= self.min_points]
        return max(enough) if enough else max(counts, key=lambda e: (counts[e], e))

    def _frozen_front(self) -> list[optuna.trial.FrozenTrial]:
        budget = self.model_budget()
        trials = []
        for config in self.configs.values():
            if not config.results:
                trials.append(_as_trial(config, state=TrialState.RUNNING))
            elif budget in config.points:
                trials.append(_as_trial(config, values=list(config.points[budget])))
        return trials

    def propose(self, trial_id: str, slot: Slot, epochs: int) -> dict[str, Any]:
        if self.first is not None and not self.configs:
            return self.ask(trial_id, "baseline", fixed=self.space.draws(self.first))
        modelled = self.reported() >= self.min_points and self.rng.random() >= self.random_fraction
        return self.ask(trial_id, "tpe" if modelled else "random")

    def ask(self, trial_id: str, source: str, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
        """Draw a configuration with the model (``source`` "tpe") or at random, with the raw
        Optuna values in ``fixed`` taken as given (a prior's proposal; a value outside its
        range is drawn instead, by Optuna's rule for enqueued parameters)."""
        self.count += 1
        # One 32-bit seed per proposal (Optuna's samplers take nothing larger; experiment
        # seeds use all 32 bits, so seed * k + count would overflow).
        seed = int(np.random.SeedSequence([self.seed, self.count]).generate_state(1)[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)  # "fixed parameter out of range"
            if source == "tpe":
                sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(
                    seed=seed, multivariate=True, group=True, constant_liar=True,
                    n_startup_trials=0)
            else:
                sampler = optuna.samplers.RandomSampler(seed=seed)
            study = quiet_study([o.direction for o in self.objectives]
                                if self.objectives.pareto else self.mode, sampler)
            if source == "tpe":
                study.add_trials(self._frozen())
            if fixed:
                study.enqueue_trial(fixed)
            trial = study.ask()
            values = self.space.suggest(trial)
        self.configs[trial_id] = _Config(dict(trial.params), dict(trial.distributions),
                                         dict(values))
        self.sources[trial_id] = source
        return values

    def observe(self, trial_id: str, rung: int, epochs: int, value: float,
                values: tuple[float, ...] | None = None) -> None:
        config = self.configs.get(trial_id)
        if self.objectives.weighted:  # the model ranks the sum; none without every objective
            if values is None:
                return
            value = self.objectives.scalar(values)
        if config is None or not math.isfinite(value):
            return
        config.results[int(epochs)] = float(value)
        config.top = config.top or rung >= self.top_rung
        if self.objectives.pareto and values is not None:
            config.points[int(epochs)] = tuple(values)

    def source(self, trial_id: str) -> str | None:
        return self.sources.get(trial_id)


def _as_trial(config: _Config, **fields: Any) -> optuna.trial.FrozenTrial:
    """One configuration as the Optuna trial the model is fitted on (``fields``: its state,
    value(s) and intermediate values)."""
    return create_trial(params=config.params, distributions=config.distributions, **fields)
