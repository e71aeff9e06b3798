"""When Ray Tune saves its experiment state: the point ``automl resume`` continues from.

Tune's controller calls ``TuneController.checkpoint()`` at the end of *every* step (one per
result, and one every 0.1 s while it waits for one). The engine sets
``TUNE_GLOBAL_CHECKPOINT_S=0`` so that none of those calls is skipped by Tune's time throttle: a
controller killed between two saves would otherwise forget trials it had already started, and
``automl resume`` would launch extra ones. But each save rewrites the whole state (every trial's
metadata, the searcher's pickle), so saving at every step costs O(trials) per step: at 100 trials
× 9 epochs, 1,300 saves and 40-60 % of the driver's CPU (``benchmarks/results/scale.md``).

A resume only needs a new save when something it restores has changed:

* a trial was added (the searcher suggested one: its state changed too),
* a trial ended (TERMINATED or ERROR: it is not run again) or its config changed (a promotion
  or a PBT exploit sets a new config),
* a trial registered a checkpoint (multi-fidelity rungs, PBT: what a restarted trial resumes
  from; a rung result and its checkpoint arrive together, so the scheduler/searcher state that
  a rung result changes is saved with it).

Moves between the unfinished statuses (PENDING, RUNNING, PAUSED) are not saved on their own:
Tune's restore (``TuneController._requeue_restored_trials``, resume_unfinished) makes every
unfinished trial PENDING again whichever of the three it was saved in, and it restarts from its
latest registered checkpoint (or from scratch) either way; the bracket schedulers put a trial
that was paused at a rung back to PAUSED from their own state, saved with the rung's checkpoint.
Results in between change nothing a resume uses either: they are in ``history.json``. So
:func:`save_state_on_change` lets a save through only when the signature of those facts differs
from the one at the last save (or when Tune forces one: at the end and on a stop request). The
check reads public Tune API only (``get_trials``, ``get_live_trials``, ``Trial.status`` /
``config`` / ``checkpoint``: O(live trials) per step).

**FIFO algorithms** (``defer``: random, bayesian, bfbo: no scheduler, no checkpoints). A save
costs O(trials) (Ray's format: every trial's JSON, ~12 KiB each, and the searcher's pickle; at
1,000 trials each save took up to 1 s, and one per added trial was 70 % of the run's wall time),
so a save whose only news is trials added or ended waits until 19 × the last save's duration has
passed since it (saves then take at most ~5 % of the controller's time, whatever the trial
count), or longer when ``AUTOML_TUNE_SAVE_MIN_S`` asks for it (slow shared storage); a forced save
(at the end, on a stop request) is never deferred. Exactness holds:

* a trial that ended after the last save is restored unfinished, started again, and its
  trainer, which had ended well, is not run again: its results are replayed
  (:func:`automl.run.trial.ended_run`) to the restored searcher, which had suggested it but not
  yet seen its result;
* a trial added after the last save is created again by the restored search, with its id and
  configuration (automl.resume.replay), then treated as above.

Algorithms with a scheduler (brackets, PBT) save every change at once: a scheduler's decisions
depend on the order of ends and pauses, which a replay would change.

Tune has no public hook for this, so the gate wraps ``TuneController.checkpoint`` - a private
method of the pinned Ray version (``ray[tune]==2.60.0`` in pyproject.toml) - for the duration of
one experiment, and only in that version: with any other Ray the wrap is not installed and Tune
saves at every step as before (slower, just as exact).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import weakref
from collections.abc import Iterator
from typing import Any

from automl.run.ray.ray_private import PINNED_RAY, is_pinned, tune_controller_class

log = logging.getLogger(__name__)

_ENDED = ("TERMINATED", "ERROR")  # ray.tune.experiment.Trial.TERMINATED / ERROR
_MARK = "_automl_save_on_change"
DEFER_FACTOR = 19  # a deferrable save waits 19 × the last save's duration: ≤ ~5 % of the time
MIN_INTERVAL_ENV = "AUTOML_TUNE_SAVE_MIN_S"  # seconds a deferrable save waits at least (default 0)
# Signature at the last save, per controller. Kept here, not on the controller: Tune serializes
# the controller's attributes into the state it saves.
_saved: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def state_signature(controller: Any) -> tuple[Any, ...]:
    """What a resume restores, as a value that changes whenever a save is needed.

    Finished trials never change again (a run does not restart them), so they count only by
    number; live ones contribute whether they ended (a trial leaves the live set at its end, or
    shows TERMINATED/ERROR until it does), their config and their latest checkpoint. Configs
    compare by content, checkpoints by identity (a new registration is a new object).
    """
    live = sorted(controller.get_live_trials(), key=lambda t: t.trial_id)
    return (len(controller.get_trials()),
            tuple((t.trial_id, t.status in _ENDED, dict(t.config), t.checkpoint) for t in live))


def _unchanged(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - a config value without a plain ==: count it as changed
        return False


def deferrable(new: tuple[Any, ...], old: tuple[Any, ...] | None) -> bool:
    """Whether the change from ``old`` to ``new`` is trials added or ended and nothing else (no
    config or checkpoint of a known trial changed)."""
    if old is None or new[0] < old[0]:
        return False  # first save
    before = {entry[0]: entry for entry in old[1]}
    for trial_id, _ended, config, checkpoint in new[1]:
        entry = before.get(trial_id)
        if entry is None:
            continue  # added since the last save
        if not _unchanged(config, entry[2]) or checkpoint is not entry[3]:
            return False
    return True


def _min_interval() -> float:
    try:
        return max(0.0, float(os.environ.get(MIN_INTERVAL_ENV) or 0))
    except ValueError:
        return 0.0


def checkpoint_gate(original: Any, defer: bool) -> Any:
    """``original`` (``TuneController.checkpoint``) wrapped to skip a save when the experiment
    state did not change (and, with ``defer``, to space out saves whose change can wait): the
    wrapper :func:`save_state_on_change` installs, public so its decisions can be tested on a
    controller of the test's own."""
    min_interval = _min_interval()

    def checkpoint(self: Any, force: bool = False, wait: bool = False) -> None:
        signature = state_signature(self)
        last = _saved.get(self)
        previous = last[0] if last else None
        if not force and _unchanged(signature, previous):
            return
        now = time.monotonic()
        if (not force and defer and last is not None
                and now - last[1] < max(DEFER_FACTOR * last[2], min_interval)
                and deferrable(signature, previous)):
            return
        original(self, force=force, wait=wait)
        done = time.monotonic()
        _saved[self] = (signature, done, done - now)

    checkpoint.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(checkpoint, _MARK, True)
    return checkpoint


@contextlib.contextmanager
def save_state_on_change(defer: bool = False) -> Iterator[bool]:
    """For the experiment run inside: Tune saves its experiment state only when it changed
    (``defer``: trials added or ended only after a pause, see the module's docstring).

    Yields whether the gate is active (False with a Ray other than the pinned one, or when an
    outer experiment already installed it).
    """
    TuneController = tune_controller_class()  # private: see automl.run.ray.ray_private
    current = TuneController.__dict__.get("checkpoint")
    if not is_pinned() or current is None or getattr(current, _MARK, False):
        if not is_pinned():
            log.debug("ray is not the pinned %s: Tune saves its state at every step", PINNED_RAY)
        yield False
        return
    TuneController.checkpoint = checkpoint_gate(current, defer)
    try:
        yield True
    finally:
        TuneController.checkpoint = current
