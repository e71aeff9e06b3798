"""SkillDir on the real TAO skill folders, and on broken copies of SegFormer's in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from automl.errors import UserError
from automl.skill.folder import SkillDir

TAO = Path(__file__).resolve().parents[3] / "shared" / "tao"
NO_TAO = "../shared/tao not present: the real TAO skill folders are test data beside the checkout"
SKILLS = sorted(p.name for p in TAO.glob("tao-*")) if TAO.is_dir() else []


def skill_path(name: str) -> Path:
    if not TAO.is_dir():
        pytest.skip(NO_TAO)
    return TAO / name


@pytest.fixture
def segformer_copy(tmp_path: Path) -> Path:
    """A writable copy of the SegFormer skill folder, to break."""
    return Path(shutil.copytree(skill_path("tao-train-segformer"), tmp_path / "tao-train-segformer"))


def test_segformer_skill() -> None:
    skill = SkillDir.load(skill_path("tao-train-segformer"))
    assert skill.name == "tao-train-segformer"
    assert skill.network_arch == "segformer"
    assert skill.container_image == "nvcr.io/nvidia/tao/tao-toolkit:7.1.0-pyt"
    assert skill.actions() == ["train", "quantize", "evaluate", "export", "inference"]
    assert skill.shorthand()["learning_rate"] == "train.optim.lr"
    assert "train.optim.lr" in skill.schema["automl_default_parameters"]
    train = skill.template("train")
    assert {"train", "dataset", "model"} <= set(train)
    assert "evaluate" in skill.template("evaluate")


@pytest.mark.parametrize("name", SKILLS or [pytest.param("", marks=pytest.mark.skip(reason=NO_TAO))])
def test_every_real_skill_loads_with_its_train_template(name: str) -> None:
    skill = SkillDir.load(skill_path(name))
    assert skill.name
    assert skill.network_arch
    assert isinstance(skill.template("train"), dict)


def test_template_paths_relative_to_the_skill_root_also_resolve() -> None:
    # nv-tesseract writes spec_templates as "references/..." rather than "../references/..."
    skill = SkillDir.load(skill_path("tao-finetune-nv-tesseract-forecasting"))
    assert skill.info["spec_templates"]["train"] == "references/spec_template_train.yaml"
    assert skill.template("train")


def test_missing_template_lists_the_actions() -> None:
    skill = SkillDir.load(skill_path("tao-train-dino"))
    with pytest.raises(UserError, match=r"no spec template for action 'evaluate'.*actions: train, distill"):
        skill.template("evaluate")


def test_command_substitutes_the_path_as_one_argument() -> None:
    skill = SkillDir.load(skill_path("tao-train-segformer"))
    path = "/tmp/my specs/it's; rm -rf $HOME.yaml"
    assert skill.command("train", path) == ["segformer", "train", "-e", path]
    assert skill.command("export", "x.yaml") == ["segformer", "export", "-e", "x.yaml"]
    with pytest.raises(UserError, match="no 'prune' action"):
        skill.command("prune", "x.yaml")


def test_bundled_skill_runs_this_installations_trainer() -> None:
    """A stale `segformer` on PATH (another interpreter's script) must not replace ours."""
    import subprocess
    import sys

    from automl.skill.folder import bundled_skill_dir

    skill = SkillDir.load(bundled_skill_dir())
    argv = skill.command("train", "s.yaml")
    assert argv == [sys.executable, "-m", "segformer_trainer.cli", "train", "-e", "s.yaml"]
    shown = subprocess.run([*argv[:3], "--help"], capture_output=True, text=True, check=True)
    assert "train" in shown.stdout
    # In a container the image's own command runs (a TAO skill keeps its command: test above).
    assert skill.command("train", "s.yaml", local=False)[0] == "segformer"


def test_command_keeps_flag_prefixes_and_refuses_shell_scripts() -> None:
    cosmos = SkillDir.load(skill_path("tao-finetune-cosmos-reason"))
    assert cosmos.command("evaluate", "a b.toml") == ["cosmos-rl-evaluate", "--config", "a b.toml"]
    with pytest.raises(UserError, match="actions.inference.command is a shell script"):
        cosmos.command("inference", "c.toml")


def test_inline_placeholder_stays_one_argument(segformer_copy: Path) -> None:
    info = segformer_copy / "references" / "skill_info.yaml"
    info.write_text(info.read_text().replace("segformer train -e {config_path}",
                                             "python -m trainer --spec={config_path} 'two words'"))
    skill = SkillDir.load(segformer_copy)
    assert skill.command("train", "s p.yaml") == ["python", "-m", "trainer", "--spec=s p.yaml", "two words"]


def test_action_without_command_loads_but_cannot_launch(segformer_copy: Path) -> None:
    info = segformer_copy / "references" / "skill_info.yaml"
    info.write_text("actions:\n  train:\n    command: t -e {config_path}\n  export:\n    mode: config\n")
    skill = SkillDir.load(segformer_copy)
    with pytest.raises(UserError, match="actions.export.command is missing or empty"):
        skill.command("export", "x.yaml")


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="skill directory not found"):
        SkillDir.load(tmp_path / "nope")


def test_folder_without_skill_info(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="skill_info.yaml: not found"):
        SkillDir.load(tmp_path)


def test_invalid_schema_json_reports_line(segformer_copy: Path) -> None:
    schema = segformer_copy / "schemas" / "train.schema.json"
    lines = schema.read_text().splitlines()
    lines[4] = lines[4] + " oops"
    schema.write_text("\n".join(lines))
    with pytest.raises(UserError, match=r"train\.schema\.json:5:\d+: invalid JSON"):
        SkillDir.load(segformer_copy)


@pytest.mark.parametrize("missing", ["schemas/train.schema.json",
                                     "references/spec_template_train.yaml"])
def test_enabled_but_not_runnable(segformer_copy: Path, missing: str) -> None:
    """The skill bank's rule: AutoML needs both the train schema and the train template; a
    model whose metadata says enabled but lacks one is 'enabled but not runnable', naming it."""
    (segformer_copy / missing).unlink()
    with pytest.raises(UserError) as err:
        SkillDir.load(segformer_copy)
    assert str(err.value) == (
        f"tao-train-segformer: AutoML is enabled but not runnable for this model: {missing} is "
        f"missing (the train schema and spec template must be generated and packaged in "
        f"{segformer_copy})")


def test_template_missing_where_skill_info_points(segformer_copy: Path) -> None:
    info = segformer_copy / "references" / "skill_info.yaml"
    info.write_text(info.read_text().replace("train: ../references/spec_template_train.yaml",
                                             "train: ../references/elsewhere.yaml"))
    with pytest.raises(UserError, match=r"enabled but not runnable for this model: "
                                        r"references/elsewhere\.yaml is missing"):
        SkillDir.load(segformer_copy)


def test_invalid_skill_info_yaml_reports_line(segformer_copy: Path) -> None:
    info = segformer_copy / "references" / "skill_info.yaml"
    info.write_text("name: x\n  bad: indent\n")
    with pytest.raises(UserError, match=r"skill_info\.yaml:2:\d+: invalid YAML"):
        SkillDir.load(segformer_copy)


def test_skill_info_with_wrong_shapes(segformer_copy: Path) -> None:
    info = segformer_copy / "references" / "skill_info.yaml"
    info.write_text("- a list\n")
    with pytest.raises(UserError, match="expected a mapping"):
        SkillDir.load(segformer_copy)
    info.write_text("name: x\nautoml_enabled: maybe\nactions: {train: {command: t}}\n")
    with pytest.raises(UserError, match="automl_enabled"):
        SkillDir.load(segformer_copy)


def test_automl_disabled_skill(segformer_copy: Path) -> None:
    info = segformer_copy / "references" / "skill_info.yaml"
    info.write_text(info.read_text().replace("automl_enabled: true", "automl_enabled: false"))
    with pytest.raises(UserError) as err:
        SkillDir.load(segformer_copy)
    assert str(err.value) == ("tao-train-segformer: AutoML is not enabled for this model "
                              "(automl_enabled: false in references/skill_info.yaml); train it "
                              "with its own command, outside automl")


def test_skill_without_train_action(segformer_copy: Path) -> None:
    info = segformer_copy / "references" / "skill_info.yaml"
    info.write_text("name: odd\nactions:\n  evaluate:\n    command: odd evaluate -e {config_path}\n")
    with pytest.raises(UserError, match=r"odd: no 'train' action .*\(actions: evaluate\)"):
        SkillDir.load(segformer_copy)
