"""Finding the exact checkpoint a result belongs to.

TAO trainers write ``model_epoch_{epoch:03d}_step_{step:05d}.pth`` every checkpoint interval and
``<arch>_model_latest.pth``. A hand-off or a promotion must use the file of the *epoch that was
scored*, never "latest" (which may belong to a later, worse or unfinished epoch), so the resolver
only ever matches by epoch. ``latest`` is available only when a caller asks for it explicitly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^model_epoch_(\d+)_step_(\d+)\.pth$")


@dataclass(frozen=True, order=True)
class CheckpointFile:
    epoch: int
    step: int
    path: Path

    @classmethod
    def parse(cls, path: Path) -> CheckpointFile | None:
        match = _NAME.match(path.name)
        if not match:
            return None
        return cls(int(match.group(1)), int(match.group(2)), path)


def checkpoint_name(epoch: int, step: int) -> str:
    return f"model_epoch_{epoch:03d}_step_{step:05d}.pth"


def list_checkpoints(train_dir: Path) -> list[CheckpointFile]:
    """Every contract-named checkpoint in ``train_dir``, by epoch then step."""
    if not train_dir.is_dir():
        return []
    found = (CheckpointFile.parse(p) for p in train_dir.iterdir() if p.is_file())
    return sorted(c for c in found if c is not None)


def checkpoint_for_epoch(train_dir: Path, epoch: int) -> CheckpointFile | None:
    """The checkpoint written at ``epoch`` (the last step of it if several), or None."""
    matches = [c for c in list_checkpoints(train_dir) if c.epoch == epoch]
    return matches[-1] if matches else None


def latest_checkpoint(train_dir: Path) -> Path | None:
    """``*_model_latest.pth`` — only for callers that explicitly asked for ``latest``."""
    candidates = sorted(train_dir.glob("*model_latest.pth"))
    return candidates[-1] if candidates else None
