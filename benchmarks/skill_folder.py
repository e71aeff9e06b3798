"""Writes a TAO skill folder for a benchmark trainer (shared by the benchmarks in this folder).

A skill folder is what ``automl run --skill-dir`` reads: ``schemas/train.schema.json`` (TAO's
schema format, ``automl_enabled`` leaves are searched), ``references/spec_template_train.yaml``
and ``references/skill_info.yaml`` whose ``actions.train.command`` starts the trainer with
``-e {config_path}``. The layout is the one ``tests/helpers/skills.py`` (``make_fake_skill``) builds
for the fake trainer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_skill(folder: Path, name: str, schema: dict[str, Any], template: dict[str, Any],
                command: str) -> Path:
    """Write the skill folder; ``command`` must contain ``{config_path}``."""
    import yaml

    folder = Path(folder)
    (folder / "schemas").mkdir(parents=True, exist_ok=True)
    (folder / "references").mkdir(parents=True, exist_ok=True)
    (folder / "schemas" / "train.schema.json").write_text(json.dumps(schema, indent=1))
    (folder / "references" / "spec_template_train.yaml").write_text(yaml.safe_dump(template))
    info = {
        "name": name, "network_arch": name.removesuffix("-skill"), "automl_enabled": True,
        "actions": {"train": {"command": command}},
        "spec_templates": {"train": "../references/spec_template_train.yaml"},
    }
    (folder / "references" / "skill_info.yaml").write_text(yaml.safe_dump(info))
    return folder
