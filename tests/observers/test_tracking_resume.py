"""No result is lost to MLflow: kill the controller mid-run, `automl resume`, then MLflow has every
result the journal has (automl.observers.tracking_worker: MLflow in its own process, replay on resume).

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

from automl.results.records import read_history
from tests.helpers.processes import cli, kill_controller, start_run, wait_until

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
        if ppid == parent and b"automl.observers.tracking_worker" in cmdline:
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


# worker-first is slow-marked (CI's time budget); the controller kill is the case.
@pytest.mark.parametrize("kill", [pytest.param("worker-first", marks=pytest.mark.slow),
                                  "controller"])
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


def test_replay_logs_only_the_ends_mlflow_lacks(tmp_path: Path):
    """MlflowTracker.replay (what `automl resume` sends): a trial whose run the dead controller
    left open (ended KILLED, ``interrupted``) or never created gets its end and every result;
    a trial whose end MLflow has is left alone."""
    from mlflow.tracking import MlflowClient

    from automl.results.records import TrialRecord
    from automl.observers.tracking import MlflowTracker
    from automl.observers.tracking_store import workspace_tracking_uri

    ws = tmp_path / "ws"
    ws.mkdir()
    uri = workspace_tracking_uri(ws)
    experiment = {"experiment_id": "ws", "metric": "val_miou", "direction": "max"}

    def record(rec_id: str, epochs: int, status: str) -> TrialRecord:
        rec = TrialRecord(rec_id=rec_id, params={"hp.x": 0.5}, index=int(rec_id[1:]),
                          status=status, budget=2, folder=str(ws / "trials" / rec_id))
        for epoch in range(1, epochs + 1):
            rec.add_result(epoch, {"val_miou": 0.1 * epoch})
        return rec

    first = MlflowTracker(uri, "automl-x", ws)
    first.experiment_started(experiment)
    done, cut = record("t1", 2, "running"), record("t2", 1, "running")
    for rec in (done, cut):
        first.trial_started(rec)
        first.trial_result(rec, {"val_miou": 0.1, "epoch": 1})
    done.status = "completed"
    first.trial_ended(done)
    first.close()  # the controller died here: t2's run ends KILLED, "interrupted"

    # The journal: t2 completed at 2 epochs, t3 completed without MLflow ever hearing of it.
    journal = [done, record("t2", 2, "completed"), record("t3", 2, "completed")]
    second = MlflowTracker(uri, "automl-x", ws)
    second.experiment_started(experiment)
    second.replay(journal)
    second.close()

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("automl-x").experiment_id],
                              "tags.`automl.kind` = 'trial'")
    by_rec = {r.data.tags["automl.rec_id"]: r for r in runs}
    assert sorted(by_rec) == ["t1", "t2", "t3"] and len(runs) == 3
    for rec_id, run in by_rec.items():
        assert run.data.tags["status"] == "completed", rec_id
        assert run.info.status == "FINISHED", rec_id
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_miou"))
        assert steps == [1, 2], rec_id
    assert by_rec["t1"].info.end_time < by_rec["t3"].info.start_time  # t1 was not logged again
