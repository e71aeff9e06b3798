"""``automl report``: one self-contained HTML file (views.js, style.css and the experiment's
document inline), from a real tiny experiment and from crafted histories. What the views draw
from the document is tested in Chromium (tests/service/test_service_web.py); here: the document, the
file's self-containment and escaping, and the errors."""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

import pytest

from automl.commands.report import (
    CSP,
    document,
    importances,
    load,
    main_report,
    write_report,
)
from automl.errors import UserError
from automl.results.failures import HINTS
from automl.results.records import TrialRecord, read_history, write_history
from automl.results.workspace import Workspace
from automl.space.params import Param, SearchSpace
from tests.helpers.skills import FAKE_SCHEMA, make_fake_skill

MODES = ["ok", "nan", "exit1_after_last", "data"]


def embedded(page: str) -> dict:
    """The document the file embeds (what views.js draws)."""
    match = re.search(r'<script type="application/json" id="automl-data">(.*?)</script>', page, re.DOTALL)
    assert match, "no embedded data"
    return json.loads(match.group(1))


def assert_self_contained(page: str) -> None:
    """One file: no reference to another file or host, the policy forbids any fetch."""
    assert f'content="{CSP}"' in page and "connect-src" not in CSP and "default-src 'none'" in CSP
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", page.split('id="automl-data"')[0])
    assert "class Dashboard" in page and "Views.report(" in page  # the page's own views
    assert page.count("</script>") == 2  # the data and the views; nothing closes them early


# --------------------------------------------------------------------------------------------
# a real experiment: the fake trainer's failure mode is a searched parameter, so one run of six
# trials has completed, recovered and failed (diverged after 2 epochs, data error at start) ones


@pytest.fixture(scope="module")
def mixed_workspace(tmp_path_factory, ray_session) -> Path:
    from automl.cli import main

    root = tmp_path_factory.mktemp("report")
    skill = make_fake_skill(root / "skill")
    schema = copy.deepcopy(FAKE_SCHEMA)
    schema["automl_default_parameters"].append("fake.mode")
    schema["properties"]["fake"]["properties"]["mode"] = {
        "type": "categorical", "enum": MODES, "default": "ok", "automl_enabled": True}
    (skill / "schemas" / "train.schema.json").write_text(json.dumps(schema))
    workspace = root / "ws"
    code = main(["run", "--skill-dir", str(skill), "--workspace", str(workspace), "--progress",
                 "none", "--algo", "random", "--max-recommendations", "6", "--max-epochs", "3",
                 "--seed", "7", "--stop-after-failures", "100"])
    assert code == 0
    return workspace


def test_report_of_a_real_experiment(mixed_workspace):
    _, records = read_history(mixed_workspace / "history.json")
    statuses = {r.status for r in records}  # seed 7: completed, recovered, failed (nan and data)
    assert len(records) == 6 and "failed" in statuses and statuses & {"completed", "recovered"}

    path = write_report(mixed_workspace)
    assert path == mixed_workspace / "report" / "index.html"
    assert sorted(p.name for p in path.parent.iterdir()) == ["index.html"]  # one file
    page = path.read_text(encoding="utf-8")
    assert_self_contained(page)
    doc = embedded(page)
    experiment = doc["experiment"]
    assert experiment["state"] == "SUCCEEDED" and experiment["algorithm"] == "random"
    assert experiment["metric"] == "val_miou" and experiment["progress"]["trials_total"] == 6
    best = json.loads((mixed_workspace / "best_rec.json").read_text())["best"]
    assert experiment["progress"]["best"]["rec_id"] == best["rec_id"]
    assert doc["analysis"]["best_rec"]["best"]["rec_id"] == best["rec_id"]
    assert {t["rec_id"]: t["status"] for t in doc["trials"]} == {r.rec_id: r.status for r in records}
    for trial in doc["trials"]:
        if trial["failure_class"]:
            assert trial["hint"] == HINTS[trial["failure_class"]]
    assert set(doc["analysis"]["importances"]) <= {"hp.x", "hp.y", "hp.c", "fake.mode"}
    assert {a["name"] for a in doc["analysis"]["params"]} >= {"hp.x", "fake.mode"}
    # each trial's page: its spec, status lines, log tail and checkpoints, from its folder
    details = doc["details"][best["rec_id"]]
    assert details["spec"] and details["status_lines"] and details["checkpoints"]
    assert any(c["finished_epoch"] for c in details["checkpoints"])


# --------------------------------------------------------------------------------------------
# errors


def test_not_a_workspace(tmp_path):
    with pytest.raises(UserError, match="not an automl workspace"):
        write_report(tmp_path)
    with pytest.raises(UserError):
        main_report(argparse.Namespace(workspace=tmp_path / "missing", out=None))


def test_workspace_without_history(tmp_path):
    Workspace(tmp_path).write_experiment({"experiment_id": "x", "metric": "val_miou"})
    with pytest.raises(UserError, match="no history.json") as info:
        write_report(tmp_path)
    assert "\n" not in str(info.value)


def test_unreadable_history(tmp_path):
    Workspace(tmp_path).write_experiment({"experiment_id": "x", "metric": "val_miou"})
    (tmp_path / "history.json").write_text("{not json")
    with pytest.raises(UserError, match="unreadable"):
        write_report(tmp_path)


# --------------------------------------------------------------------------------------------
# crafted histories (no Ray): a multi-fidelity run, secrets, markup, degenerate cases

SPACE = SearchSpace(
    params=(Param("train.optim.lr", "float", 1e-6, 1e-3, log=True),
            Param("dataset.batch_size", "int", 1, 8),
            Param("model.head", "categorical", choices=("mlp", "<script>alert(1)</script>"))),
    pinned={"model.encryption_key": "hunter2-pinned"},
)


def curve(epochs: int, level: float, nan_at: int | None = None) -> list[dict[str, float]]:
    return [{"epoch": e, "val_miou": float("nan") if e == nan_at else level * (1 - 0.5 / (1 + e)),
             "val_loss": 1 - level} for e in range(1, epochs + 1)]


def craft(path: Path, records: list[TrialRecord], space: SearchSpace = SPACE, budget: int = 9,
          algo: str = "asha") -> Path:
    workspace = Workspace(path)
    path.mkdir(parents=True, exist_ok=True)
    experiment = {"experiment_id": path.name, "algo": algo, "metric": "val_miou", "direction": "max",
                  "budget": budget, "seed": 11, "max_recommendations": len(records)}
    workspace.write_experiment({**experiment, "space": space.to_json()})
    write_history(workspace.history, {**experiment, "plan": f"{algo} (crafted)"}, records)
    return path


def asha_records() -> list[TrialRecord]:
    records = []
    lrs = [1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 5e-5]
    for i, lr in enumerate(lrs, start=1):
        level = 0.9 - abs(lr - 1e-4) * 500
        epochs, status = {1: (1, "stopped"), 2: (1, "stopped"), 3: (3, "stopped"), 4: (9, "completed"),
                          5: (9, "completed"), 6: (3, "stopped"), 7: (2, "failed"), 8: (9, "recovered")}[i]
        params = {"train.optim.lr": lr, "dataset.batch_size": 1 + i % 8,
                  "model.head": SPACE.params[2].choices[i % 2], "model.encryption_key": "hunter2-pinned"}
        record = TrialRecord(rec_id=f"t{i:02d}", params=params, index=i, status=status, budget=epochs,
                             results=curve(epochs, level, nan_at=2 if status == "failed" else None),
                             rung=epochs, started_at=1000.0 + i, ended_at=1010.0 + i)
        if status == "failed":
            record.failure_class, record.failure_message = "diverged", "loss is nan; token=s3cr3t-value"
        if status == "recovered":
            record.failure_class, record.failure_message = "error", "exit 1 after training <cleanup>"
        records.append(record)
    return records


def test_crafted_multi_fidelity_report(tmp_path, capsys):
    records = asha_records()
    workspace = craft(tmp_path / "asha", records)
    out = tmp_path / "out"
    torch_loaded = "torch" in sys.modules
    assert main_report(argparse.Namespace(workspace=workspace, out=out)) == 0
    # in-process check: meaningful when nothing earlier in the session imported torch
    assert torch_loaded or "torch" not in sys.modules
    path = out / "index.html"
    assert capsys.readouterr().out.strip() == f"report: {path}"
    assert not (workspace / "report").exists()
    page = path.read_text(encoding="utf-8")
    assert_self_contained(page)
    # secrets never embedded; markup only as JSON data, its "<" escaped
    assert "hunter2" not in page and "s3cr3t" not in page
    assert "<script>alert" not in page and "\\u003cscript>alert(1)\\u003c/script>" in page
    doc = embedded(page)
    trials = {t["rec_id"]: t for t in doc["trials"]}
    assert trials["t07"]["failure_message"] == "loss is nan; token=***"
    assert trials["t01"]["params"]["model.encryption_key"] == "***"
    assert trials["t07"]["results"][1]["val_miou"] is None  # NaN: JSON null, skipped by the views
    # no best_rec.json: the best follows best_rec.json's rule over history.json
    assert doc["analysis"]["best_rec"] is None and "not written yet" in doc["analysis"]["best_note"]
    assert doc["experiment"]["progress"]["best"]["rec_id"] == "t05"  # lr 1e-4 at 9 epochs
    # importance over the three trials observed at 9 epochs; the secret pinned key is left out
    result, text = importances(load(workspace))
    assert set(result) == {"train.optim.lr", "dataset.batch_size", "model.head"}
    assert "3 trials with a finite val_miou at the largest budget (9 epochs)" in text
    assert list(doc["analysis"]["importances"]) == sorted(result, key=lambda k: -result[k])
    axes = {a["name"]: a for a in doc["analysis"]["params"]}
    assert axes["train.optim.lr"]["log"] and axes["train.optim.lr"]["low"] == 1e-6
    assert axes["model.head"]["choices"] == ["mlp", "<script>alert(1)</script>"]
    assert "model.encryption_key" not in axes


def test_importance_needs_two_scored_trials(tmp_path):
    records = asha_records()
    for record in records[1:]:
        record.results, record.status = [], "failed"
        record.failure_class, record.failure_message = "data", "data: no images"
    doc = document(load(craft(tmp_path / "one", records)))
    assert doc["analysis"]["importances"] == {}
    assert "at least 2 trials" in doc["analysis"]["importance_note"]


def test_importance_with_constant_parameters(tmp_path):
    records = [r for r in asha_records() if r.observed_budget == 9]
    for record in records:
        record.params.update({"dataset.batch_size": 4, "model.head": "mlp", "train.optim.lr": 1e-4})
    workspace = craft(tmp_path / "constant", records)
    result, text = importances(load(workspace))
    assert result == {} and "No hyperparameter varies" in text


def test_no_finite_scores_still_reports(tmp_path):
    records = asha_records()
    for record in records:
        record.results, record.status = [], "failed"
        record.failure_class, record.failure_message = "oom", "CUDA out of memory"
    page = write_report(craft(tmp_path / "none", records)).read_text(encoding="utf-8")
    doc = embedded(page)
    assert doc["experiment"]["progress"]["best"] is None
    assert all(t["score"] is None and t["hint"] == HINTS["oom"] for t in doc["trials"])


def test_pareto_front_and_baseline_reach_the_views(tmp_path):
    """best_rec.json's comparison_to_baseline and pareto_front (written by multi-objective
    runs) are passed on as written, for the header and the Pareto view."""
    from automl.commands.report import analysis

    data = load(craft(tmp_path / "mo", asha_records()))
    data.best_doc = {"best": None, "comparison_to_baseline": {"baseline_score": 0.5, "gain": 0.3},
                     "pareto_front": [{"rec_id": "t04", "scores": {"val_miou": 0.8, "val_loss": 0.2}}]}
    out = analysis(data)["best_rec"]
    assert out["comparison_to_baseline"]["gain"] == 0.3 and out["pareto_front"][0]["rec_id"] == "t04"
