"""Shared fixtures: one Ray session per test run, the fake trainer's skill folder, shared/ data."""

from __future__ import annotations

import json
import os
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_TAO = ROOT.parent / "shared" / "tao"
FAKE_TRAINER = Path(__file__).parent / "fixtures" / "fake_trainer.py"

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
# Commands this installation provides (`automl`, `automl-segformer`) resolve to its own scripts
# first, as in an activated venv, not to another interpreter's script earlier on PATH (a pyenv
# shim). A real TAO skill's `segformer` is provided per test by segformer_shim().
os.environ["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])


def segformer_shim(folder: Path) -> Path:
    """A folder to put first on PATH, holding an executable ``segformer`` that runs the bundled
    trainer (``python -m segformer_trainer.cli``).

    A real TAO skill's command is ``segformer train -e {config_path}``; the bundled trainer's own
    console script is ``automl-segformer`` (a ``segformer`` installed into a TAO container would
    shadow TAO's entry point), so tests that run a real skill locally provide the name this way.
    """
    import shlex

    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "segformer"
    python = shlex.quote(sys.executable)
    shim.write_text(f'#!/bin/sh\nexec {python} -m segformer_trainer.cli "$@"\n')
    shim.chmod(0o755)
    return folder


def shared_tao() -> Path:
    if not SHARED_TAO.is_dir():
        pytest.skip(f"real TAO skill folders not found at {SHARED_TAO} (../shared/tao beside the "
                    f"checkout): these tests need them")
    return SHARED_TAO


@pytest.fixture(scope="session")
def ray_session():
    """One ray.init for the whole test session (ray.init costs ~3 s and ~750 MiB)."""
    import ray

    from automl.engine import _RAY_ENV

    for key, value in _RAY_ENV.items():
        os.environ.setdefault(key, value)
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING")
    yield ray
    ray.shutdown()


FAKE_SCHEMA = {
    "automl_default_parameters": ["hp.x", "hp.y", "hp.c"],
    "automl_disabled_parameters": [],
    "default": {},
    "type": "object",
    "properties": {
        "results_dir": {"type": "string", "default": ""},
        "hp": {"type": "collection", "properties": {
            "x": {"type": "float", "default": 0.5, "minimum": 0.0, "maximum": 1.0,
                  "automl_enabled": True},
            "y": {"type": "int", "default": 1, "minimum": 1, "maximum": 5, "automl_enabled": True},
            "c": {"type": "categorical", "enum": ["a", "b"], "default": "a",
                  "automl_enabled": True},
        }},
        "train": {"type": "collection", "properties": {
            "num_epochs": {"type": "int", "default": 3, "minimum": 1, "maximum": float("inf")},
            "checkpoint_interval": {"type": "int", "default": 1, "minimum": 1},
            "validation_interval": {"type": "int", "default": 1, "minimum": 1},
            "resume_training_checkpoint_path": {"type": "string", "default": ""},
            "results_dir": {"type": "string", "default": ""},
        }},
        "fake": {"type": "collection", "properties": {
            "mode": {"type": "string", "default": "ok"},
            "epoch_s": {"type": "float", "default": 0.0},
            "allow_param_change": {"type": "bool", "default": True},
        }},
    },
}

FAKE_TEMPLATE = {
    "results_dir": "",
    "hp": {"x": 0.5, "y": 1, "c": "a"},
    "train": {"num_epochs": 3, "checkpoint_interval": 1, "validation_interval": 1,
              "resume_training_checkpoint_path": "", "results_dir": ""},
    "fake": {"mode": "ok", "epoch_s": 0.0, "allow_param_change": True},
}


def make_fake_skill(folder: Path, template: dict | None = None) -> Path:
    (folder / "schemas").mkdir(parents=True, exist_ok=True)
    (folder / "references").mkdir(parents=True, exist_ok=True)
    (folder / "schemas" / "train.schema.json").write_text(json.dumps(FAKE_SCHEMA, indent=1))
    (folder / "references" / "spec_template_train.yaml").write_text(
        yaml.safe_dump(template or FAKE_TEMPLATE))
    info = {
        "name": "fake-skill", "network_arch": "fake", "automl_enabled": True,
        "actions": {"train": {"command": f"{sys.executable} {FAKE_TRAINER} train -e {{config_path}}"}},
        "spec_templates": {"train": "../references/spec_template_train.yaml"},
    }
    (folder / "references" / "skill_info.yaml").write_text(yaml.safe_dump(info))
    return folder


@pytest.fixture
def fake_skill(tmp_path: Path) -> Path:
    return make_fake_skill(tmp_path / "fake-skill")
