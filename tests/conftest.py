"""Shared fixtures: one Ray session per test run, the fake trainer's skill folder.

The builders behind them (and the other shared helpers) are in :mod:`tests.helpers`.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

from tests.helpers.skills import make_fake_skill

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
# Commands this installation provides (`automl`, `automl-segformer`) resolve to its own scripts
# first, as in an activated venv, not to another interpreter's script earlier on PATH (a pyenv
# shim). A real TAO skill's `segformer` is provided per test by segformer_shim().
os.environ["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])


@pytest.fixture(scope="session")
def ray_session():
    """One ray.init for the whole test session (ray.init costs ~3 s and ~750 MiB)."""
    import ray

    from automl.run.engine import init_ray

    init_ray(None, num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture
def fake_skill(tmp_path: Path) -> Path:
    return make_fake_skill(tmp_path / "fake-skill")
