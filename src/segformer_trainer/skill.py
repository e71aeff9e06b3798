"""Write this trainer's skill folder in TAO's layout (``automl-segformer skill --out DIR``).

``skill_info.yaml`` keeps TAO's commands (``segformer <action> -e {config_path}``): that is TAO's
contract; the AutoML engine runs ``python -m segformer_trainer.cli`` for the bundled skill.

::

    DIR/references/skill_info.yaml
    DIR/references/spec_template_{train,evaluate,inference,export}.yaml
    DIR/schemas/{train,evaluate,inference,export}.schema.json
    DIR/schemas/manifest.json

Everything is generated from :mod:`segformer_trainer.config` (templates = the models' defaults,
schemas via :mod:`segformer_trainer.schema`). The copy checked in at
``src/segformer_trainer/skill`` is the embedded default the AutoML engine runs on; a test checks it
equals what this module generates now.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .config import default_spec
from .schema import build_schema, dumps

ACTIONS = ("train", "evaluate", "inference", "export")
CONTAINER_IMAGE = "nvcr.io/nvidia/tao/tao-toolkit:7.1.0-pyt"


def _io(action: str) -> tuple[dict[str, Any], dict[str, Any]]:
    inputs: dict[str, Any] = {"dataset.segment.root_dir": {"type": "folder"}}
    outputs: dict[str, Any] = {"results_dir": {"type": "folder"}}
    if action == "train":
        for key in ("model.backbone.pretrained_backbone_path", "train.pretrained_model_path",
                    "train.resume_training_checkpoint_path"):
            inputs[key] = {"type": "file", "optional": True}
        outputs["export.onnx_file"] = {"type": "file"}
    else:
        inputs[f"{action}.checkpoint"] = {"type": "file"}
    return inputs, outputs


def skill_info() -> dict[str, Any]:
    actions = {}
    for action in ACTIONS:
        inputs, outputs = _io(action)
        actions[action] = {
            "command": f"segformer {action} -e {{config_path}}",
            "config_format": "yaml",
            "mode": "config",
            "inputs": inputs,
            "outputs": outputs,
            "upload_excludes": ["inputs/"],
        }
    sources = {"train": "train_datasets", "evaluate": "eval_dataset", "export": "train_datasets",
               "inference": "inference_dataset"}
    spec_params = {
        "train": {
            "encryption_key": "key",
            "results_dir": "output_dir",
            "model.backbone.pretrained_backbone_path": "ptm_if_no_resume_model",
            "train.pretrained_model_path": "ptm_if_no_resume_model",
            "train.resume_training_checkpoint_path": "resume_model",
        },
        "evaluate": {"encryption_key": "key", "results_dir": "output_dir", "evaluate.checkpoint": "parent_model"},
        "export": {"encryption_key": "key", "results_dir": "output_dir", "export.checkpoint": "parent_model",
                   "export.onnx_file": "create_onnx_file"},
        "inference": {"encryption_key": "key", "results_dir": "output_dir",
                      "inference.checkpoint": "parent_model"},
    }
    return {
        "name": "segformer-trainer",
        "network_arch": "segformer",
        "automl_enabled": True,
        "container_image": CONTAINER_IMAGE,
        "data_format": "unet",
        "gpu_spec_key": "train.num_gpus",
        "actions": actions,
        "data_sources": {a: {"dataset.segment.root_dir": {"source": sources[a], "path": ""}} for a in ACTIONS},
        "spec_params": spec_params,
        "key_defaults": {},
        "spec_shorthand_keys": {
            "num_epochs": "train.num_epochs",
            "num_gpus": "train.num_gpus",
            "batch_size": "dataset.segment.batch_size",
            "learning_rate": "train.optim.lr",
            "num_classes": "dataset.segment.num_classes",
            "img_size": "dataset.segment.img_size",
            "num_workers": "dataset.segment.workers",
            "root_dir": "dataset.segment.root_dir",
            "pretrained_backbone": "model.backbone.pretrained_backbone_path",
            "pretrained_model": "train.pretrained_model_path",
            "resume_checkpoint": "train.resume_training_checkpoint_path",
            "checkpoint": "evaluate.checkpoint",
            "input_width": "export.input_width",
            "input_height": "export.input_height",
            "export_onnx": "export.onnx_file",
        },
        "spec_templates": {a: f"../references/spec_template_{a}.yaml" for a in ACTIONS},
        "description": (
            "SegFormer for semantic segmentation, bundled CPU-sized trainer (segformer_trainer): TAO's "
            "`segformer <action> -e spec.yaml` CLI, spec, status.json and checkpoint contract, with "
            "transformers' SegFormer. TAO's own specs run here (FAN/ViT backbone names map to MiT sizes); "
            "this skill's default backbone mit_nano exists only in this trainer."
        ),
    }


def manifest(schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "actions": {
            a: {
                "automl_default_parameters": schemas[a]["automl_default_parameters"],
                "automl_disabled_parameters": schemas[a]["automl_disabled_parameters"],
                "core_module": "segformer",
                "path": f"schemas/{a}.schema.json",
                "popular": schemas[a]["popular"],
                "schema_action": a,
                "spec_template": f"references/spec_template_{a}.yaml",
            }
            for a in ACTIONS
        },
        "automl_enabled": True,
        "failures": {},
        "model": "segformer",
        "network_arch": "segformer",
        "schema_version": 1,
    }


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)


def render() -> dict[str, str]:
    """Relative path -> file content of the whole skill folder."""
    files: dict[str, str] = {"references/skill_info.yaml": _yaml(skill_info())}
    schemas = {a: build_schema(a) for a in ACTIONS}
    for action in ACTIONS:
        files[f"references/spec_template_{action}.yaml"] = _yaml(default_spec(action))
        files[f"schemas/{action}.schema.json"] = dumps(schemas[action])
    files["schemas/manifest.json"] = json.dumps(manifest(schemas), indent=2, sort_keys=True) + "\n"
    return files


def write_skill(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    for rel, text in render().items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return out
