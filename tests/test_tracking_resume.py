"""No result is lost to MLflow: kill the controller mid-run, `automl resume`, then MLflow has every
result the journal has (automl.tracking_worker: MLflow in its own process, replay on resume).

``worker-first`` kills the logging process before the controller, so trial ends that the journal
has never reach MLflow in the first run: only the resume's replay can put them there.
``controller`` kills the controller's process group alone: the logging process (own session)
writes what reached its pipe and exits; the resume waits for it (one worker per workspace).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from automl.records import read_history
from tests.helpers import cli, kill_controller, start_run, wait_until

FINISHED = ("completed", "failed", "recovered", "stopped")


def _finished(ws: Path) -> int:
    try:
        return sum(r.status in FINISHED for r in read_history(ws / "history.json")[1])
    except (OSError, ValueError):
        return 0


def _tracking_workers(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"automl.tracking_worker" in cmdline:
            pids.append(int(entry.name))
    return pids


def _mlflow_results(ws: Path) -> dict[str, tuple[dict[int, float], str]]:
    """rec_id -> ({epoch: val_miou over all its runs}, status tag of its latest run)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("automl-fake-skill")
    runs = client.search_runs([experiment.experiment_id], "tags.`automl.kind` = 'trial'",
                              max_results=1000)
    out: dict[str, tuple[dict[int, float], str]] = {}
    for run in runs:
        rec_id = run.data.tags["automl.rec_id"]
        steps, _ = out.get(rec_id, ({}, ""))
        steps.update({int(m.step): m.value
                      for m in client.get_metric_history(run.info.run_id, "val_miou")})
        out[rec_id] = (steps, run.data.tags.get("status", ""))
    parents = client.search_runs([experiment.experiment_id], "tags.`automl.kind` = 'experiment'")
    assert [p.info.status for p in parents] == ["FINISHED"]
    return out


@pytest.mark.parametrize("kill", ["worker-first", "controller"])
def test_mlflow_has_every_journaled_result_after_resume(fake_skill, tmp_path, kill):
    ws = tmp_path / "ws"
    total = 6
    proc = start_run(fake_skill, ws, "--algo", "random", "--max-recommendations", str(total),
                     "--max-epochs", "2", "--max-concurrent", "2", "--set", "fake.epoch_s=0.3",
                     "--seed", "3")
    if kill == "worker-first":
        wait_until(lambda: _finished(ws) >= 1, proc, timeout=120, what="a trial end")
        (worker,) = wait_until(lambda: _tracking_workers(proc.pid), proc, timeout=30,
                               what="the logging process")
        os.kill(worker, signal.SIGKILL)
        seen = _finished(ws)
        wait_until(lambda: _finished(ws) >= seen + 2, proc, timeout=120,
                   what="two trial ends MLflow never saw")
    else:
        wait_until(lambda: _finished(ws) >= 2, proc, timeout=120, what="two trial ends")
    kill_controller(proc)

    resumed = cli("resume", str(ws), "--progress", "none", timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    records = read_history(ws / "history.json")[1]
    assert len(records) == total and all(r.status == "completed" for r in records)
    logged = _mlflow_results(ws)
    for record in records:
        steps, status = logged.get(record.rec_id, ({}, "missing"))
        journaled = {int(r["epoch"]): r["val_miou"] for r in record.results}
        assert steps == pytest.approx(journaled), record.rec_id
        assert status == record.status, record.rec_id
