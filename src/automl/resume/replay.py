"""Trials the killed controller created after Tune's last save: created again, same id, same
configuration.

For the FIFO algorithms (random, bayesian, bfbo: no scheduler, no checkpoints) Tune's experiment
state is not saved at each added trial but after a pause (automl.run.ray.tune_state): one save
rewrites every trial's JSON and the searcher's pickle, O(trials), and doing that per added trial
made the last trials of a 1,000-trial run three times slower than the first. A controller killed
between two saves therefore leaves trials (journal records, trial folders, perhaps finished ones)
that the restored Tune and its searcher never heard of. ``automl resume`` does not set them
aside: it has the restored search create them again, in their creation order, with their ids and
configurations:

* Tune names a new trial with ``Trial.generate_id()`` before it asks the searcher for a
  configuration. While trials wait to be replayed, that returns the next one's id (Ray's
  classmethod is replaced for the duration of the run: no public hook names a trial).
* The searcher's ``suggest(trial_id)`` takes the configuration queued for that id (:func:`take`)
  and registers it as its own suggestion (Optuna: the raw draws, enqueued; bfbo: a pending
  point), so the trial's result reaches the model like any other.

An id leaves the queue only when the searcher takes it (a ConcurrencyLimiter may refuse a
suggestion; the same id is then offered again). The trial starts in its own folder: a trainer
that had ended well is not run again (its results are replayed, automl.run.trial.ended_run), one
cut off by the kill starts again, as a trial Tune had saved would. The experiment keeps its
number of recommendations: Tune's trial counter was saved with the state, so the replayed trials
take the places they had. A trial whose configuration the searcher cannot reproduce (a space
that changed) is set aside as before (automl.resume.reconcile).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from automl.contract import FINISHED
from automl.results.records import TrialRecord

# Driver process only: trial id -> configuration, in creation order.
_queue: dict[str, dict[str, Any]] = {}


@runtime_checkable
class Replayable(Protocol):
    """A searcher whose ``suggest`` consults :func:`take` first, and can tell beforehand whether
    it can reproduce a configuration exactly."""

    def replayable(self, params: dict[str, Any]) -> bool: ...


def take(trial_id: str) -> dict[str, Any] | None:
    """The configuration to propose for ``trial_id`` (a replayed trial), or None: called by a
    :class:`Replayable` searcher's ``suggest``."""
    params = _queue.pop(trial_id, None)
    return dict(params) if params is not None else None


@contextlib.contextmanager
def replaying(trials: list[tuple[str, dict[str, Any]]]) -> Iterator[None]:
    """For the run inside: Tune names its next new trials after ``trials`` (in order), and the
    searcher proposes their configurations (see the module docstring)."""
    if not trials:
        yield
        return
    # Upward (resume/ → run/ray/): ray_private is the one module that names every private
    # Ray API the engine uses; replay needs Tune's Trial class from it.
    from automl.run.ray.ray_private import trial_class

    Trial = trial_class()
    original = Trial.__dict__["generate_id"]

    def generate_id(cls: type) -> str:
        # Peek, not pop: an id is consumed by the searcher's take(), when it accepts the trial.
        return next(iter(_queue)) if _queue else original.__func__(cls)

    _queue.clear()
    _queue.update(trials)
    Trial.generate_id = classmethod(generate_id)
    try:
        yield
    finally:
        Trial.generate_id = original
        _queue.clear()


@dataclass(frozen=True)
class Settled:
    """What :func:`settle_unsaved_trials` did: the trials to create again with their
    configurations (for :func:`replaying`), the trials set aside (their MLflow runs are tagged
    so), and a one-line note for the user ("" when there was nothing to do)."""

    replays: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)
    note: str = ""


def settle_unsaved_trials(workspace: Path, records: dict[str, TrialRecord],
                          searcher: Any) -> Settled:
    """Split the trials Tune's saved state lacks into those replayed (``searcher`` is
    :class:`Replayable` and reproduces their configuration) and those set aside."""
    from automl.resume.reconcile import set_aside, unsaved_trials

    lost = unsaved_trials(workspace, records)
    replays = [(rec_id, dict(records[rec_id].params)) for rec_id in lost
               if isinstance(searcher, Replayable) and rec_id in records
               and searcher.replayable(dict(records[rec_id].params))]
    replayed = {rec_id for rec_id, _ in replays}
    # Without a replay a trial that had ended keeps its record (its result stays in the history).
    aside = [rec_id for rec_id in lost if rec_id not in replayed
             and (rec_id not in records or records[rec_id].status not in FINISHED)]
    notes = [set_aside(workspace, records, aside)] if aside else []
    if replays:
        count = len(replays)
        notes.insert(0, f"{count} trial{'s' if count != 1 else ''} created after Tune's last save "
                        f"({', '.join(replayed_id for replayed_id, _ in replays)}) "
                        f"{'are' if count != 1 else 'is'} created again with the same "
                        f"configuration{'s' if count != 1 else ''}")
    return Settled(replays, aside, "; ".join(notes))
