"""Pause/promote machinery shared by the bracket schedulers (ASHA, Hyperband, BOHB, DEHB).

A Ray Tune ``TrialScheduler`` decides how long a trial runs; a ``Searcher`` decides what the
next configuration is. In the bracket family the two are coupled - *whether* to start a new
configuration (and in which bracket, at which budget) depends on whether a paused trial should
be promoted instead - so here the scheduler owns that decision and the searcher
(:class:`BracketSearcher`) only turns a reserved slot into hyperparameters with its
:class:`Proposer` (random, TPE per budget, differential evolution).

How a trial moves through the rungs
    A trial is one configuration. Each of its runs (segments) trains up to one rung epoch:
    its config's ``__epochs__`` (``train.num_epochs``) is that rung's epoch, so the trainer stops
    by itself exactly there, with a checkpoint and a validation at that epoch (no epochs run
    past a pause decision). Reaching a rung that is not its last, the trial is PAUSED; the
    Tune checkpoint it reported with that result is the pointer to the rung's model file.
    Promoting it sets ``__epochs__`` to the next rung and unpauses it: the trainable restarts
    the trainer with ``train.resume_training_checkpoint_path`` = that file, so training
    continues after the rung epoch with the optimizer and LR-scheduler state of the checkpoint
    (TAO's Lightning ``fit(ckpt_path=...)``; the schedule's horizon is the new
    ``num_epochs``). A rung result whose checkpoint never appears complete fails the trial
    visibly (``checkpoint``) instead of letting a promotion retrain it. With ``--fixed-budget`` every segment keeps
    ``__epochs__ = R`` (same LR schedule for all) and the pause kills the trainer at the rung.
    ``__rung__`` (ladder index of the rung the segment trains to) and ``__bracket__`` are in
    the config too; the trainable reports them as ``rung``/``bracket`` with each result.

Concurrency
    At most ``slots`` (= ``--max-concurrent``) trials run or are about to run. A paused trial
    holds no slot. The searcher tells Tune it handles concurrency itself
    (``set_max_concurrency``), because Ray's ``ConcurrencyLimiter`` counts paused trials as
    running and would deadlock a pausing scheduler.

Several objectives (:class:`automl.objective.Objectives`)
    Each result carries every KPI the trainer wrote, so the scheduler reads each objective's
    value from it (a measured one, ``checkpoint_mb``, from the trial's folder: the rung's
    checkpoint is complete when the result is reported). A rung's results are ranked by
    :meth:`Objectives.order <automl.objective.Objectives.order>`: one objective or a weighted
    sum by that number; a Pareto search by non-dominated sorting, ties by crowding distance
    (MO-ASHA, Schmucker et al. 2021, as Syne Tune's ``MOASHA``), and promotion takes the top
    ``1/eta`` of that order. A result missing an objective counts in its rung's size but is
    never promoted (no value is made up for it).

Ending
    When the policy will create no more configurations and promotes nothing more, the trials
    still paused are stopped (TERMINATED; their results stay) so the experiment ends.

Decisions are made on Tune's driver thread, in callback order, so with ``--max-concurrent 1``
an experiment is reproducible for a given seed.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ray.tune.experiment import Trial
from ray.tune.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from automl.contract import BRACKET_KEY, EPOCHS_KEY, PROPOSER_KEY, RUNG_KEY
from automl.objective import Objectives
from automl.results.records import atomic_write_bytes

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController

logger = logging.getLogger(__name__)

# Job states. Busy ones hold a slot.
ACTIVE = "active"  # created or running
PROMOTING = "promoting"  # chosen for the next rung, waiting to be unpaused
FINISHING = "finishing"  # reached its last rung, the trainer is ending by itself
PAUSED = "paused"
DONE = "done"  # completed (its trainer ended)
STOPPED = "stopped"  # stopped while paused (by us, or the experiment ended)
FAILED = "failed"
BUSY = frozenset({ACTIVE, PROMOTING, FINISHING})
ENDED = frozenset({DONE, STOPPED, FAILED})


@dataclass(frozen=True)
class Slot:
    """A reserved place for a new configuration: its bracket and first rung."""

    bracket: int
    rung: int


@dataclass
class Job:
    """The scheduler's view of one trial."""

    trial_id: str
    index: int  # creation order
    bracket: int
    rung: int  # ladder index of the rung this trial trains to (or last reached, when paused)
    start_rung: int
    state: str = ACTIVE
    scores: dict[int, float] = field(default_factory=dict)  # rung -> score (higher is better)
    values: dict[int, float] = field(default_factory=dict)  # rung -> metric as reported
    # rung -> every objective's value as reported (absent: one was missing, not promotable)
    points: dict[int, tuple[float, ...]] = field(default_factory=dict)

    def reached(self, rung: int) -> bool:
        return rung in self.scores


class Proposer(Protocol):
    """Makes configurations (the search half of a bracket algorithm)."""

    def propose(self, trial_id: str, slot: Slot, epochs: int) -> dict[str, Any]:
        """Hyperparameters for a new trial that starts in ``slot`` (trains to ``epochs``)."""
        ...

    def observe(self, trial_id: str, rung: int, epochs: int, value: float,
                values: tuple[float, ...] | None = None) -> None:
        """``trial_id`` reported ``value`` (the primary metric, as reported) at rung ``rung``;
        ``values``: every objective's value as reported, in the experiment's order (None when
        one is missing). A proposer of one objective reads ``value`` only."""
        ...

    def source(self, trial_id: str) -> str | None:
        """Which model proposed ``trial_id`` ("random", "gp", "tpe", "prior", ...), for the progress
        output and the trial records."""
        ...


class BracketScheduler(FIFOScheduler):
    """Base class: rung bookkeeping, pause at rungs, promotion by resume, the end.

    Subclasses implement the policy: :meth:`_next_promotion`, :meth:`_next_slot`,
    :meth:`_exhausted`, :meth:`_last_rung`, and may react in :meth:`_changed`.
    """

    def __init__(self, rungs: list[int], metric: str, mode: str, slots: int, eta: int,
                 fixed_budget: bool = False, objectives: Objectives | None = None,
                 trials_dir: Path | None = None) -> None:
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.rungs = list(rungs)
        self._metric = metric
        self.mode = mode
        # What a rung ranks by (``metric``/``mode`` are its primary); ``trials_dir``: where
        # measured objectives are read (trials/<trial id>).
        self.objectives = objectives or Objectives.single(metric, mode)  # type: ignore[arg-type]
        self.trials_dir = trials_dir
        self.slots = max(1, int(slots))
        self.eta = int(eta)
        self.fixed_budget = fixed_budget
        self.proposer: Proposer | None = None
        self.jobs: dict[str, Job] = {}
        self._reserved: list[Slot] = []
        self._promotions: list[str] = []  # trial ids chosen for promotion, in order
        self._to_stop: list[str] = []
        self._trials: dict[str, Trial] = {}
        self._stopping = False

    # -- policy (subclasses) --------------------------------------------------------------
    def _next_promotion(self) -> Job | None:
        """A paused job to continue to its next rung now, or None."""
        raise NotImplementedError

    def _next_slot(self) -> Slot | None:
        """Reserve a new configuration now (count it as created), or None."""
        raise NotImplementedError

    def _exhausted(self) -> bool:
        """True when the policy will never reserve another configuration."""
        raise NotImplementedError

    def _last_rung(self, job: Job) -> int:
        """The highest rung ``job`` can be promoted to."""
        return len(self.rungs) - 1

    def _changed(self, job: Job) -> None:
        """Called after ``job`` reached a rung or ended (before slots are refilled)."""

    # -- helpers ---------------------------------------------------------------------------
    def score(self, value: float) -> float:
        return float(value) if self.mode == "max" else -float(value)

    def ranked(self, jobs: Iterable[Job], rung: int) -> list[Job]:
        """The promotable ``jobs`` at ``rung`` (every objective reported there), best first by
        :meth:`Objectives.order <automl.objective.Objectives.order>`, ties by creation order."""
        members = sorted((j for j in jobs if rung in j.points), key=lambda j: j.index)
        return self.objectives.order([(j, j.points[rung]) for j in members])

    def _point(self, trial_id: str, epoch: int, result: dict) -> tuple[float, ...] | None:
        """Every objective's value in ``result`` (measured ones from the trial's folder)."""
        if len(self.objectives) == 1:
            return (float(result[self._metric]),)
        scores = dict(result)
        if self.trials_dir is not None and any(o.measured for o in self.objectives):
            scores.update(self.objectives.measure(self.trials_dir / trial_id, epoch))
        return self.objectives.values(scores)

    def epochs_for(self, rung: int) -> int:
        return self.rungs[-1] if self.fixed_budget else self.rungs[rung]

    def _busy(self) -> int:
        return len(self._reserved) + sum(1 for j in self.jobs.values() if j.state in BUSY)

    def _fill(self) -> None:
        """Use free slots: promotions first, then new configurations."""
        while self._busy() < self.slots:
            job = self._next_promotion()
            if job is not None:
                self._promote(job)
                continue
            slot = self._next_slot()
            if slot is None:
                break
            self._reserved.append(slot)

    def _promote(self, job: Job) -> None:
        if job.state != PAUSED or job.rung >= self._last_rung(job):
            raise RuntimeError(f"cannot promote trial {job.trial_id} ({job.state}, "
                               f"rung {job.rung})")
        job.rung += 1
        job.state = PROMOTING
        self._promotions.append(job.trial_id)
        logger.debug("promote %s to rung %d (%d epochs)", job.trial_id, job.rung,
                     self.rungs[job.rung])

    def stop_later(self, job: Job) -> None:
        """Finish a paused job (it will never be promoted): stopped at the next chance."""
        if job.trial_id not in self._to_stop and job.state == PAUSED:
            self._to_stop.append(job.trial_id)

    def config_for(self, job: Job) -> dict[str, Any]:
        return {EPOCHS_KEY: self.epochs_for(job.rung), RUNG_KEY: job.rung, BRACKET_KEY: job.bracket}

    # -- the searcher's side ---------------------------------------------------------------
    def take_slot(self, trial_id: str) -> Slot | None | str:
        """For :class:`BracketSearcher`: a reserved slot (the job is created), None to wait,
        or ``Searcher.FINISHED``."""
        self._fill()
        if not self._reserved:
            return Searcher.FINISHED if self._exhausted() else None
        slot = self._reserved.pop(0)
        self.jobs[trial_id] = Job(trial_id, len(self.jobs), slot.bracket, slot.rung, slot.rung)
        return slot

    # -- Tune's side -----------------------------------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        if metric and metric != self._metric or mode and mode != self.mode:
            return False
        return True

    def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        self._trials[trial.trial_id] = trial
        job = self.jobs.get(trial.trial_id)
        if job is None:
            logger.warning("trial %s was not created by the bracket searcher", trial.trial_id)
        elif trial.status == Trial.PENDING and job.state == PAUSED:
            # `automl resume` (Tuner.restore) requeues paused trials as PENDING, which would
            # start them all; a paused trial waits for its promotion (Tune files the trial by
            # its status after this call).
            trial.set_status(Trial.PAUSED)
        elif trial.status in (Trial.PENDING, Trial.PAUSED) and job.state in ENDED:
            # Restored from an experiment state saved before this trial's end (Tune writes its
            # trials before the searcher that carries our state; a SIGKILL can fall between):
            # it ended (stopped at a rung, done, failed) and must not run again.
            trial.set_status(Trial.ERROR if job.state == FAILED else Trial.TERMINATED)
        elif trial.status == Trial.PENDING and trial.trial_id in self._promotions:
            self._promotions.remove(trial.trial_id)  # restored while chosen for promotion
            trial.set_config({**trial.config, **self.config_for(job)})

    def on_trial_result(self, tune_controller: TuneController, trial: Trial,
                        result: dict) -> str:
        job = self.jobs.get(trial.trial_id)
        if job is None:
            return TrialScheduler.CONTINUE
        if job.state == PROMOTING:
            job.state = ACTIVE
        epoch, value = result.get("epoch"), result.get(self._metric)
        if job.state != ACTIVE or epoch is None or value is None \
                or int(epoch) < self.rungs[job.rung]:
            return TrialScheduler.CONTINUE  # (FINISHING: past its last rung, ending by itself)
        point = self._point(trial.trial_id, int(epoch), result)
        job.scores[job.rung] = self.score(value)
        job.values[job.rung] = float(value)
        if point is not None:
            job.points[job.rung] = point
        if self.proposer is not None:
            self.proposer.observe(job.trial_id, job.rung, int(epoch), float(value), point)
        if job.rung >= self._last_rung(job):
            job.state = FINISHING
            decision = TrialScheduler.CONTINUE
        else:
            job.state = PAUSED
            decision = TrialScheduler.PAUSE
        self._changed(job)
        self._fill()
        return decision

    def _ended(self, trial: Trial, state: str) -> None:
        job = self.jobs.get(trial.trial_id)
        if job is None or job.state in ENDED:
            return
        if job.state == PROMOTING:
            self._promotions = [t for t in self._promotions if t != job.trial_id]
        job.state = state
        self._to_stop = [t for t in self._to_stop if t != job.trial_id]
        self._changed(job)
        if not self._stopping:
            self._fill()

    def on_trial_complete(self, tune_controller: TuneController, trial: Trial,
                          result: dict) -> None:
        self._ended(trial, DONE)

    def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        self._ended(trial, FAILED)

    def on_trial_remove(self, tune_controller: TuneController, trial: Trial) -> None:
        self._ended(trial, STOPPED)

    def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        self._fill()
        self._stop_pending(tune_controller)
        for trial_id in list(self._promotions):
            trial = self._trials.get(trial_id)
            if trial is None or trial.status != Trial.PAUSED:
                continue  # still saving its pause checkpoint: next time
            # Returned once: Tune makes it PENDING and starts it as soon as resources allow.
            self._promotions.remove(trial_id)
            trial.set_config({**trial.config, **self.config_for(self.jobs[trial_id])})
            return trial
        for trial in tune_controller.get_trials():
            if trial.status == Trial.PENDING:
                return trial
        for trial in tune_controller.get_trials():  # not ours (never expected): don't strand it
            if trial.status == Trial.PAUSED and trial.trial_id not in self.jobs:
                return trial
        return None

    def _stop_pending(self, tune_controller: TuneController) -> None:
        """Stop the paused trials that will not be promoted (and all of them at the end)."""
        if self._exhausted() and self._busy() == 0 and not self._promotions \
                and self._next_promotion() is None:
            for job in self.jobs.values():
                if job.state == PAUSED:
                    self.stop_later(job)
        self._stopping = True
        try:
            for trial_id in list(self._to_stop):
                trial = self._trials.get(trial_id)
                if trial is None or trial.status != Trial.PAUSED:
                    continue  # still saving its pause checkpoint: next time
                self._to_stop.remove(trial_id)
                tune_controller.stop_trial(trial)
        finally:
            self._stopping = False

    # -- state (saved with Tune's experiment state, for `automl resume`) ---------------------
    def get_state(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("_trials", "proposer", "_stopping")}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("objectives", Objectives.single(self._metric, self.mode))
        self.__dict__.setdefault("trials_dir", None)
        for job in self.jobs.values():  # saved before jobs kept every objective: the primary's
            job.__dict__.setdefault("points", {rung: (v,) for rung, v in job.values.items()})

    def debug_string(self) -> str:
        states: dict[str, int] = {}
        for job in self.jobs.values():
            states[job.state] = states.get(job.state, 0) + 1
        return f"{type(self).__name__}: rungs {self.rungs}, jobs {states}"


class BracketSearcher(Searcher):
    """Ray Tune searcher that asks its scheduler for a slot and its proposer for values."""

    def __init__(self, scheduler: BracketScheduler, proposer: Proposer, metric: str,
                 mode: str) -> None:
        super().__init__(metric=metric, mode=mode)
        self.scheduler = scheduler
        self.proposer = proposer
        scheduler.proposer = proposer
        self._saved = b""

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """The scheduler limits concurrency (paused trials do not count)."""
        return True

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec) -> bool:
        if metric and metric != self._metric or mode and mode != self._mode:
            return False
        return not config

    def suggest(self, trial_id: str) -> dict[str, Any] | None | str:
        slot = self.scheduler.take_slot(trial_id)
        if slot is None or slot == Searcher.FINISHED:
            return slot
        job = self.scheduler.jobs[trial_id]
        params = self.proposer.propose(trial_id, slot, self.scheduler.rungs[slot.rung])
        source = getattr(self.proposer, "source", None)
        label = source(trial_id) if source is not None else None
        return {**params, **self.scheduler.config_for(job),
                **({PROPOSER_KEY: label} if label else {})}

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        pass

    # Tune saves the searcher with its experiment state (every controller step here) and
    # restores it on `Tuner.restore`; the scheduler itself is not saved by Tune, so its state
    # (jobs, rungs, brackets) travels with the searcher's.
    def get_state(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.get_state(), "proposer": self.proposer}

    def set_state(self, state: dict[str, Any]) -> None:
        self.scheduler.set_state(state["scheduler"])
        self.proposer = self.scheduler.proposer = state["proposer"]

    def save(self, checkpoint_path: str) -> None:
        data = pickle.dumps(self.get_state())
        if data == self._saved:
            return  # unchanged: Tune keeps the previous file
        atomic_write_bytes(Path(checkpoint_path), data)
        self._saved = data

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.set_state(pickle.loads(handle.read()))
