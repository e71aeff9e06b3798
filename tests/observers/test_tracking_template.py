"""A new workspace store starts from an empty copy of the first one MLflow created (no 7 s of
schema migrations per experiment), and is then indistinguishable from a store MLflow made."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from automl.results.records import TrialRecord
from automl.observers.tracking import MlflowTracker
from automl.observers.tracking_store import store_template, workspace_tracking_uri


def _run(root: Path, name: str, template_dir: Path | None) -> Path:
    ws = root / name
    ws.mkdir(parents=True)
    tracker = MlflowTracker(workspace_tracking_uri(ws), "automl-x", ws, template_dir=template_dir)
    tracker.experiment_started({"experiment_id": "exp", "metric": "val_miou", "algo": "random"})
    record = TrialRecord(rec_id="t1", params={"lr": 0.1}, status="running",
                         folder=str(ws / "trials" / "t1"))
    tracker.trial_started(record)
    record.add_result(1, {"val_miou": 0.5})
    tracker.trial_result(record, {"val_miou": 0.5, "epoch": 1})
    record.status = "completed"
    tracker.trial_ended(record)
    tracker.experiment_ended({"metric_name": "val_miou", "best": None})
    tracker.close()
    return ws / "mlflow.db"


def _content(db: Path) -> dict:
    with sqlite3.connect(db) as conn:
        # Column and constraint lines compared as a set: MLflow's batch migrations emit a
        # table's constraints in hash order, so two stores MLflow made itself differ there.
        schema = sorted((kind, name, sorted((sql or "").replace(",", "").splitlines()))
                        for kind, name, sql in conn.execute("SELECT type, name, sql FROM sqlite_master"))
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        experiments = conn.execute("SELECT experiment_id, name, lifecycle_stage FROM experiments "
                                   "ORDER BY experiment_id").fetchall()
        (default,) = conn.execute("SELECT artifact_location FROM experiments "
                                  "WHERE experiment_id = 0").fetchone()
        runs = conn.execute("SELECT name, status FROM runs ORDER BY name").fetchall()
    # The Default experiment's artifacts stay inside each store's own workspace: compared as a
    # path relative to it.
    assert default.startswith(db.parent.as_uri() + "/"), default
    default = default.removeprefix(db.parent.as_uri())
    return {"schema": schema, "revision": revision, "experiments": experiments,
            "default_artifacts": default, "runs": runs}


def test_second_store_is_a_copy_and_the_same_as_a_fresh_one(tmp_path: Path, monkeypatch):
    """What it saves in time is measured by ``benchmarks/overhead.py`` (``+notemplate``); here:
    the second store is made by the copy, and nothing tells it from a store MLflow made."""
    from automl.observers import tracking_store

    copied: list[bool] = []
    copy = tracking_store.copy_store_template
    monkeypatch.setattr(tracking_store, "copy_store_template",
                        lambda db, template: copied.append(copy(db, template)) or copied[-1])
    cache = tmp_path / "root" / "_cache"
    first = _run(tmp_path / "root", "first", cache)
    template = store_template(cache)
    assert template.is_file()  # kept from the store MLflow created for the first workspace
    with sqlite3.connect(template) as conn:
        assert conn.execute("SELECT COUNT(*) FROM experiments").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)
    second = _run(tmp_path / "root", "second", cache)
    plain = _run(tmp_path / "plain", "third", None)  # no template: MLflow creates it
    assert _content(second) == _content(first) == _content(plain)
    assert copied == [False, True]  # the first store MLflow made; the second is the copy
    assert not list(cache.glob(".*tmp"))


def test_only_the_workspace_store_uses_the_template(tmp_path: Path):
    cache = tmp_path / "_cache"
    ws = tmp_path / "ws"
    ws.mkdir()
    other = tmp_path / "elsewhere" / "store.db"
    tracker = MlflowTracker(f"sqlite:///{other}", "automl-x", ws, template_dir=cache)
    tracker.experiment_started({"experiment_id": "ws", "metric": "val_miou"})
    tracker.close()
    assert other.is_file()
    assert not cache.exists()


def test_caches_only_beside_workspaces_in_the_workspace_root(fake_skill: Path, tmp_path: Path,
                                                           ray_session):
    """--workspace somewhere else writes nothing beside it; the workspace root keeps the cache."""
    from automl.cli import main

    elsewhere = tmp_path / "elsewhere"
    assert main(["run", "--skill-dir", str(fake_skill), "--workspace", str(elsewhere / "ws"),
                 "--progress", "none", "--max-recommendations", "1", "--max-epochs", "1"]) == 0
    assert sorted(p.name for p in elsewhere.iterdir()) == ["ws"]
    root = tmp_path / "root"
    assert main(["run", "--skill-dir", str(fake_skill), "--workspace-root", str(root),
                 "--name", "x", "--progress", "none", "--max-recommendations", "1",
                 "--max-epochs", "1"]) == 0
    assert (root / "_cache").is_dir() and any((root / "_cache").glob("mlflow-*-empty.db"))
