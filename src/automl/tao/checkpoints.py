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
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^model_epoch_(\d+)_step_(\d+)\.pth$")


@dataclass(frozen=True, order=True)
class CheckpointFile:
    epochs: int  # epochs completed when it was written (the 0-based epoch in its name + 1)
    step: int  # optimizer steps done (global_step)
    path: Path

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
    """Every contract-named checkpoint in ``train_dir``, by epoch then step."""
    if not train_dir.is_dir():
        return []
    found = (CheckpointFile.parse(p) for p in train_dir.iterdir() if p.is_file())
    return sorted(c for c in found if c is not None)


def checkpoint_after(train_dir: Path, epochs: int) -> CheckpointFile | None:
    """The checkpoint written after ``epochs`` epochs (the last step of it if several), or None."""
    matches = [c for c in list_checkpoints(train_dir) if c.epochs == epochs]
    return matches[-1] if matches else None


def latest_checkpoint(train_dir: Path) -> Path | None:
    """``*_model_latest.pth`` - only for callers that explicitly asked for ``latest``."""
    candidates = sorted(train_dir.glob("*model_latest.pth"))
    return candidates[-1] if candidates else None


def wait_for_checkpoint(train_dir: Path, epochs: int, timeout_s: float,
                        writer_alive: Callable[[], bool], poll_s: float = 0.05,
                        settled_s: float = 0.2) -> CheckpointFile | None:
    """The checkpoint after ``epochs`` epochs once it is complete, or None after ``timeout_s``.

    The validation line reaches the engine before TAO writes the epoch's checkpoint (Lightning's
    ModelCheckpoint runs after the status callback), and pausing the trial kills the trainer: a
    file still being written would be resumed from torn. Lightning writes in place (no rename),
    so "complete" means: not empty, and either the writer has exited, or the file has neither
    grown over one poll nor been modified for ``settled_s`` (one large write() keeps its
    mtime while the size still grows). The wait is short because a live trainer trains on
    meanwhile, past the epoch a scheduler may pause it at.
    """
    deadline = time.monotonic() + timeout_s
    last_size = -1
    while True:
        alive = writer_alive()
        found = checkpoint_after(train_dir, epochs)
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
