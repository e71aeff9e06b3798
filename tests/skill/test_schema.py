"""The TAO schema reader on the 33 real skill schemas and on broken copies."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from automl.errors import UserError
from automl.skill.schema import SEARCHABLE_TYPES, disabled_parameters, iter_leaves, load_schema, parse_yaml

TAO = Path(__file__).resolve().parents[3] / "shared" / "tao"
NO_TAO = "../shared/tao not present: the real TAO skill folders are test data beside the checkout"
SKILLS = sorted(p.name for p in TAO.glob("tao-*")) if TAO.is_dir() else []


def schema_of(skill: str) -> dict:
    if not TAO.is_dir():
        pytest.skip(NO_TAO)
    return load_schema(TAO / skill / "schemas" / "train.schema.json")


@pytest.mark.parametrize("skill", SKILLS or [pytest.param("", marks=pytest.mark.skip(reason=NO_TAO))])
def test_every_real_schema_loads_and_every_leaf_is_classified(skill: str) -> None:
    leaves = list(iter_leaves(schema_of(skill)))
    assert leaves
    names = [leaf.name for leaf in leaves]
    assert len(names) == len(set(names))
    for leaf in leaves:
        assert "automl_disabled_parameters" not in leaf.name.split(".")
        # every leaf is either searchable or says why not
        assert (leaf.kind is None) != (leaf.unsearchable is None)


def test_all_33_skills_present() -> None:
    if not TAO.is_dir():
        pytest.skip(NO_TAO)
    assert len(SKILLS) == 33


def test_segformer_leaves_keep_infinity_and_skip_groups() -> None:
    schema = schema_of("tao-train-segformer")
    leaves = {leaf.name: leaf for leaf in iter_leaves(schema)}
    lr = leaves["train.optim.lr"]
    assert (lr.type, lr.kind, lr.default, lr.minimum) == ("float", "float", 6e-05, 0.0)
    assert math.isinf(lr.maximum)
    assert "train.optim" not in leaves  # a group, recursed into
    assert leaves["model.backbone.freeze_backbone"].kind == "bool"
    assert leaves["model.backbone.type"].kind == "categorical"
    assert leaves["train.gpu_ids"].kind is None
    assert "'list'" in leaves["train.gpu_ids"].unsearchable


def test_type_zoo_across_schemas() -> None:
    cosmos = {leaf.name: leaf for leaf in iter_leaves(schema_of("tao-finetune-cosmos-reason"))}
    # anyOf(number | array) with a numeric default is searched as a float
    assert cosmos["train.optm_lr"].type is None
    assert cosmos["train.optm_lr"].kind == "float"
    # anyOf(boolean | string) cannot be searched and says so
    assert cosmos["policy.lora.init_lora_weights"].kind is None
    assert "anyOf(boolean|string)" in cosmos["policy.lora.init_lora_weights"].unsearchable
    assert cosmos["train.optm_warmup_epochs"].depends_on == "train.epoch"
    assert cosmos["train.epoch"].parent_param is True
    assert cosmos["train.optm_decay_type"].option_weights == (0.1, 0.1, 0.4, 0.4)
    assert cosmos["policy.lora.r"].math_cond == "^ 2"
    assert cosmos["train.optm_betas"].automl_enabled is False
    dinov3 = {leaf.name: leaf for leaf in iter_leaves(schema_of("tao-train-dinov3"))}
    assert dinov3["model.backbone.img_size"].type == "ordered_int"
    assert dinov3["model.backbone.img_size"].kind == "categorical"
    kinds = {leaf.type for skill in SKILLS for leaf in iter_leaves(schema_of(skill))}
    assert {"list_2", "list_3", "subset_list", "optional_list", "list_1_backbone", None} <= kinds
    assert set(SEARCHABLE_TYPES) <= kinds


def test_disabled_parameters_are_exact_names() -> None:
    schema = schema_of("tao-train-segformer")
    disabled = disabled_parameters(schema)
    assert {"train.gpu_ids", "model.backbone", "train.optim"} <= disabled
    assert "train.optim.lr" not in disabled  # its group is listed, the leaf is searched by default
    assert "train.optm_betas" in disabled_parameters(schema_of("tao-finetune-cosmos-reason"))


def test_invalid_json_names_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "train.schema.json"
    bad.write_text('{\n  "properties": {\n    "lr": {"type": "float",}\n  }\n}\n')
    with pytest.raises(UserError, match=r"train\.schema\.json:3:\d+: invalid JSON"):
        load_schema(bad)


def test_bare_infinity_and_nan_tokens_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"properties": {"a": {"type": "float", "minimum": -Infinity, "maximum": Infinity,'
                    ' "default": NaN}}}')
    (leaf,) = iter_leaves(load_schema(path))
    assert leaf.minimum == -math.inf and leaf.maximum == math.inf and math.isnan(leaf.default)


def test_missing_or_non_schema_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="schema file not found"):
        load_schema(tmp_path / "nope.json")
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match="not a TAO schema"):
        load_schema(path)


def test_yaml_reads_exponent_floats_and_reports_lines() -> None:
    assert parse_yaml("a: 1e-5\nb: 2.5E3\nc: 8\nd: 1e5x") == {"a": 1e-5, "b": 2500.0, "c": 8, "d": "1e5x"}
    with pytest.raises(UserError, match=r"f\.yaml:2:\d+: invalid YAML"):
        parse_yaml("a: 1\n  b: 2\n", "f.yaml")
