"""Who watches an experiment: the progress display and MLflow tracking."""

from __future__ import annotations

from typing import Any


def notify(observers: Any, event: str, *args: Any) -> None:
    """Send ``event`` to the observers that handle it. Only the Recorder's three trial events
    (:class:`automl.run.recorder.Observer`) are required of every observer; the others
    (experiment start and end, resume's replay and set-aside trials, a bare status change)
    concern some observers only."""
    for observer in observers or ():
        handler = getattr(observer, event, None)
        if handler is not None:
            handler(*args)
