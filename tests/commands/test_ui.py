"""`automl ui`: workspace resolution, one-line errors, and a real server smoke test
(start on a free port, answer HTTP 200, list the run through the REST API, stop on Ctrl-C)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from automl.errors import UserError
from launchers.gpus import free_port
from automl.commands.ui import find_workspace, group_alive, runs_path, serve, server_command, store_uri


def _workspace(root: Path, name: str, with_store: bool = False) -> Path:
    ws = root / name
    ws.mkdir(parents=True)
    (ws / "experiment.yaml").write_text(f"experiment_id: {name}\n")
    if with_store:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
        experiment = client.create_experiment(
            "automl", artifact_location=(ws / "mlartifacts").as_uri())
        run = client.create_run(experiment, run_name=name)
        client.log_param(run.info.run_id, "train.optim.lr", "0.0001")
        client.log_metric(run.info.run_id, "val_miou", 0.42, step=3)
        client.set_terminated(run.info.run_id, "FINISHED")
    return ws


def test_most_recent_workspace_and_one_line_errors(tmp_path: Path):
    root = tmp_path / "automl-workspaces"
    with pytest.raises(UserError, match="no workspace found"):
        find_workspace(None, root)
    old = _workspace(root, "a-old")
    new = _workspace(root, "b-new")
    (root / "not-a-workspace").mkdir()
    os.utime(old / "experiment.yaml", (time.time() + 100, time.time() + 100))
    assert find_workspace(None, root) == old.resolve()
    os.utime(new / "experiment.yaml", (time.time() + 200, time.time() + 200))
    assert find_workspace(None, root) == new.resolve()
    assert find_workspace(new, root) == new.resolve()
    with pytest.raises(UserError, match="no such folder"):
        find_workspace(tmp_path / "missing", root)
    with pytest.raises(UserError, match=r"no MLflow store \(mlflow.db\)") as err:
        serve(new)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="no MLflow store"):
        store_uri(new)


def test_runs_path_names_the_workspace_experiment(tmp_path: Path):
    assert runs_path(tmp_path) is None  # no store yet
    ws = _workspace(tmp_path, "ws", with_store=True)
    from mlflow.tracking import MlflowClient

    experiment_id = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}").get_experiment_by_name(
        "automl").experiment_id
    assert runs_path(ws) == f"/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def test_port_in_use_is_a_user_error(tmp_path: Path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "mlflow.db").write_bytes(b"")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(UserError, match="pass another --port"):
            serve(ws, port=busy.getsockname()[1])


def test_server_command_is_an_argument_list_with_one_worker(tmp_path: Path):
    argv = server_command("sqlite:////x/mlflow.db", tmp_path, 5001, "127.0.0.1")
    assert argv[:4] == [sys.executable, "-m", "mlflow", "server"]
    assert argv[argv.index("--backend-store-uri") + 1] == "sqlite:////x/mlflow.db"
    assert argv[argv.index("--workers") + 1] == "1"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "5001"


def test_ui_serves_the_workspace_runs_and_stops_on_ctrl_c(tmp_path: Path):
    """The real thing: `main_ui` in a subprocess, like `automl ui` in a terminal."""
    root = tmp_path / "automl-workspaces"
    ws = _workspace(root, "segformer-bayesian-20260101-000000", with_store=True)
    port = free_port("127.0.0.1")
    code = ("import sys, argparse; from pathlib import Path; from automl.commands.ui import main_ui; "
            f"sys.exit(main_ui(argparse.Namespace(workspace=None, port={port}, "
            "host='127.0.0.1', browser=False)))")
    # Started with SIGINT ignored, as from a parent that ignores it (this pytest process can,
    # after Ray/MLflow ran in it): Ctrl-C must still stop the UI.
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    server_pid = None
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"server pid (\d+)", line)
            if match:
                server_pid = int(match.group(1))
            if "MLflow UI: http://" in line:
                break
        url = f"http://127.0.0.1:{port}"
        assert "starting…" in lines[0], lines
        assert str(ws.resolve()) in "".join(lines)
        runs_url = f"MLflow UI: {url}/#/experiments/{{}}/runs?workflowType=machine_learning"
        with urllib.request.urlopen(url + "/", timeout=10) as response:
            assert response.status == 200
        request = urllib.request.Request(
            url + "/api/2.0/mlflow/experiments/search", method="POST",
            data=json.dumps({"max_results": 10}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            experiments = json.load(response)["experiments"]
        experiment_id = next(e["experiment_id"] for e in experiments if e["name"] == "automl")
        assert runs_url.format(experiment_id) in "".join(lines), lines  # the runs, not Traces
        request = urllib.request.Request(
            url + "/api/2.0/mlflow/runs/search", method="POST",
            data=json.dumps({"experiment_ids": [experiment_id]}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            runs = json.load(response)["runs"]
        assert [r["info"]["run_name"] for r in runs] == [ws.name]
        assert runs[0]["data"]["params"] == [{"key": "train.optim.lr", "value": "0.0001"}]
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:  # keep draining its output: a full pipe would block the stopping server's logs
            proc.communicate(timeout=60)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            if server_pid:
                os.killpg(server_pid, signal.SIGKILL)
            raise
    assert rc == 0
    assert server_pid is not None and not group_alive(server_pid)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlartifacts").exists()
