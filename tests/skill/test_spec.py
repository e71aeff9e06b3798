from pathlib import Path

import pytest

from automl.errors import UserError
from automl.skill.spec import SpecBuilder, flatten, get_dotted, parse_assignments

TEMPLATE = {"results_dir": "", "train": {"num_epochs": 10, "checkpoint_interval": 5,
                                          "validation_interval": 2, "optim": {"lr": 1e-4},
                                          "resume_training_checkpoint_path": "",
                                          "tensorboard": {"enabled": True}},
            "dataset": {"segment": {"batch_size": 8, "root_dir": "???"}},
            "quantize": {"backend_kwargs": {}}}


def builder(**overrides):
    return SpecBuilder(TEMPLATE, [], {"batch_size": "dataset.segment.batch_size"}, overrides)


def test_overrides_values_and_engine_keys(tmp_path: Path):
    b = builder(batch_size=4)
    spec = b.build({"train.optim.lr": 1e-3}, tmp_path / "r", epochs=3,
                   resume_checkpoint=tmp_path / "m.pth")
    assert get_dotted(spec, "dataset.segment.batch_size") == 4
    assert get_dotted(spec, "train.optim.lr") == 1e-3
    assert spec["results_dir"] == str(tmp_path / "r")
    assert get_dotted(spec, "train.num_epochs") == 3
    assert get_dotted(spec, "train.resume_training_checkpoint_path") == str(tmp_path / "m.pth")
    # TAO asserts interval <= num_epochs: clamped to the trial's budget.
    assert get_dotted(spec, "train.checkpoint_interval") == 3
    assert get_dotted(spec, "train.validation_interval") == 2
    assert get_dotted(spec, "train.tensorboard.enabled") is False
    assert TEMPLATE["train"]["num_epochs"] == 10  # template untouched


def test_interval_from_algorithm(tmp_path: Path):
    spec = builder().build({}, tmp_path, epochs=9, interval=3)
    assert get_dotted(spec, "train.checkpoint_interval") == 3


def test_unknown_key_suggests():
    with pytest.raises(UserError, match="did you mean 'train.optim.lr'"):
        builder(**{"train.optim.lrr": 1})


def test_engine_owned_keys_rejected():
    with pytest.raises(UserError, match="managed by automl"):
        builder(results_dir="../../etc")


def test_free_form_collection_accepts_nested_keys():
    assert builder(**{"quantize.backend_kwargs.foo": 1}).overrides == {"quantize.backend_kwargs.foo": 1}


def test_parse_assignments():
    assert parse_assignments(["a.b=1e-4", "c=true", "d=[1, 2]", "e=text"]) == \
        {"a.b": 1e-4, "c": True, "d": [1, 2], "e": "text"}
    with pytest.raises(UserError, match="KEY=VALUE"):
        parse_assignments(["novalue"])


def test_flatten():
    assert flatten({"a": {"b": 1, "c": [1]}, "d": {}}) == {"a.b": 1, "a.c": [1], "d": {}}


# -- Weights & Biases: TAO's templates turn it on; trials get it off unless the user sets it


WANDB_TEMPLATE = {**TEMPLATE, "wandb": {"enable": True, "project": "TAO Toolkit"}}


def test_wandb_is_off_unless_the_user_sets_it(tmp_path: Path):
    b = SpecBuilder(WANDB_TEMPLATE, [], {}, {})
    spec = b.build({}, tmp_path, epochs=1)
    assert spec["wandb"] == {"enable": False, "project": "TAO Toolkit"}
    assert WANDB_TEMPLATE["wandb"]["enable"] is True  # template untouched
    (note,) = b.notes()
    assert "wandb.enable=true" in note and "Weights & Biases" in note


@pytest.mark.parametrize("value", [True, False])
def test_wandb_explicit_set_wins(tmp_path: Path, value: bool):
    b = SpecBuilder(WANDB_TEMPLATE, [], {}, {"wandb.enable": value})
    assert b.build({}, tmp_path, epochs=1)["wandb"]["enable"] is value
    assert b.notes() == []  # the user decided: nothing to say


def test_no_wandb_section_no_change(tmp_path: Path):
    b = builder()
    assert "wandb" not in b.build({}, tmp_path, epochs=1) and b.notes() == []


def test_wandb_in_tao_segformer_template(tmp_path: Path):
    from automl.skill.schema import iter_leaves
    from automl.skill.folder import SkillDir
    from tests.helpers.skills import shared_tao

    skill = SkillDir.load(shared_tao() / "tao-train-segformer")
    template = skill.template("train")
    assert template["wandb"]["enable"] is True  # what TAO ships
    known = [leaf.name for leaf in iter_leaves(skill.schema)]
    off = SpecBuilder(template, known, skill.shorthand(), {}).build({}, tmp_path, epochs=1)
    assert off["wandb"]["enable"] is False
    on = SpecBuilder(template, known, skill.shorthand(), parse_assignments(["wandb.enable=true"]))
    assert on.build({}, tmp_path, epochs=1)["wandb"]["enable"] is True
