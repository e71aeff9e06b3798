"""The skill folders tests run on: the fake trainer's (``fixtures/fake_trainer.py``, one
second-scale epochs and failure modes on demand), the real TAO skills beside the checkout
(``../shared/tao``), and a ``segformer`` command for those."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SHARED_TAO = ROOT.parent / "shared" / "tao"
FAKE_TRAINER = ROOT / "tests" / "fixtures" / "fake_trainer.py"


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
        "name": "fake-skill", "network_arch": "segformer", "automl_enabled": True,
        "actions": {"train": {"command": f"{sys.executable} {FAKE_TRAINER} train -e {{config_path}}"}},
        "spec_templates": {"train": "../references/spec_template_train.yaml"},
    }
    (folder / "references" / "skill_info.yaml").write_text(yaml.safe_dump(info))
    return folder


def network_shim(folder: Path, skill_dir: Path, require: tuple[str, ...] = ()) -> Path:
    """A folder to put first on PATH, holding the real skill's command (``re_identification``,
    ``classification_pyt``, ...) as the fake trainer in that network's dialect: its KPI names,
    TAO's monitoring metric and direction (``FAKE_NETWORK``; see ``fixtures/fake_trainer.py``).
    ``require``: spec keys a hand-off action checks for existing paths."""
    import shlex

    from automl.networks import profile_for
    from automl.skill.folder import SkillDir

    skill = SkillDir.load(skill_dir)
    profile = profile_for(skill)
    metric, direction = profile.objective(None, None, skill.name)
    network = {"arch": profile.network_arch, "metric": metric, "direction": direction,
               "kpis": [k for k in profile.facts.known_kpis if k != metric]}
    program = skill.command("train", "{config_path}")[0]
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / program
    shim.write_text(f"#!/bin/sh\nexport FAKE_NETWORK={shlex.quote(json.dumps(network))}\n"
                    f"export FAKE_REQUIRE={shlex.quote(json.dumps(list(require)))}\n"
                    f'exec {shlex.quote(sys.executable)} {shlex.quote(str(FAKE_TRAINER))} "$@"\n')
    shim.chmod(0o755)
    return folder
