"""List-typed schema parameters, through the real path: a real TAO skill folder's schema → the
search space → configurations sampled by Optuna (and by DEHB, PBT and BFBO's own encodings) →
the spec each trial writes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from automl.errors import UserError
from automl.skill.folder import SkillDir
from automl.skill.schema import iter_leaves
from automl.skill.spec import SpecBuilder, flatten, get_dotted, write_spec
from automl.space.build import build_space
from automl.space.lists import Elements, Steps, Subset, Tied, assemble, steps_at
from automl.space.overrides import overrides_from_flags, parse_overrides
from automl.space.params import SearchSpace
from automl.space.user_space import build_user_space, space_for_cli
from automl.study import Settings
from tests.helpers.skills import shared_tao

optuna.logging.set_verbosity(optuna.logging.WARNING)

BETAS = "train.optim.betas"
KERNEL = "dataset.gaussian_blur.kernel"
MODULES = "policy.lora.target_modules"


def skill(name: str) -> SkillDir:
    return SkillDir.load(shared_tao() / name)


def enabled(schema: dict, name: str) -> dict:
    """A copy of a real schema with AutoML turned on for ``name`` and ``name`` in its default
    parameters (TAO ships these lists disabled for AutoML)."""
    schema = copy.deepcopy(schema)
    node = schema
    for part in name.split("."):
        node = node["properties"][part]
    node["automl_enabled"] = True
    schema["automl_default_parameters"] = [*schema["automl_default_parameters"], name]
    schema["automl_disabled_parameters"] = [n for n in schema.get("automl_disabled_parameters") or []
                                            if n != name]
    return schema


def sampled(space: SearchSpace, n: int, seed: int = 3) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for i in range(n):
        trial = study.ask()
        out.append(space.suggest(trial))
        study.tell(trial, float(i))
    return out


def written(folder: SkillDir, values: dict, epochs: int, tmp_path: Path) -> dict:
    """The spec a trial with ``values`` writes (spec.yaml read back)."""
    builder = SpecBuilder(folder.template("train"), [leaf.name for leaf in iter_leaves(folder.schema)],
                          folder.shorthand())
    spec = builder.build(values, tmp_path / "results", epochs)
    return yaml.safe_load(write_spec(spec, tmp_path / "spec.yaml").read_text())


# --- each rule, schema -> space -> sampled configuration -> spec ------------------------------


def test_betas_each_element_in_taos_range_and_written_as_a_pair(tmp_path: Path) -> None:
    folder = skill("tao-train-image-classification")
    space = build_space(folder.schema)
    (rule,) = space.lists
    assert isinstance(rule, Elements) and rule.name == BETAS
    assert rule.keys == (f"{BETAS}[0]", f"{BETAS}[1]")
    assert [(space[k].low, space[k].high) for k in rule.keys] == [(0.8, 0.95), (0.9, 0.999)]
    assert BETAS in space.spec_keys() and BETAS not in space.names()
    for values in sampled(space, 8):
        space.validate(values)
        betas = get_dotted(written(folder, values, 10, tmp_path), BETAS)
        assert betas == [values[f"{BETAS}[0]"], values[f"{BETAS}[1]"]]
        assert 0.8 <= betas[0] <= 0.95 and 0.9 <= betas[1] <= 0.999


@pytest.mark.parametrize(("name", "key", "template_epochs"), [
    ("tao-train-reid", "train.optim.lr_steps", 10),
    ("tao-train-pointpillars", "train.decay_step_list", 80),
])
def test_step_lists_are_increasing_epochs_inside_each_runs_budget(tmp_path: Path, name: str, key: str,
                                                                  template_epochs: int) -> None:
    folder = skill(name)
    space = build_space(folder.schema)
    (rule,) = space.lists
    assert isinstance(rule, Steps) and rule.name == key
    assert rule.keys == (f"{key}[0].fraction", f"{key}[1].fraction")
    for values in sampled(space, 12):
        for epochs in (1, 2, 3, 9, template_epochs):
            steps = get_dotted(written(folder, values, epochs, tmp_path), key)
            assert all(isinstance(s, int) and 1 <= s < epochs for s in steps)
            assert steps == sorted(set(steps))
            assert len(steps) <= 2 and (epochs < 2 or steps)


def test_step_list_defaults_are_the_schemas_own_fractions() -> None:
    # pointpillars: decay_step_list [35, 45] with num_epochs 80
    space = build_space(skill("tao-train-pointpillars").schema)
    assert [space[k].default for k in space.lists[0].keys] == [35 / 80, 45 / 80]
    assert steps_at([35 / 80, 45 / 80], 80) == [35, 45]
    # reid: lr_steps [40, 70] but num_epochs 10 in the schema: no default fractions to offer
    reid = build_space(skill("tao-train-reid").schema)
    assert [reid[k].default for k in reid.lists[0].keys] == [None, None]


def test_steps_at_rounds_clamps_sorts_and_drops_repeats() -> None:
    assert steps_at([0.7, 0.2], 10) == [2, 7]
    assert steps_at([0.0, 1.0], 10) == [1, 9]
    assert steps_at([0.5, 0.52], 10) == [5]
    assert steps_at([0.5], 1) == []


def test_tied_kernel_stays_square_odd_and_sized_from_the_input(tmp_path: Path) -> None:
    folder = skill("tao-train-metric-learning-recognition")
    space = build_space(enabled(folder.schema, KERNEL))
    (rule,) = space.lists
    assert isinstance(rule, Tied) and rule.keys == (f"{KERNEL}[0,1]",)
    # model.input_height 224: TAO's [224/100, 224/10]; odd, as the default 15
    assert space[rule.keys[0]].choices == (3, 5, 7, 9, 11, 13, 15, 17, 19, 21)
    row = next(r for r in space.rows() if r["name"] == KERNEL)
    assert row["type"] == "list (tied)" and "repeated ×2" in row["range"] and "model.input_height" in row["source"]
    for values in sampled(space, 8):
        kernel = get_dotted(written(folder, values, 10, tmp_path), KERNEL)
        assert kernel[0] == kernel[1] == values[rule.keys[0]] and kernel[0] % 2 == 1
    pinned_size = build_space(enabled(folder.schema, KERNEL),
                              parse_overrides({"parameters": {"model.input_height": 512}}))
    assert pinned_size[rule.keys[0]].choices[-1] == 51


def test_subset_keeps_or_drops_each_option(tmp_path: Path) -> None:
    folder = skill("tao-finetune-cosmos-reason")
    space = build_space(enabled(folder.schema, MODULES))
    (rule,) = space.lists
    assert isinstance(rule, Subset) and "attn.qkv" in rule.options
    assert f"{MODULES}{{q_proj}}" in rule.keys and space[f"{MODULES}{{q_proj}}"].default is True
    seen = set()
    for values in sampled(space, 10):
        modules = get_dotted(written(folder, values, 1, tmp_path), MODULES)
        assert modules == [o for o in sorted(rule.options) if values[f"{MODULES}{{{o}}}"]]
        seen.add(tuple(modules))
    assert len(seen) == 10


def test_a_list_no_rule_covers_is_skipped_with_the_reason() -> None:
    schema = enabled(skill("tao-train-image-classification").schema, "train.gpu_ids")
    space = build_space(schema)
    assert "without bounds" in space.skipped["train.gpu_ids"]
    with pytest.raises(UserError, match="train.gpu_ids: cannot be searched: .*valid_min/valid_max"):
        build_space(schema, parameters=["train.gpu_ids"])


# --- automl space, overrides -----------------------------------------------------------------


def test_automl_space_shows_the_list_and_its_rule() -> None:
    space = space_for_cli(skill("tao-train-image-classification"), None, [], [], [])
    rows = {row["name"]: row for row in space.rows()}
    row = rows[BETAS]
    assert (row["status"], row["type"], row["range"]) == ("search", "list (elements)", "[0.8, 0.95] × [0.9, 0.999]")
    assert row["default"] == [0.9, 0.999]
    assert "each element drawn in its own range" in row["source"] and "TAO's betas ranges" in row["source"]
    assert f"{BETAS}[0]" not in rows  # the list is one row


def test_pinning_a_list_writes_it_exactly(tmp_path: Path) -> None:
    folder = skill("tao-train-image-classification")
    space = space_for_cli(folder, None, [], [], [f"{BETAS}=[0.85, 0.99]"])
    assert space.pinned[BETAS] == [0.85, 0.99] and not space.lists
    values = sampled(space, 1)[0]
    assert get_dotted(written(folder, values, 10, tmp_path), BETAS) == [0.85, 0.99]
    # --set on a searched list pins it too, instead of being overwritten by the search
    settings = Settings(skill_dir=folder.path, overrides={BETAS: [0.5, 0.9]})
    builder = SpecBuilder(folder.template("train"), [leaf.name for leaf in iter_leaves(folder.schema)],
                          folder.shorthand(), settings.overrides)
    assert build_user_space(folder, settings, builder).pinned[BETAS] == [0.5, 0.9]
    steps = space_for_cli(skill("tao-train-reid"), None, [], [], ["train.optim.lr_steps=[3, 6, 8]"])
    assert steps.pinned["train.optim.lr_steps"] == [3, 6, 8]


@pytest.mark.parametrize(("skill_name", "pin", "message"), [
    ("tao-train-image-classification", f"{BETAS}=[0.9]", r"not a list of 2 numbers"),
    ("tao-train-image-classification", f"{BETAS}=0.9", r"expected a list"),
    ("tao-train-reid", "train.optim.lr_steps=[70, 40]", r"not strictly increasing"),
    ("tao-train-reid", "train.optim.lr_steps=[0.5]", r"not a list of epochs"),
])
def test_a_pin_of_the_wrong_shape_is_one_line(skill_name: str, pin: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        space_for_cli(skill(skill_name), None, [], [], [pin])


def test_range_and_options_overrides_apply_to_every_element() -> None:
    folder = skill("tao-train-image-classification")
    ranged = space_for_cli(folder, None, [f"{BETAS}=0.85:0.99"], [], [])
    assert [(ranged[k].low, ranged[k].high) for k in ranged.lists[0].keys] == [(0.85, 0.99)] * 2
    assert ranged.lists[0].source == "override"
    options = space_for_cli(folder, None, [], [f"{BETAS}=0.9,0.99,0.999"], [])
    assert {options[k].choices for k in options.lists[0].keys} == {(0.9, 0.99, 0.999)}
    for values in sampled(options, 5):
        assert all(values[k] in (0.9, 0.99, 0.999) for k in options.lists[0].keys)
    with pytest.raises(UserError, match="valid_options of this list are the values of its elements"):
        space_for_cli(folder, None, [], [f"{BETAS}=a,b"], [])


def test_step_list_overrides_are_fractions() -> None:
    folder = skill("tao-train-reid")
    space = space_for_cli(folder, None, ["train.optim.lr_steps=0.5:0.9"], [], [])
    assert {(space[k].low, space[k].high) for k in space.lists[0].keys} == {(0.5, 0.9)}
    with pytest.raises(UserError, match="fractions of num_epochs"):
        space_for_cli(folder, None, ["train.optim.lr_steps=10:20"], [], [])
    with pytest.raises(UserError, match="valid_options do not apply to this list"):
        space_for_cli(folder, None, [], ["train.optim.lr_steps=10,20"], [])


def test_subset_options_override_must_be_schema_options() -> None:
    schema = enabled(skill("tao-finetune-cosmos-reason").schema, MODULES)
    space = build_space(schema, overrides_from_flags(options=[f"{MODULES}=q_proj,v_proj"]))
    assert space.lists[0].options == ("q_proj", "v_proj")
    with pytest.raises(UserError, match="'nope' is not one of the schema's options"):
        build_space(schema, overrides_from_flags(options=[f"{MODULES}=q_proj,nope"]))
    with pytest.raises(UserError, match="valid_min, valid_max do not apply"):
        build_space(schema, overrides_from_flags(ranges=[f"{MODULES}=0:1"]))


# --- every algorithm's encoding, saved spaces ------------------------------------------------


def test_optuna_tpe_round_trip_replays_the_same_configuration() -> None:
    space = build_space(skill("tao-train-image-classification").schema)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1, n_startup_trials=3))
    for i in range(6):
        trial = study.ask()
        values = space.suggest(trial)
        study.tell(trial, values[f"{BETAS}[0]"] + i)
    best = study.best_trial
    again = space.suggest(optuna.trial.FixedTrial(space.draws(best.params)))
    assert again == best.params
    assert assemble(again, 10)[BETAS] == [best.params[f"{BETAS}[0]"], best.params[f"{BETAS}[1]"]]


def test_de_pbt_and_bfbo_encodings_keep_list_elements_valid() -> None:
    from automl.algorithms.bfbo import BatchBOSearcher
    from automl.algorithms.pbt import ClipToSpace, mutations
    from automl.space.codec import Codec

    space = build_space(skill("tao-train-pointpillars").schema)
    keys = space.lists[0].keys
    rng = np.random.default_rng(0)
    for _ in range(5):
        values = Codec(space).decode(rng.random(len(space.params)))
        space.validate(values)
        perturbed = ClipToSpace(space)({**values, keys[0]: 1.7, keys[1]: -0.2})
        assert (perturbed[keys[0]], perturbed[keys[1]]) == (1.0, 0.0)
        space.validate(perturbed)
        assert assemble(perturbed, 80)["train.decay_step_list"] == [1, 79]
    assert set(keys) <= set(mutations(space, seed=0))
    searcher = BatchBOSearcher(space, metric="m", mode="max", seed=0, budget=80, n_initial=2,
                               max_suggestions=4)
    for i in range(4):  # two Sobol points, then the GP's proposals
        config = searcher.suggest(f"t{i}")
        space.validate(config)
        searcher.on_trial_complete(f"t{i}", {"m": config[keys[0]]})


def test_saved_space_round_trips_with_its_lists() -> None:
    space = space_for_cli(skill("tao-train-image-classification"), None, [f"{BETAS}=0.85:0.99"], [], [])
    restored = SearchSpace.from_json(json.loads(json.dumps(space.to_json())))
    assert restored == space and isinstance(restored.lists[0], Elements)
    tied = build_space(enabled(skill("tao-train-metric-learning-recognition").schema, KERNEL))
    subset = build_space(enabled(skill("tao-finetune-cosmos-reason").schema, MODULES))
    for saved in (tied, subset, build_space(skill("tao-train-reid").schema)):
        assert SearchSpace.from_json(json.loads(json.dumps(saved.to_json()))) == saved


def test_assemble_refuses_sub_parameters_that_do_not_fit() -> None:
    assert assemble({"a.b": 1, "x[1]": 2, "x[0]": 3}, 5) == {"a.b": 1, "x": [3, 2]}
    with pytest.raises(ValueError, match="no sub-parameter sets element 1"):
        assemble({"x[0]": 1, "x[2]": 2}, 5)
    with pytest.raises(ValueError, match="different list rules"):
        assemble({"x[0]": 1, "x[1].fraction": 0.5}, 5)


def test_best_rec_reports_the_lists_the_best_trial_wrote(tmp_path: Path) -> None:
    from automl.results.best import best_rec, choose_best
    from automl.results.records import TrialRecord

    space = build_space(skill("tao-train-reid").schema)
    values = sampled(space, 1)[0]
    record = TrialRecord("r1", values, index=1, status="completed", folder=str(tmp_path))
    record.add_result(9, {"val_acc": 0.5})
    doc = best_rec("e", [record], "val_acc", "max", choose_best([record], "val_acc", "max"))
    fractions = [values[key] for key in space.lists[0].keys]
    assert doc["best"]["specs"]["train"]["optim"]["lr_steps"] == steps_at(fractions, 9)


def test_an_experiment_writes_assembled_lists_in_every_trial_spec(tmp_path: Path) -> None:
    """Ray Tune, Optuna, ASHA's promotions and the records carry the sub-parameter keys; every
    trial's spec has the lists, step lists within that run's num_epochs."""
    from automl.cli import main
    from tests.helpers.skills import FAKE_SCHEMA, FAKE_TEMPLATE, make_fake_skill

    template = copy.deepcopy(FAKE_TEMPLATE)
    template["hp"]["betas"] = [0.9, 0.999]
    template["train"]["lr_steps"] = [1, 2]
    folder = make_fake_skill(tmp_path / "skill", template)
    schema = copy.deepcopy(FAKE_SCHEMA)
    schema["automl_default_parameters"] += ["hp.betas", "train.lr_steps"]
    schema["properties"]["hp"]["properties"]["betas"] = {"type": "list", "default": [0.9, 0.999]}
    schema["properties"]["train"]["properties"]["lr_steps"] = {"type": "list_2", "default": [1, 2]}
    (folder / "schemas" / "train.schema.json").write_text(json.dumps(schema))
    workspace = tmp_path / "ws"
    assert main(["run", "--skill-dir", str(folder), "--workspace", str(workspace), "--progress", "none",
                 "--algo", "asha", "--max-recommendations", "3", "--max-epochs", "3", "--seed", "2"]) == 0
    specs = [yaml.safe_load(p.read_text()) for p in workspace.glob("trials/*/spec_segment_*.yaml")]
    assert len(specs) >= 4  # 3 trials, one promoted at least once
    for spec in specs:
        betas, steps, epochs = spec["hp"]["betas"], spec["train"]["lr_steps"], spec["train"]["num_epochs"]
        assert len(betas) == 2 and 0.8 <= betas[0] <= 0.95 and 0.9 <= betas[1] <= 0.999
        assert steps == sorted(set(steps)) and all(isinstance(s, int) and 1 <= s < epochs for s in steps)
        assert not [key for key in flatten(spec) if "[" in key or "{" in key]  # no sub-parameter left
    best = json.loads((workspace / "best_rec.json").read_text())["best"]["specs"]
    assert len(best["hp"]["betas"]) == 2 and isinstance(best["train"]["lr_steps"], list)


def test_a_range_per_element_as_tao_writes_betas_bounds(tmp_path: Path) -> None:
    folder = skill("tao-train-image-classification")
    space = space_for_cli(folder, None, [f"{BETAS}=[0.85, 0.99]:[0.9, 0.9999]"], [], [])
    assert [(space[k].low, space[k].high) for k in space.lists[0].keys] == [(0.85, 0.9), (0.99, 0.9999)]
    for values in sampled(space, 4):
        betas = get_dotted(written(folder, values, 10, tmp_path), BETAS)
        assert 0.85 <= betas[0] <= 0.9 and 0.99 <= betas[1] <= 0.9999
    with pytest.raises(UserError, match="valid_min has 3 bounds for 2 elements"):
        space_for_cli(folder, None, [f"{BETAS}=[0.8, 0.8, 0.8]:[0.9, 0.99, 0.999]"], [], [])
    with pytest.raises(UserError, match="valid_min has 2 bounds, valid_max 3"):
        space_for_cli(folder, None, [f"{BETAS}=[0.8, 0.9]:[0.9, 0.99, 0.999]"], [], [])
    with pytest.raises(UserError, match=r"valid_min 0.99 > valid_max 0.9; swap"):
        space_for_cli(folder, None, [f"{BETAS}=[0.99, 0.9]:[0.9, 0.999]"], [], [])
    with pytest.raises(UserError, match="train.optim.lr: valid_min/valid_max lists give one bound per element"):
        space_for_cli(folder, None, ["train.optim.lr=[0.1]:[0.2]"], [], [])
    with pytest.raises(UserError, match="not lists"):
        space_for_cli(skill("tao-train-reid"), None, ["train.optim.lr_steps=[0.1, 0.2]:[0.5, 0.6]"], [], [])
