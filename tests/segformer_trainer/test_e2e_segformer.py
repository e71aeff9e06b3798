"""Real end-to-end experiments on the bundled SegFormer trainer (torch + transformers, CPU)."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
import yaml

from automl.tao.lines import read_status
from automl.tao.progress import final_status, read_results, runs
from automl.cli import main
from automl.results.records import read_history
from automl.results.best import read_best_rec
from automl.space.params import SearchSpace

pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("ray_session")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    from segformer_trainer.synth import generate

    return generate(tmp_path_factory.mktemp("data") / "synth", num_train=16, num_val=8,
                    num_test=4, num_classes=4, img_size=32, seed=0)


def test_automl_run_on_the_bundled_trainer(tiny_dataset, tmp_path):
    ws = tmp_path / "ws"
    code = main(["run", "--root-dir", str(tiny_dataset), "--workspace", str(ws),
                 "--algo", "bayesian", "--max-recommendations", "3", "--max-epochs", "2",
                 "--set", "dataset.segment.img_size=32", "--set", "dataset.segment.batch_size=8",
                 "--progress", "plain", "--seed", "11"])
    assert code == 0
    doc = read_best_rec(ws / "best_rec.json")
    best = doc["best"]
    assert math.isfinite(best["score"]) and 0.0 <= best["score"] <= 1.0
    assert best["observed_budget"] == 2
    ckpt = Path(best["checkpoint_uri"])
    # The file after 2 epochs: TAO names it with the 0-based epoch.
    assert ckpt.exists() and re.fullmatch(r"model_epoch_001_step_\d{5}\.pth", ckpt.name)
    records = read_history(ws / "history.json")[1]
    assert len(records) == 3 and all(r.status == "completed" for r in records)
    space = SearchSpace.from_json(json.loads(json.dumps(
        __import__("yaml").safe_load((ws / "experiment.yaml").read_text())["space"])))
    for record in records:
        space.validate(record.params)
    assert len({json.dumps(r.params, sort_keys=True) for r in records}) == 3
    # The trial's own status.json speaks TAO's dialect, which the engine read.
    lines = read_status(Path(records[0].folder) / "results" / "train" / "status.json")
    assert final_status(runs(lines)[-1]) == "SUCCESS"
    assert [r.epochs for r in read_results(lines) if "val_miou" in r.kpi] == [1, 2]


def test_tao_skill_folder_runs_with_the_bundled_trainer(tiny_dataset, tmp_path):
    """The real TAO skill folder, whose command is TAO's `segformer train -e {config_path}`,
    run as a user would with the bundled trainer: our console script is `automl-segformer`
    (never shadowing TAO's `segformer`), so a shim on PATH provides the name. A separate process:
    the session's Ray workers keep the PATH they started with."""
    from tests.helpers.skills import segformer_shim, shared_tao
    from tests.helpers.processes import ENV, cli

    skill = shared_tao() / "tao-train-segformer"
    ws = tmp_path / "tao"
    env = {**ENV, "PATH": os.pathsep.join([str(segformer_shim(tmp_path / "bin")), ENV["PATH"]])}
    res = cli("run", "--skill-dir", str(skill), "--root-dir", str(tiny_dataset),
              "--workspace", str(ws), "--algo", "random", "--max-recommendations", "2",
              "--max-epochs", "1", "--progress", "none", "--seed", "3",
              "--set", "model.backbone.type=mit_nano", "--set", "dataset.segment.img_size=32",
              "--set", "dataset.segment.num_classes=4", "--set", "dataset.segment.workers=0",
              "--set", "dataset.segment.label_transform=None", env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert read_best_rec(ws / "best_rec.json")["best"]["observed_budget"] == 1
    # TAO's template turns Weights & Biases on: off in every trial, said once.
    assert res.stdout.count("Weights & Biases logging is off") == 1
    for spec in ws.glob("trials/*/spec.yaml"):
        assert yaml.safe_load(spec.read_text())["wandb"]["enable"] is False


@pytest.mark.slow  # CI time budget; bohb's model is covered by test_algo_mf_tpe
def test_bohb_on_the_bundled_trainer_starts_from_the_schema_defaults(tiny_dataset, tmp_path, capsys):
    """`--algo bohb` through the real trainer: the first trial is the schema's default
    configuration (the prior), the progress says which model proposed each trial, a promoted
    trial resumes from its rung file, and the answer is chosen at the largest budget."""
    ws = tmp_path / "ws"
    code = main(["run", "--root-dir", str(tiny_dataset), "--workspace", str(ws),
                 "--algo", "bohb", "--max-recommendations", "4", "--max-epochs", "3",
                 "--max-concurrent", "1", "--set", "dataset.segment.img_size=32",
                 "--set", "dataset.segment.batch_size=8", "--progress", "plain", "--seed", "4"])
    assert code == 0
    out = capsys.readouterr().out
    started = [line for line in out.splitlines() if " started (budget " in line]
    assert "proposed by prior (default)" in started[0]
    assert all("proposed by " in line for line in started)
    records = sorted(read_history(ws / "history.json")[1], key=lambda r: r.index)
    experiment = yaml.safe_load((ws / "experiment.yaml").read_text())
    space = SearchSpace.from_json(experiment["space"])
    env = {**space.context, **space.pinned}
    for param in space.params:
        expected = param.nearest(param.default, env)
        env[param.name] = expected
        assert records[0].params[param.name] == pytest.approx(expected), param.name
    assert read_best_rec(ws / "best_rec.json")["best"]["observed_budget"] == 3
