"""Experiment states and the transitions between them (TAO's job state names).

::

    PENDING ──(slot free)──> RUNNING ──(run ends)──> SUCCEEDED | FAILED
    PENDING | RESUMING(queued) ──:pause──> PAUSED
    RUNNING | RESUMING(started) ──:pause──> PAUSING ──(run stopped)──> PAUSED
    PAUSED ──:resume──> RESUMING ──(slot free)──> RUNNING    (``automl resume``, or a first run)
    RUNNING | RESUMING(started) | PAUSING ──:cancel──> CANCELING ──(run stopped)──> CANCELED
    PENDING | PAUSED | RESUMING(queued) ──:cancel──> CANCELED

A pause is the CLI's Ctrl-C (SIGTERM to the run: the workspace is marked ``canceled`` and what
finished is kept) and a resume is ``automl resume`` of the same workspace. Any other action is
refused with 409. ``DELETE`` is allowed in the terminal states only.
"""

from __future__ import annotations

from enum import Enum


class State(str, Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSING = "PAUSING"
    PAUSED = "PAUSED"
    RESUMING = "RESUMING"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


TERMINAL = frozenset({State.CANCELED, State.SUCCEEDED, State.FAILED})
# States in which a child process may be running (or must be started again after a restart).
LIVE = frozenset({State.RUNNING, State.PAUSING, State.CANCELING, State.RESUMING})


class Conflict(Exception):
    """An action impossible in the experiment's current state (HTTP 409)."""


def after_action(action: str, state: State, started: bool) -> State:
    """The state an action moves to; ``started``: a child process runs the experiment now."""
    if action == "cancel":
        if state in (State.PENDING, State.PAUSED) or (state == State.RESUMING and not started):
            return State.CANCELED
        if state in (State.RUNNING, State.PAUSING, State.RESUMING):
            return State.CANCELING
    elif action == "pause":
        if state == State.PENDING or (state == State.RESUMING and not started):
            return State.PAUSED
        if state in (State.RUNNING, State.RESUMING) and started:
            return State.PAUSING
    elif action == "resume" and state == State.PAUSED:
        return State.RESUMING
    raise Conflict(f"cannot {action} an experiment that is {state.value}")
