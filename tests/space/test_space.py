"""Search spaces built from the real TAO schemas, user overrides, conditions and sampling."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import optuna
import pytest

from automl.errors import UserError
from automl.skill.schema import load_schema
from automl.space.build import build_space
from automl.space.overrides import SpaceOverrides, load_overrides, overrides_from_flags, parse_overrides
from automl.space.params import Param, SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

TAO = Path(__file__).resolve().parents[3] / "shared" / "tao"
NO_TAO = "../shared/tao not present: the real TAO skill folders are test data beside the checkout"
SKILLS = sorted(p.name for p in TAO.glob("tao-*")) if TAO.is_dir() else []
LR = "train.optim.lr"
HUE = "dataset.segment.augmentation.random_color.hue"
CROP_MIN = "dataset.augmentation.train_random_crop_min"
CROP_MAX = "dataset.augmentation.train_random_crop_max"


def schema_of(skill: str) -> dict:
    if not TAO.is_dir():
        pytest.skip(NO_TAO)
    return load_schema(TAO / skill / "schemas" / "train.schema.json")


@pytest.fixture(scope="module")
def segformer() -> dict:
    return schema_of("tao-train-segformer")


def space_with(schema: dict, parameters: dict | None = None, **top) -> SearchSpace:
    return build_space(schema, parse_overrides({"parameters": parameters or {}, **top}))


def samples(space: SearchSpace, n: int, sampler: optuna.samplers.BaseSampler | None = None) -> list[dict]:
    """``n`` suggestions through the ask/tell interface, each told a dummy objective."""
    study = optuna.create_study(sampler=sampler or optuna.samplers.RandomSampler(seed=7))
    out = []
    for i in range(n):
        trial = study.ask()
        out.append(space.suggest(trial))
        study.tell(trial, float(i % 5))
    return out


# --- the real schemas ------------------------------------------------------------------------


@pytest.mark.parametrize("skill", SKILLS or [pytest.param("", marks=pytest.mark.skip(reason=NO_TAO))])
def test_every_real_schema_builds_a_finite_default_space(skill: str) -> None:
    schema = schema_of(skill)
    space = build_space(schema)
    defaults = set(schema["automl_default_parameters"])
    assert set(space.spec_keys()) | set(space.skipped) == defaults
    for param in space.params:
        if param.kind == "categorical":
            assert param.choices
        else:
            assert math.isfinite(param.low) and math.isfinite(param.high) and param.low <= param.high
            assert not param.log or param.low > 0
    for values in samples(space, 3):
        space.validate(values)
    assert SearchSpace.from_json(json.loads(json.dumps(space.to_json()))) == space


def test_segformer_default_space_is_its_16_parameters(segformer: dict) -> None:
    space = build_space(segformer)
    assert sorted(space.names()) == sorted(segformer["automl_default_parameters"])
    assert len(space.params) == 16 and not space.skipped and not space.pinned
    for name in ("model.backbone.freeze_backbone", "dataset.segment.augmentation.random_flip.enable"):
        assert space[name].kind == "categorical"
        assert space[name].choices == (True, False)
    lr = space[LR]
    assert (lr.kind, lr.log) == ("float", True)
    assert (lr.low, lr.high) == pytest.approx((6e-7, 6e-4))
    assert "default/100" in lr.source and "Infinity" in lr.source
    assert (space[HUE].low, space[HUE].high, space[HUE].log, space[HUE].source) == (0.0, 0.5, False, "schema")
    assert space["train.optim.weight_decay"].log is False


def test_range_rules_for_infinite_bounds() -> None:
    grounding = build_space(schema_of("tao-train-grounding-dino"))
    assert (grounding["train.optim.momentum"].low, grounding["train.optim.momentum"].high) == (0.0, 1.0)
    assert grounding["train.optim.lr_decay"].log is False  # a decay factor, not a learning rate
    assert grounding["train.optim.lr_backbone"].log is True
    assert (grounding["model.enc_layers"].low, grounding["model.enc_layers"].high) == (1, 24)  # no maximum
    bevfusion = build_space(schema_of("tao-train-bevfusion"))
    batch = bevfusion["dataset.train_dataset.batch_size"]
    assert (batch.low, batch.high) == (1, 16)
    margin = build_space(schema_of("tao-train-optical-inspection"))["model.margin"]
    assert (margin.low, margin.high) == (1.0, 20.0)


def test_unsearchable_defaults_are_skipped_with_a_reason() -> None:
    schema = schema_of("tao-train-segformer")
    schema = {**schema, "automl_default_parameters": [*schema["automl_default_parameters"],
                                                      "model.backbone.pretrained_backbone_path"]}
    space = build_space(schema)
    assert "model.backbone.pretrained_backbone_path" not in space.names()
    assert "'string'" in space.skipped["model.backbone.pretrained_backbone_path"]
    assert any(row["status"] == "skipped" for row in space.rows())


# --- overrides: happy paths ------------------------------------------------------------------


def test_pin_is_exact_and_always_returned(segformer: dict) -> None:
    space = space_with(segformer, {LR: 0.00123, "train.optim.momentum": {"value": 0.95}})
    assert space.pinned == {LR: 0.00123, "train.optim.momentum": 0.95}
    assert LR not in space.names() and len(space.params) == 14
    for values in samples(space, 5):
        assert values[LR] == 0.00123 and values["train.optim.momentum"] == 0.95
        space.validate(values)


def test_pin_coerces_to_the_schema_type(segformer: dict) -> None:
    space = space_with(segformer, {"dataset.segment.batch_size": 16.0, "model.backbone.type": "fan_tiny_8_p4_hybrid"})
    assert space.pinned["dataset.segment.batch_size"] == 16
    assert isinstance(space.pinned["dataset.segment.batch_size"], int)


def test_override_adds_a_schema_parameter(segformer: dict) -> None:
    space = space_with(segformer, {"dataset.segment.batch_size": {"valid_min": 2, "valid_max": 16}})
    batch = space["dataset.segment.batch_size"]
    assert (batch.kind, batch.low, batch.high, batch.source) == ("int", 2, 16, "override")
    assert len(space.params) == 17
    for values in samples(space, 20):
        assert type(values["dataset.segment.batch_size"]) is int


def test_override_narrows_and_switches_scale(segformer: dict) -> None:
    space = space_with(segformer, {LR: {"valid_min": 1e-5, "valid_max": 1e-3, "log": False}, HUE: {"valid_max": 0.2}})
    assert (space[LR].low, space[LR].high, space[LR].log, space[LR].source) == (1e-5, 1e-3, False, "override")
    assert (space[HUE].low, space[HUE].high) == (0.0, 0.2)
    assert space[HUE].source == "min: schema; max: override"


def test_valid_options_make_a_categorical(segformer: dict) -> None:
    space = space_with(segformer, {"dataset.segment.batch_size": {"valid_options": [4, 8, 16]},
                                   "model.backbone.type": {"valid_options": ["fan_tiny_8_p4_hybrid", "vit_base_dinov3"],
                                                           "option_weights": [3, 1]}})
    assert space["dataset.segment.batch_size"].choices == (4, 8, 16)
    assert space["model.backbone.type"].weights == (0.75, 0.25)


def test_only_and_exclude(segformer: dict) -> None:
    only = space_with(segformer, only=[LR, HUE])
    assert only.names() == [HUE, LR]
    excluded = space_with(segformer, exclude=[LR])
    assert LR not in excluded.names() and len(excluded.params) == 15
    explicit = build_space(segformer, parameters=["train.optim.momentum"])
    assert explicit.names() == ["train.optim.momentum"]


def test_overrides_from_flags(segformer: dict) -> None:
    overrides = overrides_from_flags(
        ranges=[f"{LR}=1e-5:1e-3:log", f"{HUE}=0:0.1"],
        options=["dataset.segment.augmentation.random_flip.enable=true"],
        pins=["train.optim.momentum=0.95", "model.backbone.type=fan_tiny_8_p4_hybrid"],
    )
    space = build_space(segformer, overrides)
    assert (space[LR].low, space[LR].high, space[LR].log) == (1e-5, 1e-3, True)
    assert space[HUE].high == 0.1
    assert space["dataset.segment.augmentation.random_flip.enable"].choices == (True,)
    assert space.pinned == {"train.optim.momentum": 0.95, "model.backbone.type": "fan_tiny_8_p4_hybrid"}


@pytest.mark.parametrize("flags, message", [
    ({"ranges": ["train.optim.lr=1e-5"]}, "range 'train.optim.lr=1e-5': expected NAME=MIN:MAX"),
    ({"ranges": ["train.optim.lr=1:2:lin"]}, "expected NAME=MIN:MAX or NAME=MIN:MAX:log"),
    ({"pins": ["train.optim.lr"]}, "pin 'train.optim.lr': expected NAME=VALUE"),
    ({"pins": ["a.b=1", "a.b=2"]}, "pin 'a.b=2': a.b is already given a pin"),
    ({"options": ["a.b=[1,"]}, r"options 'a.b=\[1,'.*invalid YAML"),
    ({"ranges": ["train.optim.lr=1e-5:1e-3"], "pins": ["train.optim.lr=0.1"]}, "'value' pins the parameter"),
    ({"ranges": ["train.optim.lr=1e-3:1e-5"]}, "train.optim.lr: valid_min 0.001 > valid_max 1e-05"),
])
def test_bad_flags(flags: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        overrides_from_flags(**flags)


def test_load_overrides_yaml_and_json(tmp_path: Path, segformer: dict) -> None:
    yml = tmp_path / "space.yaml"
    yml.write_text(f"parameters:\n  {LR}:\n    valid_min: 1e-5\n    valid_max: 1e-3\n  {HUE}: 0.1\n"
                   "exclude: [train.optim.momentum]\n")
    space = build_space(segformer, load_overrides(yml))
    assert (space[LR].low, space.pinned[HUE]) == (1e-5, 0.1)
    jsn = tmp_path / "space.json"
    jsn.write_text(json.dumps({"only": [LR]}))
    assert build_space(segformer, load_overrides(jsn)).names() == [LR]


def test_load_overrides_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "space.yaml"
    bad.write_text("parameters:\n  train.optim.lr: {valid_min: 1\n")
    with pytest.raises(UserError, match=r"space\.yaml:\d+:\d+: invalid YAML"):
        load_overrides(bad)
    bad_json = tmp_path / "space.json"
    bad_json.write_text('{\n "only": [1,]\n}')
    with pytest.raises(UserError, match=r"space\.json:2:\d+: invalid JSON"):
        load_overrides(bad_json)
    flat = tmp_path / "flat.yaml"
    flat.write_text("train.optim.lr: {valid_min: 1e-5}\n")
    with pytest.raises(UserError, match="train.optim.lr: parameter overrides go under 'parameters:'"):
        load_overrides(flat)
    with pytest.raises(UserError, match="overrides file not found"):
        load_overrides(tmp_path / "none.yaml")


# --- overrides: every mistake is one line naming the key and the fix --------------------------


@pytest.mark.parametrize("parameters, message", [
    ({LR: {"min": 1e-5}}, "train.optim.lr: unknown key 'min' (did you mean 'valid_min'?); "
                          "TAO silently ignores it, we reject it"),
    ({LR: {"max": 1e-3}}, "unknown key 'max' (did you mean 'valid_max'?)"),
    ({LR: {"values": [1e-4]}}, "unknown key 'values' (did you mean 'valid_options'?)"),
    ({LR: {"valid_mni": 1e-4}}, "unknown key 'valid_mni' (did you mean 'valid_min'?)"),
    ({LR: {"valid_min": 1e-3, "valid_max": 1e-4}}, "train.optim.lr: valid_min 0.001 > valid_max 0.0001"),
    ({LR: {"valid_min": "small"}}, "train.optim.lr: valid_min must be a finite number, got 'small'"),
    ({LR: {"valid_min": True}}, "valid_min must be a finite number"),
    ({LR: {"valid_options": []}}, "train.optim.lr: valid_options is empty"),
    ({LR: {"valid_min": 0, "log": True}}, "train.optim.lr: log scale needs valid_min > 0, got 0"),
    ({LR: {"log": "yes"}}, "log must be true or false"),
    ({LR: {"option_weights": [1, -1]}}, "option_weights must be >= 0 with a positive sum"),
    ({LR: {"option_weights": [0, 0]}}, "option_weights must be >= 0 with a positive sum"),
    ({LR: {"valid_options": [1e-4, 1e-3], "option_weights": [1]}}, "option_weights has 1 entries for 2 valid_options"),
    ({LR: {"valid_options": [1e-4, 1e-4]}}, "valid_options lists 0.0001 twice"),
    ({LR: {"value": 1e-4, "valid_min": 1e-5}}, "'value' pins the parameter; drop valid_min"),
])
def test_override_shape_errors(parameters: dict, message: str) -> None:
    with pytest.raises(UserError) as err:
        parse_overrides({"parameters": parameters}, "space.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("space.yaml: ")
    assert "\n" not in str(err.value)


def test_top_level_typo() -> None:
    with pytest.raises(UserError, match="unknown key 'exclud' \\(did you mean 'exclude'\\?\\)"):
        parse_overrides({"exclud": ["x"]})


@pytest.mark.parametrize("parameters, message", [
    ({HUE: {"valid_max": 0.9}}, f"{HUE}: valid_max 0.9 is outside the schema's range [0, 0.5]"),
    ({LR: {"valid_min": -1.0}}, "valid_min -1 is outside the schema's range [0, Infinity]"),
    ({"dataset.segment.batch_size": {"valid_min": 1.5}}, "valid_min must be an integer, got 1.5"),
    ({"model.backbone.type": {"valid_options": ["resnet50"]}},
     "model.backbone.type: 'resnet50' is not one of the schema's options"),
    ({"model.backbone.type": {"option_weights": [1, 2]}}, "option_weights has 2 entries for 13 options"),
    ({"model.backbone.type": {"valid_min": 1}}, "valid_min/valid_max/log apply to numbers, use valid_options"),
    ({LR: {"option_weights": [1]}}, "option_weights need options; give valid_options as well"),
    ({LR: "fast"}, "train.optim.lr: expected a number for a float parameter, got 'fast' (str)"),
    ({HUE: 0.9}, f"{HUE}: 0.9 is outside the schema's range [0, 0.5]"),
    ({"model.backbone.freeze_backbone": 1}, "expected true or false"),
    ({"dataset.segment.batch_size": 2.5}, "expected an integer"),
    ({"train.optim.lrr": {"valid_min": 1e-5}}, "train.optim.lrr: not a parameter of this schema "
                                               "(did you mean 'train.optim.lr'?)"),
    ({"train.optim": {"valid_min": 1e-5}}, "train.optim: is a group of parameters, not a parameter"),
    ({"train.gpu_ids": [0, 1]}, "train.gpu_ids: AutoML is disabled for this parameter in the schema "),
    ({"model.backbone.pretrained_backbone_path": {"valid_min": 1}}, "cannot be searched: type 'string'"),
    ({"dataset.segment.batch_size": {"valid_min": 1, "valid_max": 4, "log": True}}, None),
])
def test_override_errors_against_the_schema(segformer: dict, parameters: dict, message: str | None) -> None:
    overrides = parse_overrides({"parameters": parameters})
    if message is None:
        assert build_space(segformer, overrides)["dataset.segment.batch_size"].log
        return
    with pytest.raises(UserError) as err:
        build_space(segformer, overrides)
    assert message in str(err.value)


def toy_schema(**leaves: dict) -> dict:
    """A minimal TAO-shaped schema with ``leaves`` under ``train``."""
    return {"type": "object", "automl_default_parameters": [f"train.{n}" for n in leaves],
            "automl_disabled_parameters": ["train", "train.off"],
            "properties": {"automl_disabled_parameters": ["train"],
                           "train": {"type": "collection", "properties": {
                               "off": {"type": "float", "default": 0.1, "minimum": 0, "maximum": 1}, **leaves}}}}


def test_range_rules_on_a_toy_schema() -> None:
    inf = math.inf
    space = build_space(toy_schema(
        base_lr={"type": "float", "default": 0.0, "minimum": 0, "maximum": inf},
        gain={"type": "float", "default": 3.0},
        neg={"type": "float", "default": -0.5, "maximum": 1.0},
        blank={"type": "float"},
        layers={"type": "int", "default": 2, "minimum": 1, "maximum": inf},
        shift={"type": "int", "default": -3, "maximum": 10},
        lam={"type": "float", "default": 0.5, "math_cond": "> 0.0 <= 1.0"},
        hw={"type": "int", "default": -1, "minimum": -2, "maximum": 4, "math_cond": "!= 0"},
        name={"type": "string", "default": "a"},
    ))
    assert (space["train.base_lr"].low, space["train.base_lr"].high, space["train.base_lr"].log) == (1e-5, 1e-2, True)
    assert (space["train.gain"].low, space["train.gain"].high) == (0.0, 30.0)
    assert (space["train.neg"].low, space["train.neg"].high) == (-5.0, 1.0)
    assert (space["train.layers"].low, space["train.layers"].high) == (1, 9)
    assert (space["train.shift"].low, space["train.shift"].high) == (-12, 10)
    assert (space["train.lam"].low, space["train.lam"].high) == (0.0, 1.0)
    assert space["train.lam"].problem(0.0) and space["train.lam"].problem(1.0) is None
    assert space.skipped == {"train.blank": "no bounds and no default to derive a range from",
                             "train.hw": "math_cond '!= 0' is not supported",
                             "train.name": "type 'string' cannot be searched (only float, int, bool, categorical, "
                                           "ordered_int); give valid_options to search it"}
    toy = toy_schema(name={"type": "string", "default": "a"})
    assert space_with(toy, {"train.name": {"valid_options": ["a", "b"]}})["train.name"].choices == ("a", "b")
    with pytest.raises(UserError, match=r"train.off: AutoML is disabled .*\(automl_disabled_parameters\)"):
        space_with(toy, {"train.off": 0.5})


def test_disabled_by_automl_enabled_false() -> None:
    with pytest.raises(UserError, match=r"train.optm_betas: AutoML is disabled .*\(automl_enabled: false\)"):
        space_with(schema_of("tao-finetune-cosmos-reason"), {"train.optm_betas": [0.9, 0.99]})


def test_unknown_names_in_only_and_exclude(segformer: dict) -> None:
    with pytest.raises(UserError, match="did you mean 'train.optim.momentum'"):
        space_with(segformer, only=["train.optim.momentun"])
    with pytest.raises(UserError, match="not a parameter of this schema"):
        space_with(segformer, exclude=["nope"])
    with pytest.raises(UserError, match="both excluded and overridden"):
        space_with(segformer, {LR: 1e-4}, exclude=[LR])
    with pytest.raises(UserError, match="cannot be searched"):
        build_space(segformer, parameters=["model.backbone.pretrained_backbone_path"])


# --- conditions ----------------------------------------------------------------------------


def test_greater_than_parent_holds_in_every_suggestion() -> None:
    space = build_space(schema_of("tao-train-deformable-detr"))
    names = space.names()
    assert names.index(CROP_MIN) < names.index(CROP_MAX)  # parents first
    assert space[CROP_MIN].high == 1332  # capped below the child's maximum 1333
    for values in samples(space, 200):
        assert values[CROP_MAX] > values[CROP_MIN]
        space.validate(values)


def test_tpe_copes_with_the_moving_child_range() -> None:
    space = space_with(schema_of("tao-train-deformable-detr"), only=[CROP_MIN, CROP_MAX])
    for values in samples(space, 40, optuna.samplers.TPESampler(seed=1, n_startup_trials=10)):
        assert values[CROP_MAX] > values[CROP_MIN]


def test_condition_against_pinned_or_default_parent() -> None:
    schema = schema_of("tao-train-deformable-detr")
    pinned = space_with(schema, {CROP_MIN: 1000}, only=[CROP_MAX])
    assert all(v[CROP_MAX] > 1000 for v in samples(pinned, 50))
    alone = space_with(schema, only=[CROP_MAX])
    assert alone.context == {CROP_MIN: 384}  # the schema default stands in for the template value
    assert all(v[CROP_MAX] > 384 and CROP_MIN not in v for v in samples(alone, 50))
    with pytest.raises(UserError, match=f"{CROP_MAX}: math_cond '> depends_on' cannot hold with {CROP_MIN} = 384"):
        space_with(schema, {CROP_MAX: {"valid_min": 100, "valid_max": 300}}, only=[CROP_MAX])
    assert space_with(schema, {CROP_MAX: {"valid_max": 300}})[CROP_MIN].high == 299
    with pytest.raises(UserError, match=f"{CROP_MIN}: no value in its range leaves {CROP_MAX}"):
        space_with(schema, {CROP_MIN: {"valid_min": 1300, "valid_max": 1333}, CROP_MAX: {"valid_max": 1200}})
    assert space_with(schema, {CROP_MAX: 700})[CROP_MIN].high == 699  # a pinned child bounds its parent


def test_cap_powers_and_multiples() -> None:
    cosmos = schema_of("tao-finetune-cosmos-reason")
    space = build_space(cosmos, parameters=["train.epoch", "train.optm_warmup_epochs", "policy.lora.r"])
    drawn = samples(space, 200)
    for values in drawn:
        assert values["train.optm_warmup_epochs"] <= values["train.epoch"] / 2
        assert values["policy.lora.r"] in (1, 2, 4, 8, 16, 32, 64, 128, 256)
        space.validate(values)
    assert len({v["policy.lora.r"] for v in drawn}) == 9
    hidden = build_space(schema_of("tao-train-mask2former"))["model.mask_former.hidden_dim"]
    assert {hidden.nearest(v) % 8 for v in (64, 100, 1000, 5000)} == {0}
    space = build_space(schema_of("tao-train-mask2former"))
    assert all(v["model.mask_former.hidden_dim"] % 8 == 0 for v in samples(space, 50))


def test_option_weights_shape_the_draws() -> None:
    space = build_space(schema_of("tao-finetune-cosmos-reason"), parameters=["train.optm_decay_type"])
    param = space["train.optm_decay_type"]
    assert param.choices == ("linear", "sqrt", "cosine", "none")
    assert param.weights == pytest.approx((0.1, 0.1, 0.4, 0.4))
    counts = Counter(v["train.optm_decay_type"] for v in samples(space, 600))
    for choice, weight in zip(param.choices, param.weights):
        assert counts[choice] / 600 == pytest.approx(weight, abs=0.05)


def test_draws_reproduce_every_configuration() -> None:
    """``draws`` inverts ``suggest`` (weighted categoricals draw a quantile, powers an exponent):
    a configuration re-proposed from its raw draws is the same configuration (resume replays)."""
    for skill, names in (("tao-finetune-cosmos-reason", ["train.epoch", "train.optm_warmup_epochs",
                                                          "policy.lora.r", "train.optm_decay_type"]),
                         ("tao-train-segformer", None)):
        space = build_space(schema_of(skill), parameters=names) if names else build_space(schema_of(skill))
        for values in samples(space, 60):
            assert space.suggest(optuna.trial.FixedTrial(space.draws(values))) == values
    param = build_space(schema_of("tao-finetune-cosmos-reason"),
                        parameters=["policy.lora.r"])["policy.lora.r"]
    with pytest.raises(ValueError, match="not a power of 2"):
        param.draw(3)


def test_exclusive_lower_bound() -> None:
    space = build_space(schema_of("tao-train-deformable-detr"))
    momentum = space["train.optim.momentum"]
    assert (momentum.low, momentum.math_cond) == (0.0, "> 0.0")
    assert momentum.problem(0.0) is not None and momentum.problem(1e-9) is None
    assert space.clip("train.optim.momentum", -3.0) > 0.0
    assert momentum.row()["range"] == "[0, 1], > 0"


# --- values: types, validate, clip, json, rows -------------------------------------------------


def test_suggestions_are_plain_python(segformer: dict) -> None:
    space = space_with(segformer, {"dataset.segment.batch_size": {"valid_min": 1, "valid_max": 8}})
    for values in samples(space, 20, optuna.samplers.TPESampler(seed=3, n_startup_trials=5)):
        assert type(values["model.backbone.freeze_backbone"]) is bool
        assert type(values["dataset.segment.batch_size"]) is int
        assert type(values[LR]) is float
        space.validate(values)


def test_validate_rejects(segformer: dict) -> None:
    space = space_with(segformer, {"train.optim.momentum": 0.9})
    good = samples(space, 1)[0]
    space.validate(good)
    for change, message in [
        ({LR: 1.0}, "train.optim.lr: 1 is outside"),
        ({LR: "x"}, "is not a finite float"),
        ({"model.backbone.freeze_backbone": 1}, "is not one of [True, False]"),
        ({"train.optim.momentum": 0.5}, "pinned to 0.9"),
        ({"nope": 1}, "not in the search space: nope"),
    ]:
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            space.validate({**good, **change})
    missing = dict(good)
    del missing[HUE]
    with pytest.raises(ValueError, match=f"{HUE}: missing"):
        space.validate(missing)


def test_clip_keeps_bounds_and_types() -> None:
    det = build_space(schema_of("tao-train-deformable-detr"))
    assert det.clip(LR, 5.0) == det[LR].high
    assert det.clip("model.num_queries", 317.6) == 318
    assert type(det.clip("model.num_queries", 5000)) is int and det.clip("model.num_queries", 5000) == 900
    assert det.clip(CROP_MAX, 500, others={CROP_MIN: 1000}) == 1001
    cosmos = build_space(schema_of("tao-finetune-cosmos-reason"))
    assert cosmos.clip("policy.lora.r", 100) == 128
    assert cosmos.clip("train.optm_decay_type", "cosine") == "cosine"
    with pytest.raises(ValueError):
        cosmos.clip("train.optm_decay_type", "step")
    weighted = Param("x", "categorical", choices=(256, 512, 768))
    assert weighted.nearest(600) == 512


def test_json_round_trip_keeps_the_exact_space() -> None:
    space = space_with(schema_of("tao-finetune-cosmos-reason"), {"train.epoch": 5},
                       only=["train.optm_decay_type", "train.optm_warmup_epochs", "policy.lora.r"])
    data = json.loads(json.dumps(space.to_json()))
    restored = SearchSpace.from_json(data)
    assert restored == space
    assert restored["train.optm_decay_type"].weights == space["train.optm_decay_type"].weights
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    other = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    assert space.suggest(study.ask()) == restored.suggest(other.ask())


def test_rows_show_every_parameter_once(segformer: dict) -> None:
    space = space_with(segformer, {"train.optim.momentum": 0.95})
    rows = space.rows()
    assert [r["name"] for r in rows if r["status"] == "search"] == space.names()
    assert {r["name"] for r in rows if r["status"] == "pinned"} == {"train.optim.momentum"}
    assert all(set(r) == {"name", "status", "type", "range", "scale", "default", "source"} for r in rows)
    lr = next(r for r in rows if r["name"] == LR)
    assert (lr["scale"], lr["range"], lr["default"]) == ("log", "[6e-07, 0.0006]", 6e-05)
    freeze = next(r for r in rows if r["name"] == "model.backbone.freeze_backbone")
    assert (freeze["type"], freeze["range"]) == ("bool", "{True, False}")


def test_space_overrides_model_validates_directly() -> None:
    overrides = SpaceOverrides(parameters={LR: {"valid_min": 1e-5}}, exclude=[HUE])
    assert overrides.parameters[LR].valid_min == 1e-5
    assert not overrides.parameters[LR].pins
