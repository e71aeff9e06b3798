"""Promotion-based ASHA (Li et al. 2020, "A System for Massively Parallel Hyperparameter
Tuning", Algorithm 2), with promotion = resume from the rung checkpoint.

Rungs are :func:`~automl.brackets.budgets.rung_ladder` (``r * eta**k`` up to ``R``). Whenever a
slot is free (a trial paused at a rung, or ended), ``get_job`` runs: scanning rungs from the
second highest down to 0, the first paused trial that is in the top ``floor(|rung k| / eta)``
of its rung ``k`` (by the metric and direction; ties by creation order; with several objectives
by non-dominated sorting and crowding distance, MO-ASHA: :mod:`automl.brackets.base`) and was
not promoted yet continues to rung ``k + 1``; if none is promotable, a new configuration starts at rung 0.
A trial reaching the top rung ``R`` finishes. After ``max_recommendations`` configurations,
free slots wait for running trials (whose results may make others promotable); when nothing
runs and nothing is promotable, the trials still paused are stopped and the experiment ends.

One addition to the paper, for a finite number of configurations: if at that point no trial has
reached ``R`` (with 20 configurations and rungs 1/3/9/27, ``floor(|rung| / eta)`` can reach 0
below the top), the best paused trial of the highest rung reached is promoted, rung by rung, to
``R`` before the others are stopped - the experiment's answer is chosen at the largest budget
observed and should be a fully trained model. With an unbounded stream of configurations (the
paper's setting) this never triggers.

Ray's own ``ASHAScheduler`` only stops trials that fall below a rung's cutoff, so every trial
that survives trains to ``R`` in one go and nothing waits for evidence; this is the paper's
promotion scheme, where a trial trains past a rung only once it has been shown to be in the top
``1/eta`` of that rung.
"""

from __future__ import annotations

from pathlib import Path

from automl.brackets.base import PAUSED, BracketScheduler, Job, Slot
from automl.objective import Objectives


class PromotionASHA(BracketScheduler):
    def __init__(self, rungs: list[int], metric: str, mode: str, slots: int, eta: int,
                 num_configs: int, fixed_budget: bool = False,
                 objectives: Objectives | None = None, trials_dir: Path | None = None) -> None:
        super().__init__(rungs, metric, mode, slots, eta, fixed_budget, objectives, trials_dir)
        self.num_configs = int(num_configs)
        self.created = 0

    def _next_slot(self) -> Slot | None:
        if self.created >= self.num_configs:
            return None
        self.created += 1
        return Slot(bracket=0, rung=0)

    def _exhausted(self) -> bool:
        return self.created >= self.num_configs

    def top(self, rung: int) -> list[Job]:
        """The top ``floor(|rung| / eta)`` of the trials that reached ``rung`` (those missing an
        objective count in the rung's size, never in its top)."""
        members = [j for j in self.jobs.values() if j.reached(rung)]
        return self.ranked(members, rung)[: len(members) // self.eta]

    def _next_promotion(self) -> Job | None:
        for rung in range(len(self.rungs) - 2, -1, -1):
            for job in self.top(rung):
                if job.state == PAUSED and job.rung == rung:
                    return job
        return self._carry_to_the_top()

    def _carry_to_the_top(self) -> Job | None:
        """End game: nothing more to learn and no trial reached R -> continue the best trial of
        the highest rung reached (one rung at a time), so the experiment delivers a model
        trained with the full budget."""
        top = len(self.rungs) - 1
        if not self._exhausted() or self._busy() or any(j.reached(top) for j in self.jobs.values()):
            return None
        for rung in range(top - 1, -1, -1):
            paused = self.ranked((j for j in self.jobs.values()
                                  if j.state == PAUSED and j.rung == rung), rung)
            if paused:
                return paused[0]
        return None
