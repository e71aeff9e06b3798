"""The bundled SegFormer trainer: real (tiny) runs of the TAO contract, no mocks.

Most runs call ``segformer_trainer.cli.main`` in-process (torch is imported once for the file);
the console script itself is exercised where the exit code and stderr of a real process matter.
Data: 32 px images, 16 train / 8 val / 4 test, 3 classes; batch 8, so 2 optimizer steps an epoch.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from segformer_trainer import cli
from segformer_trainer.config import build_config, default_spec, load_config
from segformer_trainer.status import read_status

REPO = Path(__file__).resolve().parents[2]
SKILL_DIR = REPO / "src" / "segformer_trainer" / "skill"
TAO_SEGFORMER = Path(__file__).resolve().parents[3] / "shared" / "tao" / "tao-train-segformer"
VAL_KEYS = {"val_loss", "val_acc", "val_miou", "val_mf1", "val_mprecision", "val_mrecall"}
STEPS_PER_EPOCH = 2


def segformer_bin() -> list[str]:
    exe = Path(sys.executable).with_name("automl-segformer")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "segformer_trainer.cli"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from segformer_trainer.synth import generate

    return generate(tmp_path_factory.mktemp("data") / "ds", num_train=16, num_val=8, num_test=4, num_classes=3,
                    img_size=32, seed=7)


def write_spec(path: Path, dataset: Path, results: Path, **overrides) -> Path:
    spec = default_spec("train")
    spec["results_dir"] = str(results)
    seg = spec["dataset"]["segment"]
    seg.update({"root_dir": str(dataset), "num_classes": 3, "img_size": 32, "batch_size": 8})
    seg["palette"] = seg["palette"][:3]
    spec["train"]["num_epochs"] = 2
    spec["train"]["optim"]["lr"] = 3e-3
    for key, value in overrides.items():
        node = spec
        parts = key.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run(action: str, spec: Path, *overrides: str) -> int:
    return cli.main([action, "-e", str(spec), *overrides])


def val_lines(lines):
    return [ln for ln in lines if ln.get("message") == "Eval metrics generated."]


def loop_lines(lines):
    return [ln for ln in lines if ln.get("message") == "Training loop in progress"]


def load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def ckpt_names(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*.pth"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset):
    """One uninterrupted 2-epoch run, shared by the tests below."""
    base = tmp_path_factory.mktemp("run")
    spec = write_spec(base / "spec.yaml", dataset, base / "results")
    assert run("train", spec) == 0
    return spec, base / "results" / "train"


@pytest.fixture(scope="module")
def trained3(tmp_path_factory, dataset):
    """One uninterrupted 3-epoch run."""
    base = tmp_path_factory.mktemp("run3")
    spec = write_spec(base / "spec.yaml", dataset, base / "results", train__num_epochs=3)
    assert run("train", spec) == 0
    return spec, base / "results" / "train"


# --------------------------------------------------------------------------- status.json and checkpoints
def check_common_keys(lines):
    for ln in lines:
        assert {"date", "time", "status", "verbosity"} <= set(ln)
        assert re.fullmatch(r"[1-9]\d?/[1-9]\d?/\d{4}", ln["date"])
        assert re.fullmatch(r"(0|[1-9]\d?):(0|[1-9]\d?):(0|[1-9]\d?)", ln["time"])
        assert ln["verbosity"] == "INFO"


GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "tao_golden"


# KPIs the bundled trainer writes beyond TAO's (segformer_trainer.train): cost objectives with the
# validation KPIs, the learning rate actually used with the training loss.
EXTRA_KPIS = ("latency_ms", "params_m", "lr")


def shape(lines):
    """What must match TAO line for line: status, message, key order, which lines carry kpi keys
    (TAO's; the bundled trainer's extra KPIs aside)."""
    return [(ln["status"], ln.get("message"), tuple(ln),
             tuple(k for k in ln.get("kpi", ()) if k not in EXTRA_KPIS)) for ln in lines]


def test_status_line_sequence(trained3):
    """Line for line TAO 6.25's SegFormer 3-epoch train (tests/fixtures/tao_golden/train_3_epochs):
    same statuses, messages, key order and kpi keys; only the values differ."""
    _, out = trained3
    lines = read_status(out / "status.json")
    raw = (out / "status.json").read_text().splitlines()
    assert len(raw) == len(lines)  # one JSON object per line
    check_common_keys(lines)
    assert shape(lines) == shape(read_status(GOLDEN / "train_3_epochs" / "status.json"))
    assert "kpi" not in lines[0]
    for ln in val_lines(lines):
        assert set(ln) == {"date", "time", "status", "verbosity", "message", "kpi"}  # no epoch key
        assert set(ln["kpi"]) == VAL_KEYS | {"latency_ms", "params_m"}
        # Measured on the trained model: a positive latency, mit_nano's 0.456 M parameters.
        assert ln["kpi"]["latency_ms"] > 0 and ln["kpi"]["params_m"] == pytest.approx(0.456, abs=1e-3)
        assert all(isinstance(v, float) and math.isfinite(v) for v in ln["kpi"].values())
        assert 0.0 <= ln["kpi"]["val_miou"] <= 1.0
    loops = loop_lines(lines)
    assert [ln["epoch"] for ln in loops] == [0, 1, 2]
    assert [ln["step"] for ln in loops] == [2, 4, 6]
    for ln in loops:
        assert list(ln)[:7] == ["epoch", "step", "max_epoch", "max_step", "time_per_epoch", "time_per_step", "eta"]
        assert ln["max_epoch"] == 2 and ln["max_step"] == 6
        for key in ("time_per_epoch", "time_per_step", "eta"):
            assert re.fullmatch(r"\d+:\d\d:\d\d(\.\d{6})?", ln[key]), ln[key]
    assert loops[-1]["eta"] == "0:00:00"
    # The logger keeps its kpi: each line but the eval and train-metrics ones repeats the last one.
    for prev, ln in zip(lines[2:], lines[3:]):
        if ln["message"] not in ("Eval metrics generated.", "Train metrics generated."):
            assert ln["kpi"] == prev["kpi"]
    assert list(lines[-1]["kpi"]) == ["train_loss", "lr"]
    # lr: the last step's, along TAO's linear schedule (2 steps an epoch, 6 in all, no warm-up).
    lrs = [ln["kpi"]["lr"] for ln in lines if ln["message"] == "Train metrics generated."]
    assert lrs == pytest.approx([3e-3 * (1 - k / 7) for k in (1, 3, 5)], rel=1e-6)


def test_checkpoint_names_and_content(trained3):
    _, out = trained3
    assert ckpt_names(out) == ["model_epoch_000_step_00002.pth", "model_epoch_001_step_00004.pth",
                               "model_epoch_002_step_00006.pth", "segformer_model_latest.pth"]
    assert not list(out.glob("*.tmp"))  # written as tmp + rename
    ckpt = load(out / "model_epoch_002_step_00006.pth")
    assert {"model", "optimizer", "scheduler", "epoch", "global_step", "rng", "config"} <= set(ckpt)
    assert (ckpt["epoch"], ckpt["global_step"], ckpt["end_of_epoch"]) == (2, 6, True)
    assert ckpt["scheduler"]["policy"] == "linear" and ckpt["scheduler"]["state"]["last_epoch"] == 6
    assert load(out / "model_epoch_000_step_00002.pth")["epoch"] == 0
    latest = load(out / "segformer_model_latest.pth")
    assert (latest["epoch"], latest["global_step"]) == (2, 6)


def test_validation_interval_follows_lightning(tmp_path, dataset):
    """validation_interval=2 over 3 epochs: validate at epoch 1 only (the last epoch is not forced)."""
    spec = write_spec(tmp_path / "spec.yaml", dataset, tmp_path / "results", train__num_epochs=3,
                      train__validation_interval=2)
    assert run("train", spec) == 0
    out = tmp_path / "results" / "train"
    lines = read_status(out / "status.json")
    assert [(ln["status"], ln.get("message"), ln.get("epoch")) for ln in lines] == [
        ("STARTED", "Starting SegFormer train.", None),
        ("STARTED", "Starting Training Loop.", None),
        ("RUNNING", "Training loop in progress", 0),
        ("RUNNING", "Train metrics generated.", None),
        ("RUNNING", "Eval metrics generated.", None),
        ("RUNNING", "Training loop in progress", 1),
        ("RUNNING", "Train metrics generated.", None),
        ("RUNNING", "Training loop in progress", 2),
        ("RUNNING", "Train metrics generated.", None),
        ("RUNNING", "Training loop complete.", None),
        ("RUNNING", "Train finished successfully.", None),
    ]
    assert "kpi" not in lines[2]  # nothing set yet: nothing to repeat (as TAO's golden fixture)
    kpi = lines[4]["kpi"]
    assert set(kpi) == VAL_KEYS | {"latency_ms", "params_m"} and lines[5]["kpi"] == kpi
    assert list(lines[7]["kpi"]) == ["train_loss", "lr"]  # the non-validating epoch repeats train_loss
    # checkpoints do not depend on validation
    assert ckpt_names(out) == ["model_epoch_000_step_00002.pth", "model_epoch_001_step_00004.pth",
                               "model_epoch_002_step_00006.pth", "segformer_model_latest.pth"]


def test_checkpoint_interval_follows_lightning(tmp_path, dataset):
    """checkpoint_interval=2 over 3 epochs: only after epoch 1 ((e + 1) % 2 == 0; the last is not forced)."""
    spec = write_spec(tmp_path / "spec.yaml", dataset, tmp_path / "results", train__num_epochs=3,
                      train__checkpoint_interval=2)
    assert run("train", spec) == 0
    out = tmp_path / "results" / "train"
    assert ckpt_names(out) == ["model_epoch_001_step_00004.pth", "segformer_model_latest.pth"]
    assert load(out / "segformer_model_latest.pth")["global_step"] == 4
    lines = read_status(out / "status.json")
    assert len(val_lines(lines)) == 3 and [ln["epoch"] for ln in loop_lines(lines)] == [0, 1, 2]


def test_status_logger_repeats_kpi_until_replaced(tmp_path):
    from segformer_trainer.status import StatusLogger

    s = StatusLogger(tmp_path)
    s.write("STARTED", "go")
    s.write("RUNNING", "Eval metrics generated.", kpi={"val_miou": 0.5})
    s.write("RUNNING", "Training loop in progress", data={"epoch": 0})
    s.write("FAILURE", "boom")
    lines = read_status(tmp_path / "status.json")
    assert "kpi" not in lines[0]
    assert [ln.get("kpi") for ln in lines[1:]] == [{"val_miou": 0.5}] * 3
    assert list(lines[2])[0] == "epoch"


# --------------------------------------------------------------------------- resume
def test_resume_continues_after_checkpoint_epoch_and_matches_uninterrupted_run(tmp_path, dataset, trained):
    _, out = trained
    spec = write_spec(tmp_path / "spec.yaml", dataset, tmp_path / "results")
    ckpt = out / "model_epoch_000_step_00002.pth"
    assert run("train", spec, f"train.resume_training_checkpoint_path={ckpt}") == 0
    res = tmp_path / "results" / "train"
    assert ckpt_names(res) == ["model_epoch_001_step_00004.pth", "segformer_model_latest.pth"]
    lines = read_status(res / "status.json")
    assert [(ln["status"], ln.get("message")) for ln in lines] == [
        ("STARTED", "Starting SegFormer train."),
        ("RUNNING", f"Resuming training from checkpoint: {os.path.realpath(ckpt)}"),
        ("STARTED", "Starting Training Loop."), ("RUNNING", "Eval metrics generated."),
        ("RUNNING", "Training loop in progress"), ("RUNNING", "Train metrics generated."),
        ("RUNNING", "Training loop complete."), ("RUNNING", "Train finished successfully.")]
    assert (lines[4]["epoch"], lines[4]["step"], lines[4]["max_epoch"]) == (1, 4, 1)
    straight_lines = read_status(out / "status.json")
    resumed, straight = val_lines(lines)[-1]["kpi"], val_lines(straight_lines)[-1]["kpi"]
    assert resumed.pop("latency_ms") > 0 and straight.pop("latency_ms") > 0  # a wall time
    assert resumed == pytest.approx(straight, abs=1e-6)
    a, b = load(res / "model_epoch_001_step_00004.pth"), load(out / "model_epoch_001_step_00004.pth")
    assert all(np.allclose(a["model"][k].numpy(), b["model"][k].numpy(), atol=1e-6) for k in b["model"])


def test_resume_one_epoch_then_a_second_restores_optimizer_and_scheduler(tmp_path, dataset, trained):
    """A 1-epoch run resumed with num_epochs=2 (an AutoML promotion) into the same results_dir."""
    _, straight_out = trained
    spec = write_spec(tmp_path / "spec.yaml", dataset, tmp_path / "results", train__num_epochs=1)
    assert run("train", spec) == 0
    res = tmp_path / "results" / "train"
    first = res / "model_epoch_000_step_00002.pth"
    assert ckpt_names(res) == ["model_epoch_000_step_00002.pth", "segformer_model_latest.pth"]
    assert run("train", spec, f"train.resume_training_checkpoint_path={first}", "train.num_epochs=2") == 0
    assert ckpt_names(res) == ["model_epoch_000_step_00002.pth", "model_epoch_001_step_00004.pth",
                               "segformer_model_latest.pth"]
    lines = read_status(res / "status.json")
    assert [ln["status"] for ln in lines].count("STARTED") == 4  # two per process: appended
    loops = loop_lines(lines)
    assert [(ln["epoch"], ln["step"], ln["max_epoch"], ln["max_step"]) for ln in loops] == [(0, 2, 0, 2),
                                                                                         (1, 4, 1, 4)]
    resumed = load(res / "model_epoch_001_step_00004.pth")
    straight = load(straight_out / "model_epoch_001_step_00004.pth")
    assert (resumed["epoch"], resumed["global_step"]) == (1, 4)
    # LR scheduler: restored step count (last_epoch), schedule of the new 2-epoch horizon: the LR
    # after resuming equals the LR the uninterrupted 2-epoch run had at that step.
    rs, ss = resumed["scheduler"]["state"], straight["scheduler"]["state"]
    assert rs["last_epoch"] == ss["last_epoch"] == 4
    assert rs["_last_lr"] == pytest.approx(ss["_last_lr"], rel=1e-9)
    assert rs["base_lrs"] == pytest.approx(ss["base_lrs"])
    assert [g["lr"] for g in resumed["optimizer"]["param_groups"]] == \
        pytest.approx([g["lr"] for g in straight["optimizer"]["param_groups"]], rel=1e-9)
    # Optimizer state restored: AdamW's step counts continue from the checkpoint (4, not 2).
    steps = {float(v["step"]) for v in resumed["optimizer"]["state"].values()}
    assert steps == {4.0}
    assert load(first)["scheduler"]["state"]["last_epoch"] == 2


# --------------------------------------------------------------------------- spec errors (exit 2)
def test_unknown_key_is_one_line_exit_2(tmp_path, dataset):
    spec = write_spec(tmp_path / "spec.yaml", dataset, tmp_path / "results", train__optim__lrr=0.1)
    proc = subprocess.run([*segformer_bin(), "train", "-e", str(spec)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "train.optim.lrr" in err[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("override, needle", [
    ("train.optim.lr=-1", "train.optim.lr"),
    ("train.num_epochs=abc", "train.num_epochs"),
    ("dataset.segment.label_transform=foo", "dataset.segment.label_transform"),
    ("train.checkpoint_interval=5", "checkpoint_interval"),
    ("train.validation_interval=3", "validation_interval"),
    ("dataset.segment.root_dir=???", "dataset.segment.root_dir"),
    ("model.backbone.type=resnet", "model.backbone.type"),
])
def test_bad_values_exit_2(tmp_path, dataset, capsys, override, needle):
    spec = write_spec(tmp_path / "spec.yaml", dataset, tmp_path / "results")
    assert run("train", spec, override) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spec:") and needle in err[0]


def test_encryption_key_never_printed(tmp_path, dataset, capsys):
    spec = write_spec(tmp_path / "spec.yaml", dataset, tmp_path / "results", encryption_key="s3cr3t-k3y")
    assert run("train", spec, "train.num_epochs=1", "train.nonexistent=1") == 2
    assert run("train", spec, "train.num_epochs=1") == 0
    captured = capsys.readouterr()
    assert "s3cr3t-k3y" not in captured.out + captured.err
    assert "s3cr3t-k3y" not in (tmp_path / "results" / "train" / "status.json").read_text()


# --------------------------------------------------------------------------- data errors (FAILURE, exit 1)
def test_missing_split_is_data_failure(tmp_path, dataset, capsys):
    spec = write_spec(tmp_path / "spec.yaml", dataset, tmp_path / "results")
    assert run("train", spec, "dataset.segment.validation_split=nope") == 1
    last = read_status(tmp_path / "results" / "train" / "status.json")[-1]
    assert last["status"] == "FAILURE"
    assert last["message"].startswith("data: split 'nope' not found at")
    assert capsys.readouterr().err.strip().startswith("data: split 'nope'")


def test_class_id_out_of_range_is_data_failure(tmp_path, dataset):
    spec = write_spec(tmp_path / "spec.yaml", dataset, tmp_path / "results")
    spec_data = yaml.safe_load(spec.read_text())
    spec_data["dataset"]["segment"]["num_classes"] = 2
    spec.write_text(yaml.safe_dump(spec_data))
    assert run("train", spec) == 1
    last = read_status(tmp_path / "results" / "train" / "status.json")[-1]
    assert last["status"] == "FAILURE"
    assert re.match(r"data: mask .* has class id 2 but dataset\.segment\.num_classes=2", last["message"])


def test_divergence_is_reported(tmp_path, dataset):
    spec = write_spec(tmp_path / "spec.yaml", dataset, tmp_path / "results")
    code = run("train", spec, "train.optim.optim=sgd", "train.optim.lr=1e30", "train.num_epochs=2")
    assert code == 1
    last = read_status(tmp_path / "results" / "train" / "status.json")[-1]
    assert last["status"] == "FAILURE"
    assert re.fullmatch(r"diverged: loss is (nan|inf) at epoch [01]", last["message"])


# --------------------------------------------------------------------------- other actions
def test_evaluate_reproduces_training_metric(tmp_path, trained, capsys):
    spec, out = trained
    ckpt = out / "model_epoch_001_step_00004.pth"
    assert run("evaluate", spec, f"evaluate.checkpoint={ckpt}", f"results_dir={tmp_path}") == 0
    lines = read_status(tmp_path / "evaluate" / "status.json")
    assert [(ln["status"], ln["message"]) for ln in lines] == [
        ("STARTED", "Starting SegFormer evaluate."), ("RUNNING", "Evaluate finished successfully.")]
    results = json.loads((tmp_path / "evaluate" / "results.json").read_text())
    assert (results["epoch"], results["global_step"]) == (1, 4)
    kpi = lines[-1]["kpi"]
    assert set(kpi) == VAL_KEYS
    final = val_lines(read_status(out / "status.json"))[-1]["kpi"]
    assert kpi["val_miou"] == pytest.approx(final["val_miou"], abs=1e-6)
    assert kpi["val_loss"] == pytest.approx(final["val_loss"], abs=1e-5)
    assert "val_miou:" in capsys.readouterr().out


def test_inference_writes_masks(tmp_path, trained, dataset):
    spec, out = trained
    ckpt = out / "segformer_model_latest.pth"
    assert run("inference", spec, f"inference.checkpoint={ckpt}", f"results_dir={tmp_path}") == 0
    masks = sorted((tmp_path / "inference" / "mask_labels").glob("*.png"))
    images = sorted((dataset / "images" / "test").glob("*.png"))
    assert [m.name for m in masks] == [i.name for i in images]
    arr = np.asarray(Image.open(masks[0]))
    assert arr.ndim == 2 and arr.shape == (32, 32) and arr.max() < 3


def test_inference_missing_split(tmp_path, trained, capsys):
    spec, out = trained
    code = run("inference", spec, f"inference.checkpoint={out / 'segformer_model_latest.pth'}",
               f"results_dir={tmp_path}", "dataset.segment.predict_split=missing")
    assert code == 1
    assert "data: split 'missing' not found" in capsys.readouterr().err


def test_export_onnx_or_clear_error(tmp_path, trained, capsys):
    spec, out = trained
    onnx_file = tmp_path / "model.onnx"
    code = run("export", spec, f"export.checkpoint={out / 'segformer_model_latest.pth'}",
               f"export.onnx_file={onnx_file}", "export.input_height=32", "export.input_width=32")
    try:
        import onnx  # noqa: F401
    except ImportError:
        assert code == 2
        assert capsys.readouterr().err.strip() == "onnx is not installed: pip install onnx"
        return
    assert code == 0 and onnx_file.stat().st_size > 0


# --------------------------------------------------------------------------- no torch on the light paths
def test_help_and_synth_do_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "from segformer_trainer import cli\n"
        "from segformer_trainer.synth import generate\n"
        f"assert cli.main(['dataset', 'synth', '--out', {str(tmp_path / 'd')!r}, '--num-train', '2',"
        " '--num-val', '1', '--num-test', '1']) == 0\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "d" / "masks" / "train").glob("*.png"))) == 2


def test_synth_is_deterministic(tmp_path):
    from segformer_trainer.synth import generate

    a = generate(tmp_path / "a", num_train=3, num_val=1, num_test=1, img_size=24, seed=3)
    b = generate(tmp_path / "b", num_train=3, num_val=1, num_test=1, img_size=24, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert len(files) == 10
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    mask = np.asarray(Image.open(a / "masks" / "train" / "00000.png"))
    assert mask.ndim == 2 and mask.max() < 4


# --------------------------------------------------------------------------- skill folder and TAO compatibility
def test_skill_folder_is_up_to_date():
    from segformer_trainer.skill import render

    expected = render()
    actual = {str(p.relative_to(SKILL_DIR)): p.read_text() for p in SKILL_DIR.rglob("*") if p.is_file()}
    assert sorted(actual) == sorted(expected), "run: automl-segformer skill --out src/segformer_trainer/skill"
    stale = [k for k in expected if expected[k] != actual[k]]
    assert not stale, f"stale skill files {stale}: run automl-segformer skill --out src/segformer_trainer/skill"


def test_skill_schema_matches_tao_format():
    schema = json.loads((SKILL_DIR / "schemas" / "train.schema.json").read_text())
    assert "Infinity" in (SKILL_DIR / "schemas" / "train.schema.json").read_text()
    lr = schema["properties"]["train"]["properties"]["optim"]["properties"]["lr"]
    assert lr["minimum"] == 0 and lr["maximum"] == math.inf and lr["automl_enabled"] is True
    assert len(schema["automl_default_parameters"]) == 16
    assert schema["default"] == default_spec("train")
    template = yaml.safe_load((SKILL_DIR / "references" / "spec_template_train.yaml").read_text())
    assert template["dataset"]["segment"]["label_transform"] == "None"
    assert template["train"]["tensorboard"]["enabled"] is False
    info = yaml.safe_load((SKILL_DIR / "references" / "skill_info.yaml").read_text())
    assert info["actions"]["train"]["command"] == "segformer train -e {config_path}"


def tao_dir() -> Path:
    if not TAO_SEGFORMER.is_dir():
        pytest.skip(f"TAO SegFormer skill not found at {TAO_SEGFORMER} (../shared/tao beside the checkout)")
    return TAO_SEGFORMER


@pytest.mark.parametrize("action", ["train", "evaluate", "inference", "export"])
def test_tao_templates_validate(action, tmp_path):
    path = tao_dir() / "references" / f"spec_template_{action}.yaml"
    cfg = load_config(path, [f"dataset.segment.root_dir={tmp_path}"])
    raw = yaml.safe_load(path.read_text())
    dumped = cfg.model_dump(mode="json")

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict) and v:
                out |= keys(v, prefix + k + ".")
        return out

    assert keys(raw) <= keys(dumped)
    assert cfg.dataset.segment.label_transform == raw["dataset"]["segment"]["label_transform"]


def test_schema_automl_lists_match_tao():
    tao = json.loads((tao_dir() / "schemas" / "train.schema.json").read_text())
    ours = json.loads((SKILL_DIR / "schemas" / "train.schema.json").read_text())
    assert sorted(ours["automl_default_parameters"]) == sorted(tao["automl_default_parameters"])
    assert sorted(ours["automl_disabled_parameters"]) == sorted(tao["automl_disabled_parameters"])


def test_label_transform_none_stays_a_string():
    data = default_spec("train")
    data["dataset"]["segment"]["label_transform"] = None
    assert build_config(data).dataset.segment.label_transform == "None"


def test_console_script_does_not_shadow_taos_segformer():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["automl-segformer"] == "segformer_trainer.cli:main"
    assert "segformer" not in scripts
    info = yaml.safe_load((SKILL_DIR / "references" / "skill_info.yaml").read_text())
    assert all(a["command"].startswith("segformer ") for a in info["actions"].values())  # TAO's contract
