"""The top-level ``schemas/``: generated files are current, the engine validates against them,
and a non-editable wheel install still finds them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import jsonschema
import pytest
import yaml

from automl import json_schemas, validation
from automl.errors import UserError
from automl.results.records import TrialRecord, read_history, write_history
from automl.space.overrides import load_overrides
from automl.study import load_study

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"


def test_generated_schemas_are_current() -> None:
    for rel, text in json_schemas.generated().items():
        path = SCHEMAS / rel
        assert path.is_file() and path.read_text(encoding="utf-8") == text, \
            f"{path} is stale: run python -m automl.json_schemas schemas"


def test_segformer_schemas_are_the_bundled_skills() -> None:
    """schemas/segformer/ and the bundled skill's schemas/ are the same generated files (the
    skill folder must stay complete for the engine; both are checked against the generator)."""
    bundled = REPO / "src" / "segformer_trainer" / "skill" / "schemas"
    names = sorted(p.name for p in bundled.iterdir())
    assert names == sorted(p.name for p in (SCHEMAS / "segformer").iterdir())
    for name in names:
        assert (SCHEMAS / "segformer" / name).read_bytes() == (bundled / name).read_bytes()


def test_every_schema_is_a_valid_json_schema() -> None:
    for path in SCHEMAS.glob("*.schema.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_the_source_checkout_reads_its_own_schemas() -> None:
    assert validation.schemas_dir() == SCHEMAS


@pytest.mark.parametrize("study", sorted((REPO / "studies").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_studies_match_the_schema_and_name_it(study: Path) -> None:
    first = study.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/study.schema.json"
    assert (study.parent / first.split("$schema=")[1]).resolve() == SCHEMAS / "study.schema.json"
    validation.validate(yaml.safe_load(study.read_text()), validation.STUDY, str(study), "")


def test_study_schema_accepts_what_settings_accepts(tmp_path: Path) -> None:
    study = tmp_path / "s.yaml"
    study.write_text("direction: maximize\nautoml_policy: off\nseed: 3\nmounts: [/data]\n")
    assert load_study(study)["automl_policy"] is False


def test_a_study_value_pydantic_would_coerce_is_refused_by_the_schema(tmp_path: Path) -> None:
    """The schema is the contract editors check against: a quoted number passes pydantic's lax
    mode but not the schema, and the engine says so in one line."""
    study = tmp_path / "s.yaml"
    study.write_text("max_epochs: '3'\n")
    with pytest.raises(UserError, match=r"s\.yaml: 'max_epochs': '3' is not valid.*study\.schema"):
        load_study(study)


def test_overrides_file_is_validated_against_its_schema(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("parameters:\n  train.optim.lr: {valid_min: 1.0e-5, valid_max: 1.0e-2}\n"
                    "  train.optim.momentum: 0.95\nexclude: [model.backbone.type]\n")
    assert load_overrides(good).parameters["train.optim.momentum"].value == 0.95
    doc = yaml.safe_load(good.read_text())
    assert validation.problem(doc, validation.OVERRIDES) is None
    doc["only"] = "train.optim.lr"  # a string, not a list
    assert "'only'" in validation.problem(doc, validation.OVERRIDES)


def test_history_is_validated_when_read_back(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    record = TrialRecord(rec_id="a", params={"lr": 0.1}, index=1, status="completed")
    record.add_result(1, {"val_miou": float("nan"), "loss": 0.5})  # NaN is written as "nan"
    write_history(path, {"budget": 1}, [record])
    experiment, records = read_history(path)
    assert experiment == {"budget": 1} and records[0].rec_id == "a"
    doc = json.loads(path.read_text())
    doc["trials"][0]["budget"] = "one"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"'trials\.0\.budget'.*history\.schema"):
        read_history(path)


def test_experiment_yaml_is_validated_when_read_back(tmp_path: Path) -> None:
    from automl.results.workspace import Workspace

    ws = Workspace(tmp_path)
    ws.write_experiment({"experiment_id": "x", "direction": "max", "metric": "val_miou"})
    assert ws.read_experiment()["metric"] == "val_miou"
    ws.write_experiment({"experiment_id": "x", "direction": "up"})
    with pytest.raises(UserError, match=r"experiment\.yaml: 'direction'.*automl recover"):
        ws.read_experiment()


def test_best_rec_is_validated_when_read_back(tmp_path: Path) -> None:
    from automl.results.best import best_rec, read_best_rec

    path = tmp_path / "best_rec.json"
    path.write_text(json.dumps(best_rec("x", [], "val_miou", "max", None)))
    assert read_best_rec(path)["best"] is None
    path.write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(UserError, match=r"best_rec\.json: .*'experiment_id' is a required"):
        read_best_rec(path)


def test_a_wheel_install_finds_the_schemas(tmp_path: Path) -> None:
    """``pip install .`` (not -e): the wheel carries schemas/ and the installed automl finds them.

    The venv sees the system site-packages (no downloads), where an editable install of a
    checkout may live; the venv's own site-packages comes first, so the wheel's automl is the
    one imported (checked)."""
    source = tmp_path / "source"  # setuptools builds in the source folder: not the checkout's
    for folder in ("src", "schemas"):
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(source)], check=True, cwd=tmp_path)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    wheel = next(wheels.glob("automl_tao-*.whl"))
    # --ignore-installed: the system site-packages may already hold automl-tao (editable).
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                    "--ignore-installed", "--no-index", "-q", str(wheel)], check=True, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    study = tmp_path / "study.yaml"
    study.write_text((REPO / "studies" / "quickstart.yaml").read_text())
    probe = ("import automl, automl.validation as j, automl.study as s, pathlib, sys;"
             "print(automl.__file__); print(j.schemas_dir());"
             "s.load_study(pathlib.Path(sys.argv[1]))")
    out = subprocess.run([str(python), "-c", probe, str(study)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert Path(out[0]).is_relative_to(env_dir), out
    assert Path(out[1]) == (env_dir / "share" / "automl-tao" / "schemas").resolve(), out
    assert (Path(out[1]) / "segformer" / "train.schema.json").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_epochs: '3'\n")
    refused = subprocess.run([str(python), "-m", "automl.cli", "run", "--study", str(bad)],
                             env=env, cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 2 and "study.schema.json" in refused.stderr, refused.stderr
    space = subprocess.run([str(python), "-m", "automl.cli", "space"], env=env, cwd=tmp_path,
                           capture_output=True, text=True)
    assert space.returncode == 0, space.stderr
    assert "train.optim.lr" in space.stdout
