"""Where an interrupted trial continues: its own last complete checkpoint, never epoch 0.

A trial segment starts from what Tune hands it: the checkpoint pointer of its last report (a
rung, a PBT exploit) or nothing (FIFO algorithms report no checkpoints, and Tune's state may be
older than the kill). Whatever cut the segment short - a pause of the experiment (Ctrl-C, the
service's pause), a SIGKILL of the controller, a SIGTERM of the trainer from outside - the
trainer had written a checkpoint at every ``train.checkpoint_interval`` epochs into the trial's
``results/train``; starting again from Tune's pointer would train those epochs again.

So each segment records its *lineage* in ``continuation.json``: the pointer Tune gave (``base``),
the trial's hyperparameters, when the first segment of that lineage started (``since``), and the
resume pointer this segment actually used. A segment that starts with the same base and
hyperparameters as the recorded lineage continues it: from the newest checkpoint written since
then that ends an epoch (or TAO's exception checkpoint written between two epochs, which holds
exactly the finished epochs: TAO's own auto-resume would take it, and a one-line note says so),
short of the segment's budget. A new base (a promotion, an exploit) or other hyperparameters
start a new lineage: files of an earlier one (a paused trial that trained past its rung, a PBT
member's own timeline before it exploited a parent) are never resumed from.

A segment without a checkpoint to name starts in a clean state: TAO, given an empty resume path,
auto-resumes from ``*_latest.pth`` in its results folder (``initialize_train_experiment``), which
could be a file the engine did not choose, so that link is removed first (:func:`clear_latest`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl.results.records import atomic_write_json
from automl.tao.checkpoints import CheckpointFile, resume_candidates
from automl.tao.lines import StatusLine

CONTINUATION = "continuation.json"


def _key(pointer: dict[str, Any] | None) -> list[Any] | None:
    """What identifies a Tune pointer across restarts (its file and epochs)."""
    return None if pointer is None else [str(pointer.get("path")), int(pointer.get("epoch") or 0)]


@dataclass(frozen=True)
class Lineage:
    """The recorded lineage a new segment continues (see the module docstring)."""

    since: float
    resume: dict[str, Any] | None  # the pointer the lineage's last segment resumed from


def lineage(folder: Path, base: dict[str, Any] | None, params: dict[str, Any]) -> Lineage | None:
    """The lineage recorded in ``folder`` when it has this base and these hyperparameters."""
    try:
        data = json.loads((folder / CONTINUATION).read_text())
        same = data["base"] == _key(base) and data["params"] == json.loads(json.dumps(params, default=str))
        return Lineage(float(data["since"]), data.get("resume")) if same else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record(folder: Path, base: dict[str, Any] | None, params: dict[str, Any],
           resume: dict[str, Any] | None, since: float | None) -> None:
    """Record the segment about to start (``since``: its lineage's start, None for a new one)."""
    atomic_write_json(folder / CONTINUATION, {
        "base": _key(base), "params": params, "resume": resume,
        "since": time.time() if since is None else since})


def continue_point(train_dir: Path, lines: list[StatusLine], since: float, after: int,
                   before: int) -> CheckpointFile | None:
    """The newest checkpoint written since ``since`` that holds more than ``after`` and fewer
    than ``before`` finished epochs (an epoch-end file before TAO's exception checkpoint of the
    same epochs), or None."""
    found = []
    for ckpt in resume_candidates(train_dir, lines):
        try:
            written = ckpt.path.stat().st_mtime
        except OSError:
            continue
        if written >= since and after < ckpt.epochs < before:
            found.append(ckpt)
    return max(found, key=lambda c: (c.epochs, not c.interrupted), default=None)


def note(rec_id: str, ckpt: CheckpointFile) -> str:
    """The one line that says where an interrupted trial continues from."""
    if ckpt.interrupted:
        return (f"trial {rec_id}: continues after {ckpt.epochs} epoch(s) from TAO's exception "
                f"checkpoint {ckpt.path.name}, written at the interruption between two epochs "
                f"(TAO's own auto-resume would take it)")
    return f"trial {rec_id}: continues after {ckpt.epochs} epoch(s) from {ckpt.path.name}"


def clear_latest(train_dir: Path) -> None:
    """Remove ``*_latest.pth`` so that TAO, given no resume path, starts from scratch."""
    if train_dir.is_dir():
        for path in train_dir.glob("*_latest.pth"):
            path.unlink(missing_ok=True)
