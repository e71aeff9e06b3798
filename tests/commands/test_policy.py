"""``automl_policy`` as the TAO skills define it (their SKILL.md "Train Action Policy").

``on`` by default (search); ``off`` for one run (``--policy off``, ``automl_policy: off`` in a
study file) is one plain training with the spec template and the overrides, which still writes
best_rec.json and can be handed off. A model whose ``automl_enabled`` is false is refused ("not
enabled"), and so is one whose train schema or template is not packaged ("enabled but not
runnable", naming the file): tests/test_bad_inputs.py and tests/skill/test_skill.py.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from automl.cli import build_parser, main
from automl.commands.run import settings_from_args
from automl.errors import UserError
from automl.results.best import read_best_rec
from automl.results.records import read_history
from automl.run.engine import DEFAULT_MAX_EPOCHS, prepare
from tests.helpers.skills import (
    FAKE_TEMPLATE,
    make_fake_skill,
    segformer_shim,
    shared_tao,
)


def prepared_for(*argv: str):
    """What ``automl run ARGV`` prepares (validated, workspace created, nothing launched)."""
    return prepare(settings_from_args(build_parser().parse_args(["run", *argv])))


def common(skill: Path, ws: Path) -> list[str]:
    return ["--skill-dir", str(skill), "--workspace", str(ws), "--progress", "none", "--seed", "1"]


# --------------------------------------------------------------------------------------------
# settings


@pytest.mark.parametrize("text, flag, expected", [
    ("automl_policy: off\n", None, "off"),  # YAML 1.1: the boolean false
    ("automl_policy: 'off'\n", None, "off"),
    ("automl_policy: on\n", None, "on"),
    ("algo: bohb\n", None, "on"),  # the default
    ("automl_policy: off\n", "on", "on"),  # the flag wins
    ("automl_policy: on\n", "off", "off"),
    ("automl_policy: auto\n", None, "on"),  # the newer SegFormer skill text's word
    ("algo: bohb\n", "auto", "on"),
])
def test_policy_from_study_and_flag(tmp_path: Path, text: str, flag, expected: str) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(text)
    argv = ["run", "--study", str(study)] + (["--policy", flag] if flag else [])
    assert settings_from_args(build_parser().parse_args(argv)).automl_policy == expected


# --------------------------------------------------------------------------------------------
# what a plain training is


def test_policy_off_is_one_trial_of_the_template_and_overrides(fake_skill, tmp_path) -> None:
    ws = tmp_path / "ws"
    prepared = prepared_for(*common(fake_skill, ws), "--policy", "off", "--algo", "bohb",
                            "--max-recommendations", "9", "--set", "hp.x=0.3",
                            "--set", "fake.epoch_s=0.01")
    settings = prepared.settings
    assert (settings.automl_policy, settings.algo) == ("off", "random")
    assert settings.max_recommendations == 1
    assert settings.fixed_budget and prepared.max_concurrent == 1
    assert prepared.space.params == ()  # nothing searched ...
    assert prepared.space.pinned == {"hp.x": 0.3}  # ... the user's value, exactly
    assert prepared.budget == 3  # the template's num_epochs
    spec = prepared.builder.build({}, tmp_path / "r", prepared.budget)
    assert spec["hp"] == {"x": 0.3, "y": 1, "c": "a"} and spec["fake"]["epoch_s"] == 0.01
    recorded = yaml.safe_load((ws / "experiment.yaml").read_text())
    assert recorded["automl_policy"] == "off" and recorded["settings"]["automl_policy"] == "off"
    assert recorded["max_recommendations"] == 1 and recorded["space"]["params"] == []


def test_plain_training_trains_the_spec_num_epochs(tmp_path) -> None:
    """A search caps R at TAO's 27; a plain training is TAO's own run: all of num_epochs."""
    template = {**FAKE_TEMPLATE, "train": {**FAKE_TEMPLATE["train"], "num_epochs": 40}}
    skill = make_fake_skill(tmp_path / "skill", template)
    off = prepared_for(*common(skill, tmp_path / "off"), "--policy", "off")
    on = prepared_for(*common(skill, tmp_path / "on"))
    assert (off.budget, on.budget) == (40, DEFAULT_MAX_EPOCHS)
    assert prepared_for(*common(skill, tmp_path / "r"), "--policy", "off",
                        "--max-epochs", "2").budget == 2


def test_policy_off_needs_no_searchable_parameter(tmp_path) -> None:
    """Everything pinned is an empty search (refused with policy on), a valid plain training."""
    skill = make_fake_skill(tmp_path / "skill")
    pins = ["--pin", "hp.x=0.1", "--pin", "hp.y=2", "--pin", "hp.c=b"]
    with pytest.raises(UserError, match="search space is empty"):
        prepared_for(*common(skill, tmp_path / "on"), *pins)
    plain = prepared_for(*common(skill, tmp_path / "off"), "--policy", "off", *pins)
    assert plain.space.pinned == {"hp.x": 0.1, "hp.y": 2, "hp.c": "b"}


# --------------------------------------------------------------------------------------------
# the real TAO skills


def _binary_dataset(root: Path) -> Path:
    """TAO's layout with 0/255 binary masks (the template's ``label_transform: norm``)."""
    mask = np.zeros((8, 8), np.uint8)
    mask[:, 4:] = 255
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "images" / split / "0.png")
        Image.fromarray(mask).save(root / "masks" / split / "0.png")
    return root


def test_real_segformer_skill_policy_off(tmp_path, monkeypatch) -> None:
    """The real skill folder with its own template: 0/255 masks pass the dataset check (norm),
    no search, TAO's num_epochs, Weights & Biases off with its note."""
    skill = shared_tao() / "tao-train-segformer"
    monkeypatch.setenv("PATH", os.pathsep.join([str(segformer_shim(tmp_path / "bin")),
                                               os.environ["PATH"]]))
    prepared = prepared_for(*common(skill, tmp_path / "ws"), "--policy", "off",
                            "--root-dir", str(_binary_dataset(tmp_path / "data")))
    assert prepared.space.params == () and prepared.settings.max_recommendations == 1
    template = yaml.safe_load((skill / "references" / "spec_template_train.yaml").read_text())
    assert prepared.budget == template["train"]["num_epochs"]
    spec = prepared.builder.build({}, tmp_path / "r", prepared.budget)
    assert spec["wandb"]["enable"] is False and template["wandb"]["enable"] is True
    assert spec["model"] == template["model"]  # the template, not a sampled configuration
    assert len(prepared.builder.notes()) == 1


@pytest.mark.parametrize("policy", ["on", "off"])
def test_real_skill_with_automl_disabled_is_refused(tmp_path, capsys, policy) -> None:
    skill = Path(shutil.copytree(shared_tao() / "tao-train-dino", tmp_path / "tao-train-dino"))
    info = skill / "references" / "skill_info.yaml"
    info.write_text(info.read_text().replace("automl_enabled: true", "automl_enabled: false"))
    code = main(["run", *common(skill, tmp_path / "ws"), "--policy", policy])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "ws").exists()
    assert "tao-train-dino: AutoML is not enabled for this model" in err


def test_every_real_skill_is_runnable_with_policy_on() -> None:
    """All shipped skills have automl_enabled: true and both generated files."""
    from automl.skill.folder import SkillDir

    folders = sorted(shared_tao().glob("tao-*"))
    assert folders
    for folder in folders:
        skill = SkillDir.load(folder)
        assert skill.info.get("automl_enabled") is True and skill.template_path().is_file()


# --------------------------------------------------------------------------------------------
# end to end on the fake trainer: best_rec.json and hand-off


@pytest.mark.usefixtures("ray_session")
def test_plain_training_writes_best_rec_and_hands_off(tmp_path, capsys) -> None:
    from tests.commands.test_handoff import make_dataset, make_handoff_skill

    skill = make_handoff_skill(tmp_path / "skill")
    data = make_dataset(tmp_path / "data")
    ws = tmp_path / "ws"
    code = main(["run", *common(skill, ws), "--root-dir", str(data), "--policy", "off",
                 "--max-epochs", "2", "--set", "hp.x=0.3"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "algorithm: none (automl_policy: off)" in out and "trials: 1 " in out
    (record,) = read_history(ws / "history.json")[1]
    assert record.status == "completed"
    spec = yaml.safe_load((ws / "trials" / record.rec_id / "spec.yaml").read_text())
    assert spec["hp"] == {"x": 0.3, "y": 1, "c": "a"} and spec["train"]["num_epochs"] == 2
    doc = read_best_rec(ws / "best_rec.json")
    assert [r["rec_id"] for r in doc["all_recs"]] == [record.rec_id]
    assert doc["best"]["observed_budget"] == 2 and Path(doc["best"]["checkpoint_uri"]).is_file()
    code = main(["handoff", "evaluate", str(ws), "--run"])
    out = capsys.readouterr().out
    assert code == 0, out
    kpis = [json.loads(line) for line in (ws / "handoff" / "evaluate" / "results" / "evaluate"
                                          / "status.json").read_text().splitlines()]
    assert abs(kpis[-1]["kpi"]["val_miou"] - doc["best"]["score"]) < 1e-6
