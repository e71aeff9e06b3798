"""Hand-off: action specs from a real experiment (fake trainer), from TAO's own SegFormer templates,
every user error, ``--run`` end to end, and the bundled trainer reproducing the best score."""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from automl.cli import main
from automl.errors import UserError
from automl.commands.handoff import handoff, main_handoff, merge_trained
from automl.networks import profile_for
from automl.results.records import TrialRecord
from automl.results.best import best_rec, choose_best, read_best_rec, write_best_rec
from automl.skill.folder import SkillDir
from automl.skill.spec import flatten, get_dotted
from tests.helpers.skills import FAKE_TEMPLATE, SHARED_TAO, make_fake_skill

SECRET = "s3cret-key-value"

# A downstream action for the fake trainer: loads the checkpoint the spec names and reports the
# score the fake trainer reported for that epoch (same formula), so a hand-off that picks the
# wrong file or loses the trained hyperparameters shows up as a different number.
FAKE_EVALUATOR = r'''
import json, sys
from pathlib import Path
import yaml

action = sys.argv[1]
spec = yaml.safe_load(Path(sys.argv[sys.argv.index("-e") + 1]).read_text())
section = spec[action]
print("loaded spec; encryption_key =", spec.get("encryption_key"), flush=True)
out = Path(section.get("results_dir") or Path(spec["results_dir"]) / action)
out.mkdir(parents=True, exist_ok=True)
status = (out / "status.json").open("a")
status.write(json.dumps({"status": "STARTED", "message": "Starting evaluation"}) + "\n")
if section.get("fail"):
    status.write(json.dumps({"status": "FAILURE", "message": "data: split 'val' not found"}) + "\n")
    sys.exit(1)
ckpt = json.loads(Path(section["checkpoint"]).read_text())
x, completed = ckpt["x"], ckpt["epoch"] + 1  # TAO names a checkpoint by its 0-based epoch
y, c = int(spec["hp"]["y"]), spec["hp"]["c"]
score = 1.0 - (x - 0.7) ** 2 - 0.02 * abs(y - 3) + (0.05 if c == "b" else 0.0)
score *= 1.0 - 0.5 / (1 + completed)
status.write(json.dumps({"status": "SUCCESS", "message": "done",
                         "kpi": {"val_miou": score, "val_loss": 1.0 - score}}) + "\n")
'''

TRAIN_TEMPLATE = {
    **FAKE_TEMPLATE,
    "encryption_key": "",
    "dataset": {"segment": {"root_dir": "", "num_classes": 3, "img_size": 32,
                            "palette": [{"label_id": i, "rgb": [i, i, i]} for i in range(3)],
                            "augmentation": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}},
    "model": {"backbone": {"type": "tiny"}},
}


def _action_template(action: str) -> dict:
    section = {"checkpoint": "???", "results_dir": "", "batch_size": 4, "fail": False}
    if action == "export":
        section = {"checkpoint": "???", "results_dir": "", "onnx_file": "???",
                   "input_height": 256, "input_width": 256}
    return {"results_dir": "", "encryption_key": "",
            "hp": {"x": 0.5, "y": 1, "c": "a"},
            "dataset": {"segment": {"root_dir": "???", "num_classes": 2, "img_size": 256,
                                    "palette": [{"label_id": 0, "rgb": [0, 0, 0]}],
                                    "augmentation": {"mean": [0.1, 0.1, 0.1],
                                                     "std": [0.2, 0.2, 0.2]}}},
            "model": {"backbone": {"type": "big"}},
            "train": {"num_epochs": 10, "resume_training_checkpoint_path": "", "results_dir": ""},
            action: section}


def make_handoff_skill(folder: Path) -> Path:
    """The fake skill plus evaluate/export templates, run by FAKE_EVALUATOR; ``inference`` is an
    action without a template."""
    make_fake_skill(folder, TRAIN_TEMPLATE)
    evaluator = folder / "fake_evaluator.py"
    evaluator.write_text(FAKE_EVALUATOR)
    info_path = folder / "references" / "skill_info.yaml"
    info = yaml.safe_load(info_path.read_text())
    for action in ("evaluate", "export"):
        info["actions"][action] = {"command": f"{sys.executable} {evaluator} {action} -e {{config_path}}"}
        info["spec_templates"][action] = f"../references/spec_template_{action}.yaml"
        (folder / "references" / f"spec_template_{action}.yaml").write_text(
            yaml.safe_dump(_action_template(action)))
    info["actions"]["inference"] = {"command": f"{sys.executable} {evaluator} inference -e {{config_path}}"}
    info_path.write_text(yaml.safe_dump(info))
    return folder


def make_dataset(root: Path, num_classes: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
                root / "images" / split / f"{i}.png")
            Image.fromarray(rng.integers(0, num_classes, (8, 8), dtype=np.uint8)).save(
                root / "masks" / split / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def experiment(ray_session, tmp_path_factory):
    """One real experiment on the fake trainer, shared by the tests that only read it."""
    base = tmp_path_factory.mktemp("handoff")
    skill = make_handoff_skill(base / "skill")
    data = make_dataset(base / "data")
    ws = base / "ws"
    code = main(["run", "--skill-dir", str(skill), "--workspace", str(ws), "--root-dir", str(data),
                 "--progress", "none", "--seed", "3", "--algo", "random",
                 "--max-recommendations", "3", "--max-epochs", "2",
                 "--set", "dataset.segment.img_size=48", "--set", f"encryption_key={SECRET}"])
    assert code == 0
    return ws, data


def copy_ws(ws: Path, tmp_path: Path) -> Path:
    """A copy as ``cp -a`` makes it: links stay links (TAO's ``*_model_latest.pth`` is one, and
    points nowhere once retention removed its target)."""
    return Path(shutil.copytree(ws, tmp_path / "ws-copy", symlinks=True))


def args(workspace: Path, action: str = "evaluate", **extra) -> argparse.Namespace:
    values = {"action": action, "workspace": workspace, "root_dir": None, "run": False,
              "checkpoint": "best", "set_": None, **extra}
    return argparse.Namespace(**values)


# ---------------------------------------------------------------------------------------------
# Specs from a real experiment


def test_evaluate_spec_has_exact_checkpoint_and_trained_values(experiment):
    ws, data = experiment
    best = read_best_rec(ws / "best_rec.json")["best"]
    result = handoff(ws, "evaluate", None, run=False)
    assert result.spec_path == ws / "handoff" / "evaluate" / "spec.yaml"
    spec = yaml.safe_load(result.spec_path.read_text())
    trained = yaml.safe_load((ws / "trials" / best["rec_id"] / "spec.yaml").read_text())

    assert spec["evaluate"]["checkpoint"] == best["checkpoint_uri"]
    # TAO names checkpoints by the 0-based epoch: the 2-epoch best is model_epoch_001.
    assert Path(best["checkpoint_uri"]).name == f"model_epoch_001_step_{best['checkpoint_step']:05d}.pth"
    seg = spec["dataset"]["segment"]
    assert seg["num_classes"] == 3 and seg["img_size"] == 48  # the trained values, not the template's
    assert seg["root_dir"] == str(data.resolve()) == trained["dataset"]["segment"]["root_dir"]
    assert seg["palette"] == TRAIN_TEMPLATE["dataset"]["segment"]["palette"]
    assert seg["augmentation"] == TRAIN_TEMPLATE["dataset"]["segment"]["augmentation"]
    assert spec["model"]["backbone"]["type"] == "tiny"
    assert spec["hp"] == trained["hp"]  # the searched values of the best trial
    assert spec["encryption_key"] == SECRET  # needed to load the model; never printed
    # Outputs inside the workspace; train-only keys and action sections not copied.
    assert spec["results_dir"] == str(ws / "handoff" / "evaluate" / "results")
    assert spec["evaluate"]["results_dir"] == str(ws / "handoff" / "evaluate" / "results" / "evaluate")
    assert spec["evaluate"]["batch_size"] == 4
    assert spec["train"]["resume_training_checkpoint_path"] == ""
    assert spec["train"]["results_dir"] == ""
    assert result.command[-2:] == ["-e", str(result.spec_path)]
    assert result.preserved["dataset.segment.num_classes"] == 3
    assert not result.ran


def test_export_input_size_and_onnx_inside_handoff(experiment):
    ws, _ = experiment
    result = handoff(ws, "export", None, run=False)
    spec = yaml.safe_load(result.spec_path.read_text())
    assert spec["export"]["input_height"] == spec["export"]["input_width"] == 48
    assert spec["export"]["onnx_file"] == str(ws / "handoff" / "export" / "model.onnx")
    assert spec["export"]["checkpoint"] == read_best_rec(ws / "best_rec.json")["best"]["checkpoint_uri"]


def test_root_dir_and_set_overrides(experiment, tmp_path):
    ws, _ = experiment
    eval_data = make_dataset(tmp_path / "eval-data")
    result = handoff(ws, "evaluate", eval_data, run=False,
                     overrides={"evaluate.batch_size": 1})
    spec = yaml.safe_load(result.spec_path.read_text())
    assert spec["dataset"]["segment"]["root_dir"] == str(eval_data.resolve())
    assert spec["dataset"]["segment"]["num_classes"] == 3
    assert spec["evaluate"]["batch_size"] == 1


def test_cli_output_never_shows_secret(experiment, capsys):
    ws, _ = experiment
    assert main_handoff(args(ws, set_=["evaluate.batch_size=2"])) == 0
    out = capsys.readouterr().out
    assert "num_classes=3" in out and "img_size=48" in out and "run it:" in out
    assert SECRET not in out


def test_run_reproduces_best_score_and_redacts_log(experiment, capsys):
    ws, _ = experiment
    best = read_best_rec(ws / "best_rec.json")["best"]
    code = main_handoff(args(ws, run=True))
    out = capsys.readouterr().out
    assert code == 0
    assert "encryption_key = ***" in out and SECRET not in out  # streamed log, redacted
    assert "val_miou = " in out
    result = handoff(ws, "evaluate", None, run=True)
    assert result.exit_code == 0 and result.status == "SUCCESS" and result.ok
    assert math.isclose(result.kpis["val_miou"], best["score"], abs_tol=1e-9)
    assert result.log_path == ws / "handoff" / "evaluate" / "evaluate.log"
    assert SECRET in result.log_path.read_text()  # the trainer's own log is kept as written


def test_run_failure_is_reported(experiment, capsys):
    ws, _ = experiment
    assert main_handoff(args(ws, run=True, set_=["evaluate.fail=true"])) == 1
    err = capsys.readouterr().err
    assert "evaluate failed: data:" in err
    result = handoff(ws, "evaluate", None, run=True, overrides={"evaluate.fail": True})
    assert result.exit_code == 1 and result.failure_class == "data" and not result.ok


def test_run_goes_through_the_experiments_launcher(experiment, tmp_path, monkeypatch, capsys):
    """A Docker experiment's hand-off runs through the Docker launcher (here: an unreachable
    engine, so it stops at its preflight), never as a local process; with no recorded settings
    (an older workspace) it runs locally. The real container run: tests/launchers/test_docker_launcher.py."""
    pytest.importorskip("docker", reason="the Docker SDK for Python is not installed")
    ws = copy_ws(experiment[0], tmp_path)
    shutil.rmtree(ws / "handoff", ignore_errors=True)  # what other tests handed off
    doc = yaml.safe_load((ws / "experiment.yaml").read_text())
    doc["settings"].update(launcher="docker", image="automl-test/absent:1")
    (ws / "experiment.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(UserError, match="cannot reach the Docker engine at unix://.*no-docker.sock"):
        handoff(ws, "evaluate", None, run=True)
    assert not (ws / "handoff" / "evaluate" / "evaluate.log").exists()  # nothing ran locally
    assert main_handoff(args(ws)) == 0
    assert "run it (in the experiment's docker image): " in capsys.readouterr().out
    del doc["settings"]
    (ws / "experiment.yaml").write_text(yaml.safe_dump(doc))
    result = handoff(ws, "evaluate", None, run=True)
    assert result.launcher == "local" and result.exit_code == 0


def test_checkpoint_latest_only_when_asked(experiment, tmp_path):
    ws = copy_ws(experiment[0], tmp_path)
    best = read_best_rec(ws / "best_rec.json")["best"]
    latest = ws / "trials" / best["rec_id"] / "results" / "train" / "fake_model_latest.pth"
    # TAO's latest is a symlink to the last epoch file; retention kept that (scored) file.
    assert latest.is_symlink() and latest.resolve().name == Path(best["checkpoint_uri"]).name
    latest.unlink()
    with pytest.raises(UserError, match="no \\*_model_latest.pth"):
        handoff(ws, "evaluate", None, run=False, checkpoint="latest")
    latest.write_text("{}")
    assert handoff(ws, "evaluate", None, run=False, checkpoint="latest").checkpoint == latest.resolve()
    # The default is still the scored epoch's file, even though a latest file exists.
    best_path = handoff(ws, "evaluate", None, run=False).checkpoint
    assert best_path.name.startswith("model_epoch_001_") and best_path.parent == latest.parent


def test_handoff_after_retention(experiment, tmp_path):
    from automl.results.retention import finalize_retention

    ws = copy_ws(experiment[0], tmp_path)
    finalize_retention(ws, "best")  # the engine already applied it at the end of the run
    best = read_best_rec(ws / "best_rec.json")["best"]
    left = sorted(p.name for p in (ws / "trials").glob("*/results/train/model_epoch_*.pth"))
    assert left == [Path(best["checkpoint_uri"]).name]
    result = handoff(ws, "evaluate", None, run=True)
    assert result.ok and math.isclose(result.kpis["val_miou"], best["score"], abs_tol=1e-9)


def test_moved_workspace_uses_its_own_checkpoint(experiment, tmp_path):
    ws = copy_ws(experiment[0], tmp_path)
    result = handoff(ws, "evaluate", None, run=False)
    assert result.checkpoint.is_relative_to(ws)
    assert result.results_dir.is_relative_to(ws)


# ---------------------------------------------------------------------------------------------
# Errors: one line, UserError (exit 2 through the CLI)


def test_unknown_action_lists_valid_ones(experiment):
    with pytest.raises(UserError, match="unknown hand-off action 'distill'.*evaluate, export, inference"):
        handoff(experiment[0], "distill", None, run=False)
    with pytest.raises(UserError, match="unknown hand-off action 'train'"):
        handoff(experiment[0], "train", None, run=False)


def test_action_without_template_starts_from_the_trained_spec(experiment):
    """TAO's spec is one config for every action: without spec_template_inference.yaml the
    inference spec is the trained one, with the inference keys set, and says so."""
    ws, _ = experiment
    result = handoff(ws, "inference", None, run=False, overrides={"inference.batch_size": 2})
    spec = yaml.safe_load(result.spec_path.read_text())
    trained = yaml.safe_load((ws / "trials" / result.rec_id / "spec.yaml").read_text())
    assert spec["inference"] == {"checkpoint": str(result.checkpoint), "batch_size": 2}
    assert spec["model"] == trained["model"] and spec["dataset"] == trained["dataset"]
    assert spec["train"]["resume_training_checkpoint_path"] == ""
    assert "no spec_template_inference.yaml" in result.note


def test_failed_experiment_has_nothing_to_hand_off(experiment, tmp_path):
    ws = copy_ws(experiment[0], tmp_path)
    doc = read_best_rec(ws / "best_rec.json")
    write_best_rec(ws / "best_rec.json", {**doc, "best": None})
    with pytest.raises(UserError, match="no checkpoint to hand off"):
        handoff(ws, "evaluate", None, run=False)
    (ws / "best_rec.json").unlink()
    with pytest.raises(UserError, match="no best_rec.json.*automl recover"):
        handoff(ws, "evaluate", None, run=False)


def test_missing_checkpoint_file(experiment, tmp_path):
    ws = copy_ws(experiment[0], tmp_path)
    best = read_best_rec(ws / "best_rec.json")["best"]
    Path(best["checkpoint_uri"].replace(str(experiment[0]), str(ws))).unlink()
    with pytest.raises(UserError, match="checkpoint file missing on disk"):
        handoff(ws, "evaluate", None, run=False)


@pytest.mark.parametrize(("overrides", "checkpoint", "root", "match"), [
    ({"evaluate.checkpoint": "/tmp/x.pth"}, "best", None, "managed by automl hand-off"),
    ({"results_dir": "/tmp/out"}, "best", None, "managed by automl hand-off"),
    ({"evaluate.results_dir": "/tmp/out"}, "best", None, "managed by automl hand-off"),
    ({"evaluate.batch_sise": 2}, "best", None, "did you mean 'evaluate.batch_size'"),
    ({}, "newest", None, "--checkpoint 'newest'"),
    ({}, "best", "/nonexistent/data", "dataset folder not found"),
])
def test_bad_arguments(experiment, overrides, checkpoint, root, match):
    with pytest.raises(UserError, match=match):
        handoff(experiment[0], "evaluate", Path(root) if root else None, run=False,
                checkpoint=checkpoint, overrides=overrides)


def test_not_a_workspace_and_cli_exit_code(tmp_path, capsys):
    with pytest.raises(UserError, match="not an automl workspace"):
        main_handoff(args(tmp_path))
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        main_handoff(args(tmp_path, set_=["novalue"]))


# ---------------------------------------------------------------------------------------------
# TAO's own SegFormer templates


def _tao_skill() -> Path:
    folder = SHARED_TAO / "tao-train-segformer"
    if not folder.is_dir():
        pytest.skip(f"TAO SegFormer skill folder not found at {folder} (../shared/tao beside the "
                    f"checkout): the TAO template checks need it")
    return folder


@pytest.fixture
def tao_workspace(tmp_path):
    """A finished experiment on TAO's SegFormer skill, as the engine leaves it (no training)."""
    skill_dir = _tao_skill()
    skill = SkillDir.load(skill_dir)
    ws = tmp_path / "tao-ws"
    data = tmp_path / "cityscapes-ish"
    (data / "images" / "train").mkdir(parents=True)  # quantize calibrates on these by default
    rec_id = "a1b2c3d4"
    trial = ws / "trials" / rec_id
    train_dir = trial / "results" / "train"
    train_dir.mkdir(parents=True)
    spec = skill.template("train")
    seg = spec["dataset"]["segment"]
    seg.update(root_dir=str(data), num_classes=5, img_size=512,
               palette=[{"label_id": i, "mapping_class": f"c{i}", "rgb": [i, i, i], "seg_class": f"c{i}"}
                        for i in range(5)])
    seg["augmentation"]["mean"] = [0.485, 0.456, 0.406]
    seg["augmentation"]["std"] = [0.229, 0.224, 0.225]
    spec["model"]["backbone"]["type"] = "mit_b1"
    spec["model"]["decode_head"]["decoder_params"]["embed_dim"] = 256
    spec["encryption_key"] = "tlt_encode"
    spec["results_dir"] = str(trial / "results")
    spec["train"]["num_epochs"] = 2
    spec["train"]["optim"]["lr"] = 1e-4
    spec["train"]["resume_training_checkpoint_path"] = str(train_dir / "model_epoch_000_step_00010.pth")
    (trial / "spec.yaml").write_text(yaml.safe_dump(spec))
    # TAO's names: the 0-based epoch, so the 2nd (last) epoch's checkpoint is model_epoch_001.
    (train_dir / "model_epoch_000_step_00010.pth").write_bytes(b"0" * 16)
    (train_dir / "model_epoch_001_step_00020.pth").write_bytes(b"0" * 16)
    (ws / "experiment.yaml").write_text(yaml.safe_dump({
        "experiment_id": "tao-ws", "metric": "val_miou", "direction": "max", "budget": 2,
        "skill_dir": str(skill_dir), "dataset_root": str(data)}))
    record = TrialRecord(rec_id=rec_id, params={"train.optim.lr": 1e-4}, index=1,
                         status="completed", budget=2, folder=str(trial),
                         results=[{"epoch": 1, "val_miou": 0.4}, {"epoch": 2, "val_miou": 0.5}])
    best = choose_best([record], "val_miou", "max")
    write_best_rec(ws / "best_rec.json", best_rec("tao-ws", [record], "val_miou", "max", best))
    return ws, data, train_dir / "model_epoch_001_step_00020.pth"


MODEL_KEYS = {"evaluate": "evaluate.checkpoint", "export": "export.checkpoint",
              "inference": "inference.checkpoint", "quantize": "quantize.model_path"}


@pytest.mark.parametrize("action", sorted(MODEL_KEYS))
def test_tao_segformer_templates(tao_workspace, action):
    ws, data, ckpt = tao_workspace
    result = handoff(ws, action, None, run=False)
    spec = yaml.safe_load(result.spec_path.read_text())
    assert profile_for(SkillDir.load(_tao_skill())).model_key(action) == MODEL_KEYS[action]
    assert get_dotted(spec, MODEL_KEYS[action]) == str(ckpt.resolve())
    seg = spec["dataset"]["segment"]
    assert seg["num_classes"] == 5 and seg["img_size"] == 512 and seg["root_dir"] == str(data)
    assert [p["label_id"] for p in seg["palette"]] == list(range(5))
    assert seg["augmentation"]["mean"] == [0.485, 0.456, 0.406]
    assert spec["model"]["backbone"]["type"] == "mit_b1"
    assert spec["model"]["decode_head"]["decoder_params"]["embed_dim"] == 256
    assert spec["encryption_key"] == "tlt_encode"
    assert seg["label_transform"] == "norm"
    assert spec["train"]["resume_training_checkpoint_path"] == ""
    handoff_dir = ws / "handoff" / action
    assert spec["results_dir"] == str(handoff_dir / "results")
    assert get_dotted(spec, f"{action}.results_dir") == str(handoff_dir / "results" / action)
    leaves = flatten(spec)
    assert "???" not in [v for v in leaves.values() if isinstance(v, str)]
    # Every path the action writes lies inside the workspace.
    for key, value in leaves.items():
        if key.endswith(("results_dir", "onnx_file")) and value:
            assert Path(value).is_relative_to(ws), key
    if action == "export":
        assert spec["export"]["input_height"] == spec["export"]["input_width"] == 512
        assert spec["export"]["onnx_file"] == str(handoff_dir / "model.onnx")
        assert spec["export"]["opset_version"] == 17  # the action's own section: from its template
    assert result.command == ["segformer", action, "-e", str(result.spec_path)]
    calibration = get_dotted(spec, "dataset.segment.quant_calibration_dataset.images_dir")
    if action == "quantize":  # mandatory for quantize (skill_info inputs); '' in TAO's template
        assert calibration == str(data / "images" / "train")
        assert result.defaults == {"dataset.segment.quant_calibration_dataset.images_dir":
                                   str(data / "images" / "train")}
    else:
        assert calibration == "" and result.defaults == {}


def test_tao_quantize_calibration_images(tao_workspace, tmp_path, capsys):
    ws, data, _ = tao_workspace
    key = "dataset.segment.quant_calibration_dataset.images_dir"
    mine = tmp_path / "calib"
    mine.mkdir()
    # --set (the skill's shorthand) wins over the default
    result = handoff(ws, "quantize", None, run=False, overrides={"calibration_images": str(mine)})
    assert get_dotted(yaml.safe_load(result.spec_path.read_text()), key) == str(mine)
    assert result.defaults == {}
    # another split named in the trained spec (dataset.segment.train_split) is followed
    trial_spec = next(ws.glob("trials/*/spec.yaml"))
    trained = yaml.safe_load(trial_spec.read_text())
    trained["dataset"]["segment"]["train_split"] = "fit"
    trial_spec.write_text(yaml.safe_dump(trained))
    with pytest.raises(UserError) as err:
        handoff(ws, "quantize", None, run=False)
    assert str(err.value) == (f"quantize: no calibration images at {data / 'images' / 'fit'} (the "
                              f"training split's images, the default of {key}); pass --set "
                              f"calibration_images=DIR or --root-dir")
    (data / "images" / "fit").mkdir()
    assert handoff(ws, "quantize", None, run=False).defaults == {key: str(data / "images" / "fit")}
    # a folder the trained spec already names is kept
    trained["dataset"]["segment"]["quant_calibration_dataset"]["images_dir"] = str(mine)
    trial_spec.write_text(yaml.safe_dump(trained))
    result = handoff(ws, "quantize", None, run=False)
    assert get_dotted(yaml.safe_load(result.spec_path.read_text()), key) == str(mine)
    # the CLI names the default it chose
    trained["dataset"]["segment"]["quant_calibration_dataset"]["images_dir"] = ""
    trial_spec.write_text(yaml.safe_dump(trained))
    assert main_handoff(args(ws, "quantize")) == 0
    assert f"{key} = {data / 'images' / 'fit'} (default: the training split's images)" in \
        capsys.readouterr().out


def test_tao_errors(tao_workspace, capsys):
    ws, _, _ = tao_workspace
    with pytest.raises(UserError, match="quantize, evaluate, export, inference"):
        handoff(ws, "train", None, run=False)
    with pytest.raises(UserError, match="managed by automl hand-off"):
        handoff(ws, "export", None, run=False, overrides={"export_onnx": "/tmp/x.onnx"})
    with pytest.raises(UserError, match="managed by automl hand-off"):
        handoff(ws, "quantize", None, run=False, overrides={"quantize_model": "/tmp/m.pth"})
    # A key of the action's schema/template and a skill shorthand are accepted.
    result = handoff(ws, "export", None, run=False,
                     overrides={"export.opset_version": 13, "input_width": 640})
    spec = yaml.safe_load(result.spec_path.read_text())
    assert spec["export"]["opset_version"] == 13
    assert spec["export"]["input_width"] == 640 and spec["export"]["input_height"] == 512
    assert main_handoff(args(ws, "quantize")) == 0
    out = capsys.readouterr().out
    assert "tlt_encode" not in out and "num_classes=5" in out


def test_merge_trained_copies_whole_leaves_and_skips_owned():
    template = {"results_dir": "", "a": {"results_dir": "", "kw": {}, "l": [1]},
                "evaluate": {"batch_size": 8}, "only_template": 1}
    trained = {"results_dir": "/x", "a": {"results_dir": "/y", "kw": {"k": 1}, "l": [2, 3]},
               "evaluate": {"batch_size": 1}, "only_trained": 2}
    spec, preserved = merge_trained(template, trained, skip_sections={"evaluate"})
    assert spec == {"results_dir": "", "a": {"results_dir": "", "kw": {"k": 1}, "l": [2, 3]},
                    "evaluate": {"batch_size": 8}, "only_template": 1}
    assert set(preserved) == {"a.kw", "a.l"}


# ---------------------------------------------------------------------------------------------
# The real hand-off: the bundled trainer evaluates the best checkpoint


def _bundled_skill() -> Path:
    root = Path(__file__).resolve().parents[2] / "src" / "segformer_trainer" / "skill"
    if not (root / "references" / "skill_info.yaml").is_file():
        pytest.skip(f"bundled SegFormer skill folder not generated yet ({root}): the real "
                    f"hand-off test needs the bundled trainer's evaluate action")
    # The bundled skill runs this interpreter's `-m segformer_trainer.cli` (automl.skill.folder), not a
    # console script on PATH: what it needs is the trainer extra.
    pytest.importorskip("torch", reason="the bundled trainer needs pip install -e '.[trainer]'")
    return root


def test_bundled_evaluate_reproduces_best_val_miou(ray_session, tmp_path, capsys):
    _bundled_skill()
    ws = tmp_path / "ws"
    code = main(["run", "--workspace", str(ws), "--progress", "none", "--seed", "0",
                 "--max-recommendations", "2", "--max-epochs", "2"])
    assert code == 0, capsys.readouterr().err
    best = read_best_rec(ws / "best_rec.json")["best"]
    result = handoff(ws, "evaluate", None, run=True)
    assert result.exit_code == 0 and result.status == "SUCCESS", result.message
    assert abs(result.kpis["val_miou"] - best["score"]) < 1e-3, (result.kpis, best["score"])
    spec = yaml.safe_load(result.spec_path.read_text())
    assert spec["evaluate"]["checkpoint"] == best["checkpoint_uri"]
    trained = yaml.safe_load((ws / "trials" / best["rec_id"] / "spec.yaml").read_text())
    for key in ("dataset.segment.num_classes", "dataset.segment.img_size", "dataset.segment.root_dir"):
        assert get_dotted(spec, key) == get_dotted(trained, key)
    assert json.loads((result.results_dir / "evaluate" / "results.json").read_text())["split"]


def test_read_paths_are_the_dataset_inputs_and_checkpoint_folder(tmp_path):
    """What a container of the hand-off mounts read-only: no duplicates, nothing nested twice,
    nothing that does not exist (a bind mount of a missing path fails the container)."""
    from automl.commands.handoff import _read_paths

    root = tmp_path / "data"
    (root / "images" / "train").mkdir(parents=True)
    weights = tmp_path / "weights.pth"
    weights.write_text("w")
    ckpt = tmp_path / "ws" / "trials" / "t" / "results" / "train" / "model_epoch_000_step_00001.pth"
    ckpt.parent.mkdir(parents=True)
    spec = {"dataset": {"segment": {"root_dir": str(root), "quant_calibration_dataset": {
        "images_dir": str(root / "images" / "train")}}},
        "model": {"pretrained": str(weights), "missing": str(tmp_path / "absent.pth")}}
    keys = ("dataset.segment.root_dir", "dataset.segment.quant_calibration_dataset.images_dir",
            "model.pretrained", "model.missing")
    assert _read_paths(spec, keys, ckpt) == (root, weights, ckpt.parent)
