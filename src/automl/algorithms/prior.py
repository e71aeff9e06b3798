"""The schema's defaults as a prior (in the spirit of PriorBand, Mallik et al. 2023, and piBO).

TAO's schemas carry an expert default for every parameter. :class:`PriorProposer` wraps a
:class:`~automl.algorithms.mf_tpe.MultiFidelityTPE`:

* The **first** configuration is the default configuration (each searched parameter at its
  schema default, made valid by :meth:`automl.space.params.Param.nearest`; a parameter without a
  default is drawn at random).
* Each later proposal is, with probability :meth:`PriorProposer.weight`, a draw from the
  default's **neighbourhood** (every numeric coordinate moved by a normal step of
  ``spread`` of its range, on the log scale where the parameter is log; a categorical keeps
  the default with probability ``1 - spread``, else a uniform choice); otherwise it comes from
  the wrapped model.
* The weight **decays with evidence**: ``weight0 * 0.5 ** (n / halflife)`` after ``n``
  configurations reported, and it drops to 0 for good as soon as the default configuration is
  in the worse half of the configurations that reported at its first budget (at least
  ``eta`` of them): a bad prior is abandoned after one low-budget evaluation of the default
  and the few neighbours proposed before that result came in.

Neighbourhood draws and the default go through the wrapped model's Optuna trial
(``enqueue_trial``), so they are recorded and modelled like any other proposal, and the
define-by-run space keeps every condition (a value its conditions rule out is redrawn).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from automl.algorithms.mf_tpe import MultiFidelityTPE
from automl.brackets.base import Slot
from automl.space.params import Param, SearchSpace, _exponents


def _raw(param: Param, value: Any) -> Any:
    """A valid value -> the raw value Optuna records for it (:meth:`Param.sample`'s draw)."""
    if param.kind == "categorical" and param.weights:
        cumulative = np.cumsum(param.weights) / sum(param.weights)
        index = list(param.choices).index(value)
        return float(cumulative[index] - param.weights[index] / sum(param.weights) / 2)
    base = next((int(x) for op, x in param.clauses if op == "^"), None)
    if base:
        return int(round(math.log(value, base)))
    return value


class PriorProposer:
    """Default first, then its neighbourhood with a weight that decays as evidence comes in."""

    def __init__(self, model: MultiFidelityTPE, space: SearchSpace, seed: int, eta: int,
                 weight0: float = 0.5, halflife: float = 10.0, spread: float = 0.15) -> None:
        self.model = model
        self.space = space
        self.eta = eta
        self.weight0 = weight0
        self.halflife = halflife
        self.spread = spread
        self.rng = np.random.default_rng(seed + 7)
        self.default_id: str | None = None
        self.rejected = False
        self.default = self._default()

    # -- the prior --------------------------------------------------------------------------
    def _default(self) -> dict[str, Any]:
        """Raw Optuna values of the default configuration (parents first)."""
        env = {**self.space.context, **self.space.pinned}
        raw: dict[str, Any] = {}
        for param in self.space.params:
            if param.default is None:
                continue
            try:
                value = param.nearest(param.default, env)
            except ValueError:
                continue
            env[param.name] = value
            raw[param.name] = _raw(param, value)
        return raw

    def _neighbour(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for param in self.space.params:
            if param.name not in self.default:
                continue
            centre = self.default[param.name]
            if param.kind == "categorical" and not param.weights:
                keep = self.rng.random() >= self.spread
                out[param.name] = centre if keep else param.choices[
                    int(self.rng.integers(len(param.choices)))]
                continue
            low, high, log = self._raw_range(param)
            if high <= low:
                out[param.name] = centre
                continue
            to_unit = (lambda v: (math.log(v) - math.log(low)) / (math.log(high) - math.log(low))) \
                if log else (lambda v: (v - low) / (high - low))
            u = min(max(to_unit(centre) + self.rng.normal(0.0, self.spread), 0.0), 1.0)
            value = math.exp(math.log(low) + u * (math.log(high) - math.log(low))) if log \
                else low + u * (high - low)
            is_int = param.kind == "int" or isinstance(centre, int) and not isinstance(centre, bool)
            out[param.name] = int(round(value)) if is_int else float(value)
        return out

    @staticmethod
    def _raw_range(param: Param) -> tuple[float, float, bool]:
        """The raw draw's range without conditions on a parent (they are re-checked by the
        define-by-run space when the draw is replayed)."""
        if param.kind == "categorical":  # weighted: a quantile
            return 0.0, 1.0, False
        base = next((int(x) for op, x in param.clauses if op == "^"), None)
        if base:
            exponents = _exponents(base, param.low, param.high)
            return float(exponents[0]), float(exponents[-1]), False
        log = bool(param.log and param.low and param.low > 0)
        return float(param.low), float(param.high), log

    def weight(self) -> float:
        if self.rejected or not self.default:
            return 0.0
        return self.weight0 * 0.5 ** (self.model.reported() / self.halflife)

    def _check_default(self) -> None:
        """Forget the prior once the default is in the worse half at its first budget."""
        config = self.model.configs.get(self.default_id or "")
        if self.rejected or config is None or not config.results:
            return
        epochs = min(config.results)
        mine = config.results[epochs]
        others = sorted(c.results[epochs] for key, c in self.model.configs.items()
                        if key != self.default_id and epochs in c.results)
        if len(others) < self.eta:
            return
        if self.model.mode == "max":
            others = [-v for v in others][::-1]
            mine = -mine
        # rank of the default among the others (0 = best); worse half -> drop the prior
        if bisect.bisect_left(others, mine) > len(others) / 2:
            self.rejected = True

    # -- Proposer ---------------------------------------------------------------------------
    def propose(self, trial_id: str, slot: Slot, epochs: int) -> dict[str, Any]:
        if self.default_id is None and self.default:
            self.default_id = trial_id
            return self.model.ask(trial_id, "prior (default)", fixed=dict(self.default))
        self._check_default()
        if self.rng.random() < self.weight():
            return self.model.ask(trial_id, "prior", fixed=self._neighbour())
        return self.model.propose(trial_id, slot, epochs)

    def observe(self, trial_id: str, rung: int, epochs: int, value: float) -> None:
        self.model.observe(trial_id, rung, epochs, value)
        self._check_default()

    def source(self, trial_id: str) -> str | None:
        return self.model.source(trial_id)
