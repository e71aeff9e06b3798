"""Driver-side bookkeeping: Ray Tune callbacks → trial records → journal/history.json, observers.

Ray Tune tells the driver when a trial starts, reports, pauses, ends or errors; this callback
keeps one :class:`TrialRecord` per trial, merges in the trial's own ``outcome.json`` at the end,
appends every change to the journal (:mod:`automl.results.journal`: fsync'd, constant cost per event,
instead of rewriting ``history.json``: O(trials) per event), compacts the journal into
``history.json`` at the start and end of a run, and fans the events out to observers (live
progress, MLflow). The :class:`FailureStopper` uses the same records to stop an experiment whose trials all
fail, instead of launching more.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from ray import tune

from automl.contract import (
    EPOCHS_KEY,
    FINISHED,
    KPI_NAMES_KEY,
    OUTCOME,
    PARENT_KEY,
    PROPOSER_KEY,
    UNFINISHED,
    hyperparameters,
)
from automl.objective import Objectives
from automl.observers import notify
from automl.results.failures import HINTS
from automl.results.journal import Journal, journal_path
from automl.results.records import TrialRecord, write_history


class Observer(Protocol):
    """Receives experiment events (progress display, tracking). Optional: ``trial_status``
    (a status change no other event carries: paused at a rung, pending again before a retry)."""

    def trial_started(self, record: TrialRecord) -> None: ...
    def trial_result(self, record: TrialRecord, result: dict[str, Any]) -> None: ...
    def trial_ended(self, record: TrialRecord) -> None: ...


# Tune statuses of a trial that waits without a trainer, as the records name them: paused (at a
# rung, between PBT segments) or pending (for a slot, before a retry).
WAITING = {"PAUSED": "paused", "PENDING": "pending"}


class Recorder(tune.Callback):
    def __init__(self, workspace: Path, experiment: dict[str, Any], objectives: Objectives | str,
                 observers: list[Observer] | None = None,
                 records: dict[str, TrialRecord] | None = None) -> None:
        self.workspace = workspace
        self.experiment = experiment
        # A bare metric name: that one objective, in the experiment's direction.
        self.objectives = objectives if isinstance(objectives, Objectives) else \
            Objectives.single(objectives, "min" if experiment.get("direction") == "min" else "max")
        self.metric = self.objectives.metric
        self.observers = list(observers or [])
        self.records: dict[str, TrialRecord] = dict(records or {})
        self._lock = threading.Lock()
        self._journal: Journal | None = None  # opened (after a compaction) at the first event
        self.reclaimed = 0  # bytes of checkpoints deleted by retention during the run
        self._running: dict[str, Any] = {}  # rec_id -> Tune trial, for records marked running
        self._reset_retention()
        self._recount()

    def _recount(self) -> None:
        # Per record: (finished, failed, finished with a metric failure), and their sums: the
        # FailureStopper asks at every Tune step, so the answer must not cost O(trials).
        self._tally: dict[str, tuple[int, int, int]] = {}
        self._counts = [0, 0, 0]
        for record in self.records.values():
            self._count(record)

    def _count(self, record: TrialRecord) -> None:
        done = record.status in FINISHED
        new = (int(done), int(record.status == "failed"),
               int(done and record.failure_class == "metric"))
        old = self._tally.get(record.rec_id, (0, 0, 0))
        if new != old:
            self._tally[record.rec_id] = new
            self._counts = [c + n - o for c, n, o in zip(self._counts, new, old)]

    def _reset_retention(self) -> None:
        # Finished trials whose checkpoints retention already deleted (not the best), the best
        # at the last pass, and the records touched since: see _retain.
        self._pruned: set[str] = set()
        self._best_id: str | None = None
        self._touched: set[str] | None = None  # None: look at every record at the next pass

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its callbacks into the experiment state: leave out locks and observers
        (live displays, tracking clients), which belong to the running driver only."""
        state = dict(self.__dict__)
        state["observers"] = []
        for name in ("_lock", "_pruned", "_best_id", "_touched", "_tally", "_counts",
                     "_running"):
            state.pop(name, None)
        state["_journal"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._running = {}
        self._reset_retention()
        self._recount()
        self._journal = None

    # -- helpers ---------------------------------------------------------------------------
    def _record(self, trial) -> TrialRecord:
        rec_id = trial.trial_id
        if self._touched is not None:
            self._touched.add(rec_id)
        record = self.records.get(rec_id)
        if record is None:
            config = dict(trial.config)
            tag = str(getattr(trial, "experiment_tag", "") or "")
            index = int(tag.split("_", 1)[0]) if tag.split("_", 1)[0].isdigit() else len(self.records) + 1
            record = TrialRecord(rec_id=rec_id, params=hyperparameters(config), index=index,
                                 folder=str(self.workspace / "trials" / rec_id),
                                 parent=config.get(PARENT_KEY),
                                 proposed_by=config.get(PROPOSER_KEY))
            self.records[rec_id] = record
        else:
            # PBT/PB2 change a running trial's config when it exploits another trial (it then
            # restarts from that trial's checkpoint): the record follows its current params.
            record.params = hyperparameters(trial.config)
            record.parent = trial.config.get(PARENT_KEY) or record.parent
        budget = trial.config.get(EPOCHS_KEY) or self.experiment.get("budget", 0)
        record.budget = max(record.budget, int(budget))
        return record

    @property
    def history(self) -> Path:
        return self.workspace / "history.json"

    def save(self) -> None:
        """Compaction: history.json := every record, journal emptied (start, end, pause)."""
        with self._lock:
            write_history(self.history, self.experiment, list(self.records.values()))

    def _log(self, record: TrialRecord) -> None:
        """One fsync'd journal line with the record's new state (constant cost per event).
        Every change of a record goes through here: the failure counts follow it."""
        self._count(record)
        with self._lock:
            if self._journal is None:
                # A run starts from a compacted history: it also holds the experiment dict and
                # what a resume's reconciliation changed in the restored records.
                write_history(self.history, self.experiment, list(self.records.values()))
                self._journal = Journal(journal_path(self.history))
            self._journal.append({"trial": record.to_json()})

    def close(self) -> None:
        """Compact and release the journal (the engine calls it when the run ends)."""
        self.save()
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    def _emit(self, event: str, *args: Any) -> None:
        for observer in self.observers:
            getattr(observer, event)(*args)

    # -- Tune callbacks --------------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        record = self._record(trial)
        record.status = "running"
        self._running[record.rec_id] = trial
        record.started_at = record.started_at or time.time()
        record.run_started(time.time())
        self._pruned.discard(record.rec_id)  # running again: it may write checkpoints again
        self._log(record)
        self._emit("trial_started", record)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if self.metric not in result or "epoch" not in result:
            return
        record = self._record(trial)
        record.status = "running"
        self._running[record.rec_id] = trial
        # The trainer's KPIs, as the trial named them (TAO's names are free-form).
        kpis = {k: result[k] for k in result.get(KPI_NAMES_KEY) or () if k in result}
        kpis[self.metric] = result[self.metric]
        record.add_result(int(result["epoch"]), kpis)
        for key in ("rung", "bracket"):
            if key in result:
                setattr(record, key, result[key])
        self._log(record)
        self._emit("trial_result", record, result)

    def on_step_end(self, iteration, trials, **info) -> None:
        """Mark the trials that stopped running without ending: paused or pending.

        Tune has no callback for a pause. A scheduler's PAUSE (a bracket rung, a PBT segment
        boundary, a trial made to share slots) is carried out after the pause checkpoint's
        ``on_trial_save``, while the trial still counts as RUNNING there, and PBT pauses others
        directly; the status is set within the step, so at its end the records follow. Only the
        trials recorded as running are looked at (at most the concurrent slots), so a step costs
        the same with 10,000 trials waiting. A paused trial that is promoted or unpaused runs
        again through ``on_trial_start``."""
        for rec_id, trial in list(self._running.items()):
            waiting = WAITING.get(getattr(trial, "status", None))
            if waiting is None:
                continue
            del self._running[rec_id]
            record = self._record(trial)
            record.status = waiting
            record.run_stopped(time.time())
            self._log(record)
            notify(self.observers, "trial_status", record)  # no other event carries it

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._finish(trial, errored=False)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._finish(trial, errored=True)

    def _finish(self, trial, errored: bool) -> None:
        record = self._record(trial)
        self._running.pop(record.rec_id, None)
        outcome = self.read_outcome(record)
        status = outcome.get("status") or ("failed" if errored else "completed")
        if not errored and getattr(trial, "status", None) == "PAUSED":
            # Ended while parked at a rung (not promoted): outcome.json still describes the last
            # segment, which "completed" its rung; the trial itself was stopped there.
            status = "stopped"
        record.status = status
        record.failure_class = outcome.get("failure_class")
        record.failure_message = outcome.get("message", "")
        record.retries = int(outcome.get("retries", 0) or 0)
        if errored and not record.failure_class:
            record.failure_class, record.failure_message = "infrastructure", "the Ray worker died"
        record.ended_at = time.time()
        record.run_stopped(record.ended_at)
        self._measure(record)
        self._pruned.discard(record.rec_id)
        self._log(record)  # durable before anything else learns of the end (MLflow, best)
        self._retain()
        self._emit("trial_ended", record)

    def _measure(self, record: TrialRecord) -> None:
        """Measured objectives (``checkpoint_mb``) join the trial's scored result, read from its
        files before retention may delete them (the searcher read the same files just before)."""
        if not record.results or not any(o.measured for o in self.objectives):
            return
        figures = self.objectives.measure(Path(record.folder), record.observed_budget)
        record.results[-1].update(figures)

    def _retain(self) -> None:
        """``--keep-checkpoints best``: delete checkpoints of finished trials that can no longer
        be chosen (a finished trial that is not the best now can never become it).

        Incremental, so a trial end costs the same at the 10,000th trial as at the first: a
        record no event touched since the last pass kept its score and status, so the best among
        all records is the best among the touched ones and the last best (``choose_best`` over
        them in the records' order gives the same answer, ties included), and every finished
        untouched record other than the last best was pruned then. Every record is looked at on
        the first pass of a driver (a resumed history) and whenever the last best itself was
        touched (it may have stopped counting: a trial restarted by a resume). A finished trial
        that is not the best is pruned once (``_pruned``); one that starts again leaves
        ``_pruned`` and is pruned again when it ends. Files a finished trial writes after it
        ended are left to :func:`automl.results.retention.finalize_retention`.
        """
        if self.experiment.get("keep_checkpoints", "best") != "best":
            return
        from automl.results.best import choose_best, kept_trials
        from automl.results.retention import prune

        if len(self.objectives) > 1:  # the front moves with every end: look at every record
            kept = kept_trials(list(self.records.values()), self.objectives)
            todo = [r for r in self.records.values()
                    if r.status not in UNFINISHED and r.rec_id not in self._pruned]
            self.reclaimed += prune(self.workspace, todo, None, keep_rec_ids=set(),
                                    needed_paths=set(), front=kept)
            self._pruned.update(r.rec_id for r in todo if r.rec_id not in kept)
            return
        touched = self._touched
        if touched is None or self._best_id in touched:
            candidates = list(self.records.values())
        else:
            ids = touched | ({self._best_id} if self._best_id else set())
            order = list(self.records)
            candidates = sorted((self.records[i] for i in ids if i in self.records),
                                key=lambda r: order.index(r.rec_id))
        best = choose_best(candidates, self.metric, self.experiment.get("direction", "max"))
        best_id = best.record.rec_id if best else None
        todo = [r for r in candidates if r.status not in UNFINISHED and r.rec_id not in self._pruned]
        self.reclaimed += prune(self.workspace, todo, best_id, keep_rec_ids=set(),
                                needed_paths=set())
        self._pruned.update(r.rec_id for r in todo if r.rec_id != best_id)
        self._best_id, self._touched = best_id, set()

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        record = self._record(trial)
        record.status = "pending"
        record.run_stopped(time.time())
        self._running.pop(record.rec_id, None)
        self._log(record)
        notify(self.observers, "trial_status", record)  # no other event carries it

    @staticmethod
    def read_outcome(record: TrialRecord) -> dict[str, Any]:
        path = Path(record.folder) / OUTCOME
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def on_experiment_end(self, trials, **info) -> None:
        self.save()

    # -- queries ---------------------------------------------------------------------------
    def finished(self) -> list[TrialRecord]:
        return [r for r in self.records.values() if r.status in FINISHED]

    def all_failed(self, minimum: int) -> bool:
        finished, failed, _ = self._counts
        return finished >= minimum and failed == finished

    def metric_missing(self) -> bool:
        """Whether a finished trial failed because the metric was never reported."""
        return self._counts[2] > 0

    def failure_summary(self) -> str:
        counts: dict[str, int] = {}
        for record in self.finished():
            if record.status == "failed":
                counts[record.failure_class or "error"] = counts.get(record.failure_class or "error", 0) + 1
        parts = [f"{n}× {cls} ({HINTS.get(cls, '')})" for cls, n in sorted(counts.items())]
        return "; ".join(parts)


class FailureStopper(tune.Stopper):
    """Stops the whole experiment once ``minimum`` trials have finished and every one failed,
    or as soon as the metric is found never to be reported (a wrong ``--metric``)."""

    def __init__(self, recorder: Recorder, minimum: int) -> None:
        self.recorder = recorder
        self.minimum = minimum

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:  # called at every Tune step: O(1)
        return self.recorder.metric_missing() or self.recorder.all_failed(self.minimum)
