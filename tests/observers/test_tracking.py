"""MlflowTracker against a real sqlite MLflow store (no mocks): runs, params, metrics, tags,
artifacts, PBT segments, secret redaction, and the cost of an event on the driver."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from automl.contract import KPI_NAMES_KEY
from automl.results.records import TrialRecord
from automl.secrets import redact_text, redact_tree
from automl.observers.tracking import MlflowTracker
from automl.observers.tracking_store import resolve_tracking_uri, workspace_tracking_uri

SECRET = "secret123"
METRIC = "val_miou"


def _experiment(workspace: Path) -> dict:
    return {
        "experiment_id": workspace.name, "algo": "bayesian", "metric": METRIC,
        "direction": "max", "budget": 3, "seed": 7, "max_recommendations": 3,
        "max_concurrent": 2, "skill_dir": "/skills/segformer", "dataset_root": "/data/seg",
        "plan": "Optuna TPE, FIFO, 3 epochs",
        "settings": {"algo": "bayesian", "metric": METRIC, "seed": 7,
                     "overrides": {"dataset.encryption_key": SECRET, "train.num_gpus": 1},
                     "pins": [f"encryption_key={SECRET}"], "ranges": ["train.optim.lr=1e-5:1e-2"],
                     "tracking_uri": None, "long": "x" * 7000},
        "space": [{"name": "train.optim.lr", "type": "float", "range": "[1e-05, 0.01]",
                   "scale": "log", "default": 6e-5, "source": "schema"},
                  {"name": "model.backbone.type", "type": "categorical",
                   "range": "mit_b0, mit_b1", "scale": "", "default": "mit_b0",
                   "source": "schema"}],
    }


def _trial(workspace: Path, rec_id: str, lr: float, status: str, failure_class=None,
           message: str = "", parent=None) -> TrialRecord:
    folder = workspace / "trials" / rec_id
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"encryption_key": SECRET, "train": {"num_epochs": 3, "optim": {"lr": lr}},
            "model": {"backbone": {"type": "mit_b0"}}, "results_dir": str(folder / "results")}
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    log_lines = [f"epoch {i} loss {1 / (i + 1):.3f}" for i in range(400)]
    log_lines.insert(390, f"loaded spec with encryption_key={SECRET}")
    (folder / "train.log").write_text("\n".join(log_lines) + "\n")
    return TrialRecord(rec_id=rec_id, params={"train.optim.lr": lr,
                                              "model.backbone.type": "mit_b0",
                                              "train.encryption_key": SECRET},
                       status=status, budget=3, failure_class=failure_class,
                       failure_message=message, parent=parent, folder=str(folder))


def _run_trial(tracker: MlflowTracker, record: TrialRecord, final_status: str,
               epochs=(1, 2, 3), nan_at: int | None = None) -> None:
    record.status = "running"
    tracker.trial_started(record)
    for epoch in epochs:
        miou = float("nan") if epoch == nan_at else 0.1 * epoch
        kpis = {"val_miou": miou, "val_loss": 1.0 / epoch, "train_loss": 2.0 / epoch}
        record.add_result(epoch, kpis)
        tracker.trial_result(record, {**kpis, KPI_NAMES_KEY: sorted(kpis), "epoch": epoch,
                                      "training_iteration": epoch,
                                      "trial_id": "abc_00000", "done": False,
                                      "config": {"x": 1}})
    record.status = final_status
    tracker.trial_ended(record)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An empty, migrated MLflow sqlite store (creating one costs ~2 s: copy it instead)."""
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture()
def workspace(tmp_path: Path, empty_store: Path) -> Path:
    ws = tmp_path / "segformer-bayesian-20260101-000000"
    ws.mkdir()
    (ws / "experiment.yaml").write_text("experiment_id: test\n")
    shutil.copyfile(empty_store, ws / "mlflow.db")
    return ws


@pytest.fixture()
def fresh_workspace(tmp_path: Path) -> Path:
    """A workspace without a store: the tracker creates it."""
    ws = tmp_path / "segformer-bayesian-20260101-000000"
    ws.mkdir()
    (ws / "experiment.yaml").write_text("experiment_id: test\n")
    return ws


def _client(workspace: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(workspace_tracking_uri(workspace))


def _all_runs(client, name: str):
    experiment = client.get_experiment_by_name(name)
    return client.search_runs([experiment.experiment_id], max_results=1000)


def test_parent_and_children_with_metrics_tags_artifacts_and_no_secret(fresh_workspace: Path):
    workspace = fresh_workspace
    uri = workspace_tracking_uri(workspace)
    tracker = MlflowTracker(uri, "automl-test", workspace)
    tracker.experiment_started(_experiment(workspace))
    ok = _trial(workspace, "t00000", 1e-4, "running")
    oom = _trial(workspace, "t00001", 5e-3, "running", "oom",
                 f"CUDA out of memory (spec encryption_key {SECRET}) " + "y" * 3000)
    rec = _trial(workspace, "t00002", 2e-4, "running", "infrastructure",
                 "the container exited with 137 after the last epoch")
    _run_trial(tracker, ok, "completed")
    _run_trial(tracker, oom, "failed", epochs=(1,))
    oom.failure_class = "oom"
    _run_trial(tracker, rec, "recovered", nan_at=None)
    best = {"schema_version": 1, "experiment_id": workspace.name, "metric_name": METRIC,
            "direction": "max",
            "best": {"rec_id": "t00000", "score": 0.3,
                     "specs": {"train": {"optim": {"lr": 1e-4}}, "encryption_key": SECRET},
                     "observed_budget": 3,
                     "checkpoint_uri": str(workspace / "trials/t00000/results/train/"
                                                       "model_epoch_003_step_00030.pth"),
                     "checkpoint_epoch": 3, "checkpoint_step": 30},
            "all_recs": [{"rec_id": "t00000", "score": 0.3, "status": "completed"},
                         {"rec_id": "t00001", "score": None, "status": "failed"},
                         {"rec_id": "t00002", "score": 0.3, "status": "recovered"}]}
    tracker.experiment_ended(best)
    tracker.close()

    client = _client(workspace)
    runs = _all_runs(client, "automl-test")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.info.run_name == workspace.name
    assert parent.info.status == "FINISHED"
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)

    # Parent: experiment params, settings flattened, limits, best metric/tags, artifacts.
    p = parent.data.params
    assert p["algo"] == "bayesian" and p["metric"] == METRIC and p["budget"] == "3"
    assert p["direction"] == "max" and p["seed"] == "7" and p["max_concurrent"] == "2"
    assert p["skill_dir"] == "/skills/segformer" and p["dataset_root"] == "/data/seg"
    assert p["settings.overrides.train.num_gpus"] == "1"
    assert "settings.overrides.dataset.encryption_key" not in p
    assert len(p["settings.long"]) <= 6000
    assert parent.data.metrics[f"best_{METRIC}"] == pytest.approx(0.3)
    assert parent.data.tags["best_rec_id"] == "t00000"
    assert parent.data.tags["best_checkpoint"].endswith("model_epoch_003_step_00030.pth")
    parent_artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"space.json", "best_rec.json"} <= parent_artifacts
    space = json.loads(_artifact(client, parent.info.run_id, "space.json"))
    assert [row["name"] for row in space] == ["train.optim.lr", "model.backbone.type"]
    best_doc = json.loads(_artifact(client, parent.info.run_id, "best_rec.json"))
    assert best_doc["best"]["rec_id"] == "t00000"
    assert best_doc["best"]["specs"]["encryption_key"] == "***"

    by_name = {c.info.run_name: c for c in children}
    assert set(by_name) == {"t00000", "t00001", "t00002"}
    ok_run, oom_run, rec_run = by_name["t00000"], by_name["t00001"], by_name["t00002"]

    # Children: dotted params (no secret), metric history per epoch, final metric, tags, status.
    assert ok_run.data.params == {"train.optim.lr": "0.0001", "model.backbone.type": "mit_b0"}
    history = client.get_metric_history(ok_run.info.run_id, METRIC)
    assert sorted(m.step for m in history) == [1, 2, 3]
    assert {m.step: m.value for m in history}[3] == pytest.approx(0.3)
    assert ok_run.data.metrics[METRIC] == pytest.approx(0.3)  # the latest = the final score
    assert ok_run.data.metrics["observed_budget"] == 3
    assert sorted(m.step for m in client.get_metric_history(ok_run.info.run_id, "train_loss")) \
        == [1, 2, 3]
    assert "training_iteration" not in ok_run.data.metrics
    assert ok_run.info.status == "FINISHED"
    assert ok_run.data.tags["status"] == "completed"
    assert ok_run.data.tags["recovered"] == "false"
    assert ok_run.data.tags["observed_budget"] == "3" and ok_run.data.tags["budget"] == "3"

    assert oom_run.info.status == "FAILED"
    assert oom_run.data.tags["failure_class"] == "oom"
    assert oom_run.data.tags["status"] == "failed"
    assert len(oom_run.data.tags["failure_message"]) <= 1000
    assert oom_run.data.tags["failure_message"].startswith("CUDA out of memory")
    assert oom_run.data.metrics["observed_budget"] == 1

    assert rec_run.info.status == "FINISHED"
    assert rec_run.data.tags["recovered"] == "true"
    assert rec_run.data.tags["status"] == "recovered"
    assert rec_run.data.tags["failure_class"] == "infrastructure"

    for run in children:
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"spec.yaml", "train_log_tail.txt"} <= names
        spec = yaml.safe_load(_artifact(client, run.info.run_id, "spec.yaml"))
        assert spec["encryption_key"] == "***"
        assert spec["train"]["num_epochs"] == 3
        tail = _artifact(client, run.info.run_id, "train_log_tail.txt").splitlines()
        assert 195 <= len(tail) <= 200 and tail[-1] == "epoch 399 loss 0.003"
        assert "encryption_key=***" in "\n".join(tail)

    # The secret appears nowhere: params, tags, metrics names, artifacts, the whole store.
    for run in runs:
        blob = json.dumps([run.data.params, run.data.tags, list(run.data.metrics)])
        assert SECRET not in blob
        for artifact in client.list_artifacts(run.info.run_id):
            assert SECRET not in _artifact(client, run.info.run_id, artifact.path)
    for file in workspace.rglob("*"):
        if file.is_file() and "trials" not in file.parts:
            assert SECRET.encode() not in file.read_bytes(), file
    with sqlite3.connect(workspace / "mlflow.db") as db:
        for (table,) in db.execute("select name from sqlite_master where type='table'"):
            for row in db.execute(f"select * from '{table}'"):
                assert SECRET not in repr(row), table


def _artifact(client, run_id: str, path: str) -> str:
    """Read an artifact straight from the local artifact folder (file:// beside the store)."""
    uri = client.get_run(run_id).info.artifact_uri
    assert uri.startswith("file://"), uri
    return (Path(urlparse(uri).path) / path).read_text(encoding="utf-8")


def test_pbt_changed_params_start_a_new_segment_run(workspace: Path, caplog):
    tracker = MlflowTracker(workspace_tracking_uri(workspace), "automl-pbt", workspace)
    tracker.experiment_started({**_experiment(workspace), "algo": "pbt"})
    record = _trial(workspace, "t00003", 1e-4, "running")
    with caplog.at_level(logging.WARNING, logger="automl.observers.tracking"):
        _run_trial(tracker, record, "paused", epochs=(1, 2))
        record.status = "running"
        tracker.trial_started(record)  # same params (a pause/resume): same run
        # Exploit: t00003 continues from t00001's checkpoint with a perturbed copy of its config.
        record.params = {**record.params, "train.optim.lr": 2.4e-4, "model.backbone.type": "mit_b1"}
        record.parent = "t00001"
        _run_trial(tracker, record, "completed", epochs=(3, 4))
        tracker.experiment_ended({"metric_name": METRIC, "best": None, "all_recs": []})
        tracker.close()
    assert not [r for r in caplog.records if r.name == "automl.observers.tracking"], caplog.text

    client = _client(workspace)
    children = sorted((r for r in _all_runs(client, "automl-pbt")
                       if "mlflow.parentRunId" in r.data.tags),
                      key=lambda r: int(r.data.tags["segment"]))
    assert [c.info.run_name for c in children] == ["t00003", "t00003/segment-1"]
    first, second = children
    assert first.data.params["train.optim.lr"] == "0.0001"
    assert first.data.params["model.backbone.type"] == "mit_b0"
    assert second.data.params["train.optim.lr"] == "0.00024"
    assert second.data.params["model.backbone.type"] == "mit_b1"
    assert second.data.tags["parent_trial"] == "t00001"
    assert second.data.tags["segment"] == "1"
    assert second.data.tags["previous_segment_run_id"] == first.info.run_id
    assert first.data.tags["next_segment_run_id"] == second.info.run_id
    assert first.info.status == "FINISHED" and second.info.status == "FINISHED"
    assert sorted(m.step for m in client.get_metric_history(first.info.run_id, METRIC)) == [1, 2]
    assert sorted(m.step for m in client.get_metric_history(second.info.run_id, METRIC)) == [3, 4]
    assert second.data.metrics["observed_budget"] == 4


def test_resume_continues_the_same_parent_and_child(workspace: Path):
    uri = workspace_tracking_uri(workspace)
    first = MlflowTracker(uri, "automl-resume", workspace)
    first.experiment_started(_experiment(workspace))
    record = _trial(workspace, "t00000", 1e-4, "running")
    record.status = "running"
    first.trial_started(record)
    record.add_result(1, {"val_miou": 0.1})
    first.trial_result(record, {"val_miou": 0.1, "epoch": 1})
    first.close()  # the driver died: runs end KILLED

    second = MlflowTracker(uri, "automl-resume", workspace)
    second.experiment_started({**_experiment(workspace), "max_concurrent": 4})  # changed: kept
    second.trial_started(record)
    record.add_result(2, {"val_miou": 0.2})
    record.status = "completed"
    second.trial_ended(record)  # epoch 2 is backfilled from the record
    second.experiment_ended({"metric_name": METRIC, "best": None, "all_recs": []})
    second.close()

    client = _client(workspace)
    runs = _all_runs(client, "automl-resume")
    assert len(runs) == 2
    child = next(r for r in runs if "mlflow.parentRunId" in r.data.tags)
    assert child.info.status == "FINISHED"
    assert sorted(m.step for m in client.get_metric_history(child.info.run_id, METRIC)) == [1, 2]


def test_a_trial_set_aside_on_resume_says_so(workspace: Path):
    """A trial Tune never saved is set aside by ``automl resume``: its run, ended KILLED and
    tagged ``interrupted`` when the driver died, is tagged ``set_aside`` with the folder it went
    to; the other trial's run is continued as usual."""
    uri = workspace_tracking_uri(workspace)
    first = MlflowTracker(uri, "automl-aside", workspace)
    first.experiment_started(_experiment(workspace))
    kept, aside = (_trial(workspace, rec_id, 1e-4, "running") for rec_id in ("t00000", "t00001"))
    for record in (kept, aside):
        record.status = "running"
        first.trial_started(record)
    first.close()  # the driver died: both runs end KILLED, interrupted

    second = MlflowTracker(uri, "automl-aside", workspace)
    second.experiment_started(_experiment(workspace))
    second.trials_set_aside(["t00001", "never-had-a-run"])
    second.trial_started(kept)
    kept.add_result(1, {"val_miou": 0.3})
    kept.status = "completed"
    second.trial_ended(kept)
    second.experiment_ended({"metric_name": METRIC, "best": None, "all_recs": []})
    second.close()

    runs = {r.data.tags.get("automl.rec_id"): r for r in _all_runs(_client(workspace), "automl-aside")}
    assert runs["t00001"].info.status == "KILLED"
    assert runs["t00001"].data.tags["status"] == "set_aside"
    assert runs["t00001"].data.tags["set_aside_folder"] == str(workspace / "abandoned" / "t00001")
    assert runs["t00000"].info.status == "FINISHED" and runs["t00000"].data.tags["status"] == "completed"


def test_a_broken_store_never_raises(tmp_path: Path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="automl.observers.tracking"):
        tracker = MlflowTracker(f"sqlite:///{blocker}/sub/mlflow.db", "x", tmp_path)
        tracker.experiment_started(_experiment(tmp_path))
        record = _trial(tmp_path, "t00000", 1e-4, "running")
        _run_trial(tracker, record, "completed")
        tracker.experiment_ended({"metric_name": METRIC, "best": None})
        tracker.trial_result(None, {"epoch": 1})  # a caller bug: a warning, not an exception
        tracker.experiment_started(None)
        tracker.close()
    assert "MLflow tracking is off" in caplog.text
    assert "trial_result failed" in caplog.text


def test_events_are_logged_in_the_background(workspace: Path):
    """The observer calls only snapshot and enqueue; MLflow work happens in the background and
    every event lands once it drains. What an event costs the driver is measured by
    ``benchmarks/overhead.py`` (controller overhead with and without MLflow), not here."""
    tracker = MlflowTracker(workspace_tracking_uri(workspace), "automl-cost", workspace)
    tracker.experiment_started(_experiment(workspace))
    records = [_trial(workspace, f"t{i:05d}", 1e-4 * (i + 1), "running") for i in range(10)]
    start = time.perf_counter()
    events = 0
    for record in records:
        record.status = "running"
        tracker.trial_started(record)
        for epoch in range(1, 11):
            record.add_result(epoch, {"val_miou": 0.01 * epoch, "val_loss": 1 / epoch})
            tracker.trial_result(record, {"val_miou": 0.01 * epoch, "val_loss": 1 / epoch,
                                          KPI_NAMES_KEY: ["val_loss", "val_miou"],
                                          "epoch": epoch})
        record.status = "completed"
        tracker.trial_ended(record)
        events += 12
    per_event = (time.perf_counter() - start) / events
    drain = time.perf_counter()
    tracker.experiment_ended({"metric_name": METRIC, "best": None, "all_recs": []})
    tracker.close()
    drained = time.perf_counter() - drain
    print(f"driver cost {per_event * 1e6:.0f} µs/event; background drain {drained:.2f} s "
          f"for {events} events")
    runs = _all_runs(_client(workspace), "automl-cost")
    assert len(runs) == 11


def test_redaction_helpers():
    secrets: set[str] = set()
    doc = {"a": {"encryption_key": "k3y-value", "ok": 1}, "pins": ["api_token=abcd", "x=1"],
           "uri": "http://bob:pw123@host:5000"}
    safe = redact_tree(doc, secrets)
    assert safe == {"a": {"encryption_key": "***", "ok": 1}, "pins": ["api_token=***", "x=1"],
                    "uri": "http://bob:***@host:5000"}
    assert secrets == {"k3y-value", "abcd"}
    assert redact_text("key k3y-value and abcd", secrets) == "key *** and ***"


def test_default_experiment_artifacts_stay_in_the_workspace(workspace: Path, tmp_path: Path,
                                                           monkeypatch):
    """MLflow creates the Default experiment at the opener's ./mlruns/0; the tracker moves it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    tracker = MlflowTracker(workspace_tracking_uri(workspace), "automl-test", workspace)
    tracker.experiment_started(_experiment(workspace))
    tracker.close()
    default = _client(workspace).get_experiment("0")
    assert default.artifact_location == (workspace / "mlartifacts" / "0").resolve().as_uri()
    assert not (elsewhere / "mlruns").exists()


def test_tracking_uri_resolution(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(tmp_path) == f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert resolve_tracking_uri(tmp_path) == "http://env:5000"
    assert resolve_tracking_uri(tmp_path, "http://flag:5000") == "http://flag:5000"


def test_importing_tracking_does_not_import_torch_or_mlflow():
    code = ("import sys, automl.observers.tracking, automl.commands.ui; "
            "assert 'torch' not in sys.modules; assert 'mlflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["[bbox] val_mAP@50", "val Precision at Rank 1", "val/loss",
                                  "a:b", "val_miou", "[segm] val_mAP@50-95"])
def test_kpi_names_reach_mlflow_reversibly(name):
    """MLflow refuses brackets and '@' in metric names: TAO's names are encoded, readable back."""
    from mlflow.utils.validation import validate_param_and_metric_name

    from automl.observers.tracking import kpi_name, mlflow_name

    logged = mlflow_name(name)
    assert validate_param_and_metric_name(logged) and kpi_name(logged) == name
    assert mlflow_name("[bbox] val_mAP@50") != mlflow_name("_bbox_ val_mAP_50")
