"""Where the bracket algorithms' configurations come from (the search half).

A proposer turns a slot reserved by a bracket scheduler (:mod:`automl.brackets`) into
hyperparameters, and is told every result a trial reports at a rung. All are seeded, and
called in the driver's callback order, so the same seed gives the same configurations (with
``--max-concurrent 1``, where the order of results is fixed too).

* :class:`RandomProposer` - Optuna's ``RandomSampler`` over the define-by-run space (asha,
  hyperband, hyperband_es): conditions and pins are honoured exactly as in ``random``.
* :class:`automl.algorithms.mf_gp.MultiFidelityGP` (bohb, async_bohb): a GP over (configuration,
  budget), or :class:`automl.algorithms.mf_tpe.MultiFidelityTPE` (``--surrogate tpe``): one TPE
  over every rung's results; see their modules.
* :class:`DEProposer` - differential evolution per budget, DEHB-style (Awad et al. 2021): see
  its docstring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from automl.brackets.base import Slot
from automl.space.codec import Codec
from automl.space.params import SearchSpace


def quiet_study(mode: str | Sequence[str], sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    """An in-memory study without Optuna's log lines; ``mode``: one direction, or one per
    objective (a multi-objective study)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    modes = [mode] if isinstance(mode, str) else list(mode)
    directions = ["maximize" if m == "max" else "minimize" for m in modes]
    return optuna.create_study(directions=directions, sampler=sampler)


class RandomProposer:
    """Independent uniform draws (Optuna RandomSampler, seeded)."""

    def __init__(self, space: SearchSpace, mode: str, seed: int) -> None:
        self.space = space
        self.study = quiet_study(mode, optuna.samplers.RandomSampler(seed=seed))

    def propose(self, trial_id: str, slot: Slot, epochs: int) -> dict[str, Any]:
        return self.space.suggest(self.study.ask())

    def observe(self, trial_id: str, rung: int, epochs: int, value: float,
                values: tuple[float, ...] | None = None) -> None:
        pass

    def source(self, trial_id: str) -> str:
        return "random"


# ---------------------------------------------------------------------------------------------
# Differential evolution


@dataclass
class _Member:
    trial_id: str
    vector: np.ndarray
    score: float  # higher is better


class DEProposer:
    """Differential evolution within Hyperband brackets (DEHB, Awad et al. 2021), adapted to
    promotion by resume.

    Configurations live in the unit cube (one coordinate per searched parameter, decoded by
    :class:`automl.space.codec.Codec`). Each rung budget has a subpopulation whose size is the
    number of configurations the largest bracket evaluates at that budget (9, 3, 1 for R=9,
    eta=3), as in DEHB.

    * A new configuration for a bracket starting at budget ``b`` takes the next target of the
      subpopulation at ``b`` (round robin). While that place is empty (the first bracket, or
      a budget nobody reached yet), it is a uniform random point: DEHB's random
      initialisation.
    * Otherwise it is DE ``rand/1/bin``: ``mutant = x1 + F (x2 - x3)`` (``F = 0.5``),
      coordinates outside ``[0, 1]`` redrawn at random (DEHB's default repair), binomial
      crossover with the target (``CR = 0.5``, at least one coordinate from the mutant). The
      parents ``x1, x2, x3`` are drawn from the subpopulations at ``b`` and above - the
      configurations that were good at this budget or survived successive halving to a larger
      one (DEHB likewise lets the better configurations of other budgets parent the
      mutants) - or from every configuration seen when those are fewer than three.
    * Selection: when the new configuration reports at ``b``, it replaces its target if it is
      better (an empty place is simply filled).
    * A trial promoted to a larger budget joins that budget's subpopulation (an empty place,
      else replacing the worst member if it is better).

    Where DEHB trains the mutants of a higher budget from scratch, the higher rungs here are
    the promoted survivors themselves, resumed from their checkpoints: evolution happens
    at the brackets' first rungs, successive halving (without retraining) above them.
    """

    def __init__(self, space: SearchSpace, mode: str, seed: int, pop_sizes: dict[int, int],
                 mutation: float = 0.5, crossover: float = 0.5) -> None:
        self.codec = Codec(space)
        self.mode = mode
        self.dim = len(space.params)
        self.rng = np.random.default_rng(seed)
        self.pop_sizes = dict(pop_sizes)
        self.mutation = mutation
        self.crossover = crossover
        self.pop: dict[int, list[_Member | None]] = {
            k: [None] * n for k, n in self.pop_sizes.items()}
        self.turn: dict[int, int] = {}
        self.vectors: dict[str, np.ndarray] = {}
        self.targets: dict[str, tuple[int, int]] = {}  # trial -> (rung, place)
        self.kind: dict[str, str] = {}  # trial -> "random" | "mutant"

    def _score(self, value: float) -> float:
        return value if self.mode == "max" else -value

    def _pool(self, rung: int) -> list[np.ndarray]:
        seen: dict[str, np.ndarray] = {}
        for k, members in self.pop.items():
            if k >= rung:
                seen.update({m.trial_id: m.vector for m in members if m is not None})
        if len(seen) < 3:
            for k, members in self.pop.items():
                seen.update({m.trial_id: m.vector for m in members if m is not None})
        return list(seen.values())

    def propose(self, trial_id: str, slot: Slot, epochs: int) -> dict[str, Any]:
        rung = slot.rung
        population = self.pop.setdefault(rung, [None] * self.pop_sizes.setdefault(rung, 1))
        place = self.turn.get(rung, 0) % len(population)
        self.turn[rung] = self.turn.get(rung, 0) + 1
        target = population[place]
        pool = self._pool(rung)
        if target is None or len(pool) < 3 or self.dim == 0:
            vector = self.rng.random(self.dim)
            self.kind[trial_id] = "random"
        else:
            r1, r2, r3 = self.rng.choice(len(pool), 3, replace=False)
            mutant = pool[r1] + self.mutation * (pool[r2] - pool[r3])
            outside = (mutant < 0) | (mutant > 1)
            mutant[outside] = self.rng.random(int(outside.sum()))
            cross = self.rng.random(self.dim) < self.crossover
            cross[self.rng.integers(self.dim)] = True
            vector = np.where(cross, mutant, target.vector)
            self.kind[trial_id] = "mutant"
        self.vectors[trial_id] = vector
        self.targets[trial_id] = (rung, place)
        return self.codec.decode(vector)

    def source(self, trial_id: str) -> str | None:
        """"random" (initialisation) or "de" (a mutant)."""
        kind = self.kind.get(trial_id)
        return "de" if kind == "mutant" else kind

    def observe(self, trial_id: str, rung: int, epochs: int, value: float,
                values: tuple[float, ...] | None = None) -> None:
        if trial_id not in self.vectors or not math.isfinite(value):
            return
        member = _Member(trial_id, self.vectors[trial_id], self._score(value))
        population = self.pop.setdefault(rung, [None] * self.pop_sizes.setdefault(rung, 1))
        if any(m is not None and m.trial_id == trial_id for m in population):
            return
        start, place = self.targets[trial_id]
        if rung == start:  # selection against the target
            current = population[place]
            if current is None or member.score > current.score:
                population[place] = member
            return
        empty = [i for i, m in enumerate(population) if m is None]
        if empty:
            population[empty[0]] = member
            return
        worst = min(range(len(population)), key=lambda i: population[i].score)
        if member.score > population[worst].score:
            population[worst] = member
