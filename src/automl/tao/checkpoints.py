"""TAO's checkpoint names, the exact file a result belongs to, and the resume pointer.

TAO's checkpoint callback names a file ``model_epoch_{current_epoch:03d}_step_{global_step:05d}.pth``
with Lightning's 0-based epoch of the epoch just completed: the file written after E epochs is
``model_epoch_{E-1:03d}_...`` (a one-epoch run of 10 steps writes ``model_epoch_000_step_00010.pth``;
resumed for one more epoch it writes ``model_epoch_001_step_00020.pth``). Callers speak *epochs
completed*; this module is the only place that maps them to names.

A hand-off or a promotion must use the file of the *epoch that was scored*, never "latest"
(which may belong to a later, worse or unfinished epoch), so the resolver only ever matches by
epoch; ``<arch>_model_latest.pth`` is returned only to a caller that asks for it explicitly.

The resume pointer (what a paused trial hands to Tune, and a PBT child inherits) is
``{"path", "epoch": epochs completed, "step", "rec_id"}``; the trainer resumes with
``train.resume_training_checkpoint_path`` = that exact file and continues after its epoch.

**Finished epochs only.** TAO's ``TAOExceptionCheckpoint`` writes, on any exception inside
``trainer.fit`` (SIGTERM included), ``model_epoch_{current_epoch}_step_{global_step}.pth`` for the
epoch *in progress*: mid-epoch (``model_epoch_001_step_00015.pth``), or, when the signal lands
between two epochs, with the step of the last finished epoch (``model_epoch_002_step_00020.pth``
after 2 finished epochs of 10 steps), and points ``*_latest.pth`` at it. Its name looks like the
checkpoint after one more epoch, so a file counts as the end of an epoch only when status.json
has that epoch's line (TAO writes it before the epoch's checkpoint) with the same step
(:func:`epoch_ends`); without a status file, a file whose step is not above that of a file of an
earlier epoch is not an epoch end either. An exception checkpoint written *between* two epochs
holds exactly the state of the finished epochs (its step is the last epoch line's): it is the
file TAO's own auto-resume would continue from, and :func:`resume_candidates` offers it under
the number of epochs it holds; a mid-epoch one is never offered.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl.tao.lines import StatusLine, read_status

_NAME = re.compile(r"^model_epoch_(\d+)_step_(\d+)\.pth$")


@dataclass(frozen=True, order=True)
class CheckpointFile:
    epochs: int  # epochs completed when it was written (the 0-based epoch in its name + 1)
    step: int  # optimizer steps done (global_step)
    path: Path
    # TAO's exception checkpoint written between two epochs (see the module docstring): it
    # holds ``epochs`` finished epochs although its name says one more.
    interrupted: bool = False

    @classmethod
    def parse(cls, path: Path) -> CheckpointFile | None:
        match = _NAME.match(path.name)
        if not match:
            return None
        return cls(int(match.group(1)) + 1, int(match.group(2)), path)

    @property
    def tao_epoch(self) -> int:
        """The 0-based epoch TAO wrote in the name (``checkpoint_epoch`` in best_rec.json)."""
        return self.epochs - 1

    def pointer(self, rec_id: str) -> dict[str, Any]:
        """The resume pointer of this file, owned by trial ``rec_id``."""
        return {"path": str(self.path), "epoch": self.epochs, "step": self.step, "rec_id": rec_id}


def checkpoint_name(epochs: int, step: int) -> str:
    """The file name TAO gives the checkpoint written after ``epochs`` epochs (>= 1)."""
    return f"model_epoch_{epochs - 1:03d}_step_{step:05d}.pth"


def checkpoint_pattern(epochs: int) -> str:
    """The name of the checkpoint after ``epochs`` epochs with any step (for messages)."""
    return f"model_epoch_{epochs - 1:03d}_step_*.pth"


def list_checkpoints(train_dir: Path) -> list[CheckpointFile]:
    """Every contract-named checkpoint in ``train_dir``, by epoch then step (exception
    checkpoints included: :func:`finished_checkpoints` tells them apart)."""
    if not train_dir.is_dir():
        return []
    found = (CheckpointFile.parse(p) for p in train_dir.iterdir() if p.is_file())
    return sorted(c for c in found if c is not None)


EpochEnds = set[tuple[int, int | None]]  # (epochs completed, global step at the epoch's end)


def epoch_ends(lines: Iterable[StatusLine]) -> EpochEnds:
    """Where each finished epoch ended, from status.json's epoch lines (every process's: epoch
    numbers and steps are absolute across resumed runs). A line without ``step`` (older TAO)
    vouches for its epoch at any step."""
    return {(line.epoch + 1, line.step) for line in lines
            if line.epoch is not None and line.epoch >= 0}


def _status_ends(train_dir: Path) -> EpochEnds | None:
    """:func:`epoch_ends` of the status.json beside the checkpoints; None when there is none."""
    path = train_dir / "status.json"
    return epoch_ends(read_status(path)) if path.exists() else None


def _ends_an_epoch(ckpt: CheckpointFile, ends: EpochEnds | None,
                   others: list[CheckpointFile]) -> bool:
    if ends is not None:
        return (ckpt.epochs, ckpt.step) in ends or (ckpt.epochs, None) in ends
    # No status file: an epoch's end has more steps than every earlier epoch's checkpoint.
    return not any(o.epochs < ckpt.epochs and o.step >= ckpt.step for o in others)


def epochs_held(ckpt: CheckpointFile, ends: EpochEnds) -> int:
    """The finished epochs in ``ckpt``: its name's, or one fewer for TAO's exception checkpoint
    written between two epochs (its step is where the previous epoch line ended)."""
    if (ckpt.epochs, ckpt.step) in ends or (ckpt.epochs, None) in ends:
        return ckpt.epochs
    return ckpt.epochs - 1 if (ckpt.epochs - 1, ckpt.step) in ends else ckpt.epochs


def finished_checkpoints(train_dir: Path, lines: Iterable[StatusLine] | None = None
                         ) -> list[CheckpointFile]:
    """The checkpoints written at the end of an epoch (never an exception checkpoint), sorted.
    ``lines``: the status lines when the caller has them (else status.json is read)."""
    found = list_checkpoints(train_dir)
    ends = epoch_ends(lines) if lines is not None else _status_ends(train_dir)
    return [c for c in found if _ends_an_epoch(c, ends, found)]


def resume_candidates(train_dir: Path, lines: Iterable[StatusLine] | None = None
                      ) -> list[CheckpointFile]:
    """The files a trial may continue from, by epochs held: every finished-epoch checkpoint, and
    TAO's exception checkpoints written between two epochs (named one epoch on, with the step at
    which the previous epoch line ended; returned with ``interrupted`` and the epochs they
    hold). Mid-epoch exception checkpoints are left out: continuing from one would not give the
    run an uninterrupted trainer gives."""
    found = list_checkpoints(train_dir)
    ends = epoch_ends(lines) if lines is not None else _status_ends(train_dir)
    out: list[CheckpointFile] = []
    for ckpt in found:
        if _ends_an_epoch(ckpt, ends, found):
            out.append(ckpt)
        elif ends is not None and epochs_held(ckpt, ends) < ckpt.epochs:
            out.append(CheckpointFile(ckpt.epochs - 1, ckpt.step, ckpt.path, interrupted=True))
    return sorted(out)


def checkpoint_after(train_dir: Path, epochs: int, lines: Iterable[StatusLine] | None = None
                     ) -> CheckpointFile | None:
    """The checkpoint written at the end of ``epochs`` epochs, or None: never TAO's exception
    checkpoint, whose name looks like one (see :func:`finished_checkpoints`)."""
    matches = [c for c in finished_checkpoints(train_dir, lines) if c.epochs == epochs]
    return matches[-1] if matches else None


def latest_checkpoint(train_dir: Path) -> Path | None:
    """``*_model_latest.pth`` - only for callers that explicitly asked for ``latest``."""
    candidates = sorted(train_dir.glob("*model_latest.pth"))
    return candidates[-1] if candidates else None


def wait_for_checkpoint(train_dir: Path, epochs: int, timeout_s: float,
                        writer_alive: Callable[[], bool], poll_s: float = 0.05,
                        settled_s: float = 0.2, lines: Iterable[StatusLine] | None = None
                        ) -> CheckpointFile | None:
    """The checkpoint after ``epochs`` epochs once it is complete, or None after ``timeout_s``.

    The validation line reaches the engine before TAO writes the epoch's checkpoint (Lightning's
    ModelCheckpoint runs after the status callback), and pausing the trial kills the trainer: a
    file still being written would be resumed from torn. Lightning writes in place (no rename),
    so "complete" means: not empty, and either the writer has exited, or the file has neither
    grown over one poll nor been modified for ``settled_s`` (one large write() keeps its
    mtime while the size still grows). The wait is short because a live trainer trains on
    meanwhile, past the epoch a scheduler may pause it at. ``lines``: the status lines read so
    far (the epoch's line included), so that polling does not re-read status.json.
    """
    lines = list(lines) if lines is not None else None
    deadline = time.monotonic() + timeout_s
    last_size = -1
    while True:
        alive = writer_alive()
        found = checkpoint_after(train_dir, epochs, lines)
        if found is not None:
            try:
                stat = found.path.stat()
            except OSError:
                stat = None
            size = stat.st_size if stat is not None else -1
            if size > 0 and (not alive or (size == last_size
                                           and time.time() - stat.st_mtime >= settled_s)):
                return found
            last_size = size
        elif not alive:
            return None
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll_s)
