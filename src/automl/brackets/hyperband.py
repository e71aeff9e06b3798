"""Hyperband (Li et al. 2018) with synchronous successive halving and promotion by resume,
optionally stopping hopeless brackets early (``hyperband_es``).

Allocation: :func:`~automl.brackets.budgets.hyperband_brackets` - textbook brackets
``s = s_max..0``, ``n = ceil((s_max + 1) / (s + 1) * eta**s)`` configurations at ``R * eta**-s``
epochs, ``floor(n * eta**-i)`` of them at the bracket's ``i``-th rung. Within a bracket, rung
``i`` is complete when every configuration of the bracket at that rung has reported it (or
failed); the best ``n_{i+1}`` (metric and direction; ties by creation order; with several
objectives by non-dominated sorting and crowding distance, MO-Hyperband, see
:mod:`automl.brackets.base`) are then promoted -
resumed from their rung checkpoint, never retrained - and the others are stopped (they keep
their results).

Order and parallelism: brackets are started in textbook order (``s_max`` first). A free slot
goes to a pending promotion of the oldest bracket first, else to a new configuration of the
oldest bracket that still has some to start. So with one slot Hyperband runs exactly as
written (bracket after bracket); with more slots, a bracket waiting for its stragglers lends
idle slots to the next bracket instead of leaving them empty. The allocation per bracket does
not change.

Early stopping of hopeless brackets (``early_stop=True``): when a bracket completes a rung
that is not its last, at budget ``b``, its best result is compared with the results at the
same budget ``b`` of every trial of the *other* brackets. If there are at least ``eta`` of
those and the bracket's best would not make their top ``1/eta`` (it is worse than the
``ceil(m / eta)``-th best of the ``m`` others), no successive halving on the same rank
assumption could carry one of its configurations to the top, so the bracket stops: nothing of
it is promoted and its paused trials are stopped. The epochs saved are the bracket's remaining
rungs. Stopped brackets are listed in :attr:`HyperbandScheduler.early_stopped`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from automl.brackets.base import ENDED, PAUSED, BracketScheduler, Job, Slot
from automl.brackets.budgets import BracketPlan, hyperband_brackets
from automl.objective import Objectives


@dataclass
class _Bracket:
    plan: BracketPlan
    created: int = 0
    level: int = 0  # i: the bracket's current rung is plan.start + level
    queue: list[str] = field(default_factory=list)  # survivors to promote, best first
    stopped_early: bool = False

    @property
    def rung(self) -> int:
        return self.plan.start + self.level

    @property
    def last_rung(self) -> int:
        return self.plan.start + len(self.plan.sizes) - 1


class HyperbandScheduler(BracketScheduler):
    def __init__(self, rungs: list[int], metric: str, mode: str, slots: int, eta: int,
                 num_configs: int, early_stop: bool = False, fixed_budget: bool = False,
                 objectives: Objectives | None = None, trials_dir: Path | None = None) -> None:
        super().__init__(rungs, metric, mode, slots, eta, fixed_budget, objectives, trials_dir)
        if early_stop and len(self.objectives) > 1:
            raise ValueError("early stop of hopeless brackets compares one objective")
        self.plans = hyperband_brackets(len(rungs), eta, num_configs)
        self.brackets = [_Bracket(plan) for plan in self.plans]
        self.early_stop = early_stop
        self.early_stopped: list[dict] = []

    # -- policy ----------------------------------------------------------------------------
    def _next_slot(self) -> Slot | None:
        for bracket in self.brackets:
            if not bracket.stopped_early and bracket.created < bracket.plan.n:
                bracket.created += 1
                return Slot(bracket=bracket.plan.index, rung=bracket.plan.start)
        return None

    def _exhausted(self) -> bool:
        return all(b.stopped_early or b.created >= b.plan.n for b in self.brackets)

    def _last_rung(self, job: Job) -> int:
        return self.brackets[job.bracket].last_rung

    def _next_promotion(self) -> Job | None:
        for bracket in self.brackets:
            for trial_id in bracket.queue:
                job = self.jobs[trial_id]
                if job.state == PAUSED:
                    return job
        return None

    def _promote(self, job: Job) -> None:
        self.brackets[job.bracket].queue.remove(job.trial_id)
        super()._promote(job)

    def _changed(self, job: Job) -> None:
        bracket = self.brackets[job.bracket]
        if job.trial_id in bracket.queue and job.state != PAUSED:
            bracket.queue.remove(job.trial_id)  # a survivor that ended before its promotion
        self._advance(bracket)

    # -- successive halving ------------------------------------------------------------------
    def members(self, bracket: _Bracket) -> list[Job]:
        return [j for j in self.jobs.values() if j.bracket == bracket.plan.index]

    def _advance(self, bracket: _Bracket) -> None:
        """Close the bracket's current rung once every configuration at it has reported."""
        if bracket.stopped_early or bracket.rung >= bracket.last_rung or bracket.queue:
            return
        if bracket.level == 0 and (bracket.created < bracket.plan.n
                                   or len(self.members(bracket)) < bracket.created):
            return  # configurations of the first rung still to be created
        rung = bracket.rung
        at_rung = [j for j in self.members(bracket) if j.rung == rung and j.state not in ENDED]
        if any(j.state != PAUSED for j in at_rung):
            return  # still training towards this rung
        ranked = self.ranked(at_rung, rung)
        keep = bracket.plan.sizes[bracket.level + 1]
        if self.early_stop and ranked and self._hopeless(bracket, ranked[0], rung):
            keep = 0
        bracket.level += 1
        bracket.queue = [j.trial_id for j in ranked[:keep]]
        for job in at_rung:  # the others, and those missing an objective
            if job.trial_id not in bracket.queue:
                self.stop_later(job)

    def _hopeless(self, bracket: _Bracket, best: Job, rung: int) -> bool:
        others = sorted((j.scores[rung] for j in self.jobs.values()
                         if j.bracket != bracket.plan.index and j.reached(rung)), reverse=True)
        if len(others) < self.eta:
            return False
        cutoff = others[math.ceil(len(others) / self.eta) - 1]
        if best.scores[rung] >= cutoff:
            return False
        bracket.stopped_early = True
        self.early_stopped.append({
            "bracket": bracket.plan.index, "s": bracket.plan.s, "rung": rung,
            "epochs": self.rungs[rung], "best": best.values[rung],
            "cutoff": cutoff if self.mode == "max" else -cutoff, "others": len(others)})
        return True
