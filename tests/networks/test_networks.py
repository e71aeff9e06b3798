"""Every TAO network, not only SegFormer: real skill folders from ``../shared/tao`` run end to end
with no ``--metric``, against the fake trainer speaking each network's KPI names in TAO's dialect
(``tests/helpers/skills.network_shim``), under a multi-fidelity algorithm whose promotions resume
at a rung.

Each run must reach a correct best_rec.json: the network's monitoring metric (verbatim, spaces,
brackets, slashes and all) and direction, the largest observed budget, and the exact checkpoint
of that epoch. The default run keeps two networks (a slash in a minimized loss's name, and reid
with a hand-off that runs); the rest are ``slow``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from automl.cli import main
from automl.networks import profile_for
from automl.results.best import read_best_rec
from automl.results.records import read_history
from automl.skill.folder import SkillDir
from automl.tao.lines import read_status
from tests.helpers.processes import ENV, cli
from tests.helpers.skills import network_shim, shared_tao

R = 9
# skill folder → (TAO's monitoring metric, direction), as ../shared/tao/NETWORKS.md publishes it.
NETWORKS = {
    "tao-train-mask-grounding-dino": ("[bbox] val_mAP@50", "max"),
    "tao-train-depth-anything-v2": ("val/loss", "min"),
    "tao-train-reid": ("cmc_rank_1", "max"),
    "tao-train-image-classification": ("val_acc_1", "max"),
    "tao-train-ocrnet": ("val_acc", "max"),
    "tao-train-rtdetr": ("val_mAP50", "max"),
    "tao-train-metric-learning-recognition": ("val Precision at Rank 1", "max"),
    "tao-train-pointpillars": ("loss", "min"),
    "tao-train-mask2former": ("mIoU", "max"),
}
# In CI's default run: a slash in the name and a minimized loss; reid with its hand-off. The
# bracketed/'@' name's MLflow encoding is unit-tested in test_tracking.py.
DEFAULT_RUN = ("tao-train-depth-anything-v2", "tao-train-reid")


def _data_flags(skill: SkillDir, root: Path, action: str = "train") -> list[str]:
    """``--data KEY=PATH`` for every required input the action declares, made on disk."""
    flags = []
    for key, spec_input in profile_for(skill).data_inputs(action).items():
        if spec_input.optional:
            continue
        path = root / key.replace("[", "_").replace("]", "")
        if spec_input.kind == "folder" or key.rsplit(".", 1)[-1].endswith("dir"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("data\n")
        flags += ["--data", f"{key}={path}"]
    return flags


def _run(name: str, tmp_path: Path, algo: str) -> tuple[SkillDir, Path]:
    """``automl run`` in its own process, as a user would: the shim on its PATH (Ray workers
    keep the PATH they started with, so the test session's own Ray would not see it)."""
    skill_dir = shared_tao() / name
    skill = SkillDir.load(skill_dir)
    shim = network_shim(tmp_path / "bin", skill_dir)
    ws = tmp_path / "ws"
    res = cli("run", "--skill-dir", str(skill_dir), "--workspace", str(ws),
              "--progress", "none", "--seed", "5", "--algo", algo, "--max-recommendations", "4",
              "--max-epochs", str(R), "--max-concurrent", "2", "--cpus-per-trial", "1",
              *_data_flags(skill, tmp_path / "data"),
              env={**ENV, "PATH": f"{shim}{os.pathsep}{ENV['PATH']}"}, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return skill, ws


def _check_best(ws: Path, metric: str, direction: str) -> dict:
    doc = read_best_rec(ws / "best_rec.json")
    assert doc["metric_name"] == metric and doc["direction"] == direction
    best = doc["best"]
    assert best["observed_budget"] == R
    _, records = read_history(ws / "history.json")
    full = [r.score(metric) for r in records if r.observed_budget == R and r.score(metric) is not None]
    assert best["score"] == (max(full) if direction == "max" else min(full))
    checkpoint = Path(best["checkpoint_uri"])
    assert checkpoint.is_file() and checkpoint.name.startswith(f"model_epoch_{R - 1:03d}_step_")
    # The trainer's other KPIs, under TAO's names, are in the history too.
    kpis = {k for r in records for result in r.results for k in result}
    assert metric in kpis and len(kpis) >= 3  # epoch, the metric, train_loss (and any others)
    return doc


def _check_resumed_at_a_rung(ws: Path) -> None:
    """A promoted trial's second segment resumed from its rung checkpoint: status.json goes on at
    the next epoch, and no epoch is trained twice."""
    resumed = 0
    for folder in (ws / "trials").iterdir():
        segments = sorted(folder.glob("spec_segment_*.yaml"))
        if len(segments) < 2:
            continue
        second = yaml.safe_load(segments[1].read_text())
        assert Path(second["train"]["resume_training_checkpoint_path"]).name.startswith("model_epoch_")
        epochs = [line.epoch for line in read_status(folder / "results" / "train" / "status.json")
                  if line.epoch is not None and line.message == "Training loop in progress"]
        assert epochs == sorted(set(epochs)) == list(range(len(epochs)))
        resumed += 1
    assert resumed >= 1


def _case(name: str):
    marks = () if name in DEFAULT_RUN else (pytest.mark.slow,)
    return pytest.param(name, id=name.removeprefix("tao-train-"), marks=marks)


@pytest.mark.parametrize("name", [_case(n) for n in NETWORKS])
def test_network_runs_with_its_own_metric(name, tmp_path, monkeypatch):
    metric, direction = NETWORKS[name]
    _, ws = _run(name, tmp_path, "asha" if direction == "max" else "hyperband")
    experiment = yaml.safe_load((ws / "experiment.yaml").read_text())
    assert experiment["metric"] == metric and experiment["network"]
    _check_best(ws, metric, direction)
    _check_resumed_at_a_rung(ws)
    if name == "tao-train-reid":
        _handoff_evaluate(ws, tmp_path, monkeypatch)


def _handoff_evaluate(ws: Path, tmp_path: Path, monkeypatch) -> None:
    """evaluate --run through the profile's keys: the checkpoint at spec_params' parent_model,
    the evaluate action's own inputs from --data (reid reads evaluate.test_dataset, which the
    trained spec does not name)."""
    skill_dir = shared_tao() / "tao-train-reid"
    skill = SkillDir.load(skill_dir)
    model_key = profile_for(skill).model_key("evaluate")
    required = [k for k, i in profile_for(skill).data_inputs("evaluate").items() if not i.optional]
    shim = network_shim(tmp_path / "bin-eval", skill_dir, require=(model_key, *required))
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    assert main(["handoff", "evaluate", str(ws)]) == 2  # its inputs are required
    code = main(["handoff", "evaluate", str(ws), "--run",
                 *_data_flags(skill, tmp_path / "eval-data", "evaluate")])
    assert code == 0
    spec = yaml.safe_load((ws / "handoff" / "evaluate" / "spec.yaml").read_text())
    best = read_best_rec(ws / "best_rec.json")["best"]
    assert model_key == "evaluate.checkpoint"
    assert spec["evaluate"]["checkpoint"] == best["checkpoint_uri"]
    status = read_status(ws / "handoff" / "evaluate" / "results" / "evaluate" / "status.json")
    assert any("cmc_rank_1" in line.kpi for line in status)


def test_a_network_without_a_published_metric_asks_for_one(tmp_path, capsys):
    skill_dir = shared_tao() / "tao-train-visual-changenet"
    code = main(["run", "--skill-dir", str(skill_dir), "--workspace", str(tmp_path / "ws")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "publishes no monitoring metric" in err and "--metric" in err
    assert not (tmp_path / "ws").exists()


def test_every_skill_folder_has_a_profile():
    """All 33 skills load into a profile; those in NETWORKS.md's table get its metric."""
    text = (shared_tao() / "NETWORKS.md").read_text()
    for folder in sorted(p for p in shared_tao().iterdir() if p.is_dir()):
        profile = profile_for(SkillDir.load(folder))
        row = next((line for line in text.splitlines() if line.startswith(f"| {folder.name} |")),
                   None)  # fast-foundation-stereo is not in the table (its network is)
        published = row.split("|")[3].strip() if row else ""
        if not row:
            assert profile.metric is None or profile.network_arch == "depth_net_stereo"
        elif published.startswith("`"):
            assert profile.metric == published.strip("`")
        else:
            assert profile.metric is None
        assert profile.resume_key.startswith("train.")


def test_space_names_the_network_and_its_metric(capsys):
    assert main(["space", "--skill-dir",
                 str(shared_tao() / "tao-train-metric-learning-recognition")]) == 0
    out = capsys.readouterr().out
    assert "network ml_recog: metric val Precision at Rank 1 (max" in out


def test_space_counts_a_list_searched_by_element_once(capsys):
    """classification's ``train.optim.betas`` is searched element by element (two sampled
    parameters) but is one schema key, one row: the title counts rows, by status."""
    skill = shared_tao() / "tao-train-image-classification"
    assert main(["space", "--skill-dir", str(skill), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(row["type"] == "list (elements)" for row in rows)
    assert main(["space", "--skill-dir", str(skill)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    searched = sum(row["status"] == "search" for row in rows)
    assert f"({len(rows)} parameters: {searched} search" in out, out
