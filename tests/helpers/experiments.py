"""Small finished experiments on the fake trainer, for tests that read or rewrite a workspace."""

from __future__ import annotations

from pathlib import Path

from automl.cli import main
from tests.helpers.skills import make_fake_skill


def finished_random_search(base: Path, seed: int, epochs: int, *extra: str) -> Path:
    """``automl run --algo random`` of 4 trials on a fake skill in ``base/skill``, to completion
    in ``base/ws`` (returned). Needs a Ray session (the ``ray_session`` fixture)."""
    skill = make_fake_skill(base / "skill")
    ws = base / "ws"
    code = main(["run", "--skill-dir", str(skill), "--workspace", str(ws), "--progress", "none",
                 "--seed", str(seed), "--algo", "random", "--max-recommendations", "4",
                 "--max-epochs", str(epochs), *extra])
    assert code == 0
    return ws
