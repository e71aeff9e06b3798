"""The schema's defaults as a prior that a bad default cannot hurt (after PriorBand's ensemble
weighting, Mallik et al. 2023, and piBO).

TAO's schemas carry an expert default for every parameter, mostly good, sometimes not, and the
user cannot know which before the search. :class:`PriorProposer` wraps a
:class:`~automl.algorithms.mf_tpe.MultiFidelityTPE` (or its GP sibling,
:class:`~automl.algorithms.mf_gp.MultiFidelityGP`) and lets the evidence decide:

* The **first** configuration is the default configuration (each searched parameter at its
  schema default, made valid by :meth:`automl.space.params.Param.nearest`; a parameter without a
  default is drawn at random).
* Each later proposal is, with probability :meth:`PriorProposer.weight`, a draw from the
  default's **neighbourhood** (every numeric coordinate moved by a normal step of
  :attr:`PriorProposer.spread` of its range, on the log scale where the parameter is log; a
  categorical keeps the default with probability ``1 - spread``, else a uniform choice);
  otherwise it comes from the wrapped model.
* **The weight follows the default's results against the random proposals' at the same
  budget.** PriorBand mixes uniform, prior and incumbent sampling and moves probability between
  them by how well each explains the best configurations of the highest rung that has enough
  of them. Here the question is the one a user asks: is the default better than a random
  configuration? At every rung the default reaches, its value is ranked among the values of the
  model's uniform draws (source ``random``) at that budget, from the first bracket on, as soon
  as ``eta`` of them reported there. The highest such budget decides (a higher rung is closer to
  the full budget, so a low-fidelity verdict is overturned when the default survives to a rung
  where the ranking changes). With ``q`` the share of those random configurations the default
  beats (a tie counts half):

  - ``q < 1/2`` (worse than their median): weight 0, no more sampling around the default;
  - ``q >= 1/2``: weight ``weight0 + (weight_max - weight0) (2q - 1)`` and neighbourhood width
    ``spread0 (1 - (2q - 1) / 2)``: the better the default, the more and the closer the samples
    around it;
  - before any verdict: ``weight0`` and ``spread0``.

  The weight then decays with evidence, ``0.5 ** (n / halflife)`` after ``n`` configurations
  reported, so the model (which sees the prior's results too) takes over as it learns.
* **Why it changed.** Each verdict that changes the weight is written as one sentence
  (:attr:`PriorProposer.notes`) and attached to the label of the next proposal
  (:meth:`source`), which the progress line (``… proposed by tpe; prior weight 0.50 -> 0: …``)
  and the trial's MLflow tag ``proposed_by`` carry.

Neighbourhood draws and the default go through the wrapped model's Optuna trial
(``enqueue_trial``), so they are recorded and modelled like any other proposal, and the
define-by-run space keeps every condition (a value its conditions rule out is redrawn).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np

from automl.algorithms.mf_tpe import MultiFidelityTPE
from automl.brackets.base import Slot
from automl.space.codec import reflect
from automl.space.params import Param, SearchSpace, power_exponents


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


@dataclass(frozen=True)
class Verdict:
    """The default against the random proposals at one budget."""

    epochs: int
    value: float  # the default's value there (as reported)
    median: float  # the random proposals' median there
    count: int  # how many random proposals reported there
    beats: float  # q: share of them the default beats (a tie counts half)

    @property
    def better(self) -> bool:
        return self.beats >= 0.5


class PriorProposer:
    """Default first, then its neighbourhood, weighted by the default's rank among random
    proposals at the highest budget it reached."""

    def __init__(self, model: MultiFidelityTPE, space: SearchSpace, seed: int, eta: int,
                 weight0: float = 0.5, weight_max: float = 0.8, halflife: float = 10.0,
                 spread: float = 0.15) -> None:
        self.model = model
        self.space = space
        self.eta = eta
        self.weight0 = weight0
        self.weight_max = weight_max
        self.halflife = halflife
        self.spread0 = spread
        self.rng = np.random.default_rng(seed + 7)
        self.default_id: str | None = None
        self.default = self._default()
        self.verdict: Verdict | None = None
        self.notes: list[str] = []  # why the weight changed, in order
        self._pending_note: str | None = None
        self.labels: dict[str, str] = {}  # trial -> source label with the note it carried

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

    @property
    def strength(self) -> float:
        """``2q - 1`` of the verdict when the default is better (0 before any verdict)."""
        if self.verdict is None or not self.verdict.better:
            return 0.0
        return 2 * self.verdict.beats - 1

    @property
    def spread(self) -> float:
        return self.spread0 * (1 - self.strength / 2)

    def _base_weight(self) -> float:
        if not self.default or self.verdict is not None and not self.verdict.better:
            return 0.0
        return self.weight0 + (self.weight_max - self.weight0) * self.strength

    def weight(self) -> float:
        return self._base_weight() * 0.5 ** (self.model.reported() / self.halflife)

    def _neighbour(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        spread = self.spread
        for param in self.space.params:
            if param.name not in self.default:
                continue
            centre = self.default[param.name]
            if param.kind == "categorical" and not param.weights:
                keep = self.rng.random() >= spread
                out[param.name] = centre if keep else param.choices[
                    int(self.rng.integers(len(param.choices)))]
                continue
            low, high, log = self._raw_range(param)
            if high <= low:
                out[param.name] = centre
                continue
            to_unit = (lambda v: (math.log(v) - math.log(low)) / (math.log(high) - math.log(low))) \
                if log else (lambda v: (v - low) / (high - low))
            u = float(reflect(to_unit(centre) + self.rng.normal(0.0, spread)))  # none on a bound
            value = math.exp(math.log(low) + u * (math.log(high) - math.log(low))) if log \
                else low + u * (high - low)
            value = min(max(value, low), high)  # exp(log(high)) can exceed high by a rounding
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
            exponents = power_exponents(base, param.low, param.high)
            return float(exponents[0]), float(exponents[-1]), False
        log = bool(param.log and param.low and param.low > 0)
        return float(param.low), float(param.high), log

    # -- the evidence -----------------------------------------------------------------------
    def _judge(self) -> Verdict | None:
        """The default against the random proposals at the highest budget where it and at
        least ``eta`` of them reported."""
        config = self.model.configs.get(self.default_id or "")
        if config is None:
            return None
        sign = 1.0 if self.model.mode == "max" else -1.0
        for epochs in sorted(config.results, reverse=True):
            randoms = [c.results[epochs] for key, c in self.model.configs.items()
                       if self.model.sources.get(key) == "random" and epochs in c.results]
            if len(randoms) < self.eta:
                continue
            mine = sign * config.results[epochs]
            beats = sum(1.0 if mine > sign * v else 0.5 if mine == sign * v else 0.0
                        for v in randoms) / len(randoms)
            return Verdict(epochs, config.results[epochs], statistics.median(randoms),
                           len(randoms), beats)
        return None

    def _update(self) -> None:
        verdict = self._judge()
        if verdict is None or verdict == self.verdict:
            return
        before = self._base_weight()
        self.verdict = verdict
        after = self._base_weight()
        if self.notes and math.isclose(before, after, abs_tol=0.005):
            return  # the same decision on more evidence: nothing new to say
        side = ("better than" if verdict.beats > 0.5 else "level with") if verdict.better \
            else "worse than"
        consequence = (f"sampling around it, width {self.spread:.2f} of each range"
                       if verdict.better else "no more sampling around it")
        note = (f"prior weight {before:.2f} -> {after:.2f}: default {verdict.value:.4g} at "
                f"{verdict.epochs} epoch{'s' if verdict.epochs != 1 else ''} is {side} the median {verdict.median:.4g} of "
                f"{verdict.count} random configurations (beats {verdict.beats:.0%}); "
                f"{consequence}")
        self.notes.append(note)
        self._pending_note = note

    # -- Proposer ---------------------------------------------------------------------------
    def propose(self, trial_id: str, slot: Slot, epochs: int) -> dict[str, Any]:
        if self.default_id is None and self.default:
            self.default_id = trial_id
            return self.model.ask(trial_id, "prior (default)", fixed=dict(self.default))
        self._update()
        if self.rng.random() < self.weight():
            values = self.model.ask(trial_id, "prior", fixed=self._neighbour())
        else:
            values = self.model.propose(trial_id, slot, epochs)
        if self._pending_note:
            self.labels[trial_id] = f"{self.model.source(trial_id)}; {self._pending_note}"
            self._pending_note = None
        return values

    def observe(self, trial_id: str, rung: int, epochs: int, value: float,
                values: tuple[float, ...] | None = None) -> None:
        self.model.observe(trial_id, rung, epochs, value, values)
        self._update()

    def source(self, trial_id: str) -> str | None:
        """The model that proposed ``trial_id`` ("prior (default)", "prior", "gp", "tpe",
        "random"), followed by why the prior's weight changed when it changed just before."""
        return self.labels.get(trial_id) or self.model.source(trial_id)
