"""``automl ui [WORKSPACE]``: the MLflow UI on an experiment's tracking store.

Starts ``mlflow server`` (``sys.executable -m mlflow server``, an argument list, never a shell
string) on ``sqlite:///<workspace>/mlflow.db``, bound to 127.0.0.1 with one worker, says
"starting…" at once (MLflow can take 20 s to answer on a loaded machine), then prints and opens
the direct URL of the experiment's runs once it answers (MLflow 3 otherwise lands an HPO user on
its GenAI "Traces" overview), and waits until Ctrl-C, then stops the server and its uvicorn worker (their own process
group) cleanly. ``mlflow`` is not imported here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import webbrowser
from typing import Any
from pathlib import Path

from automl import listen
from automl.errors import UserError

DEFAULT_ROOT = Path("automl-workspaces")
MARKER = "experiment.yaml"
STORE = "mlflow.db"


def find_workspace(workspace: Path | None, root: Path = DEFAULT_ROOT) -> Path:
    """The workspace to show: the one given, else the most recent one under ``root``."""
    if workspace is not None:
        path = Path(workspace).expanduser()
        if path.is_file() and path.name == STORE:  # the store itself was given
            path = path.parent
        if not path.is_dir():
            raise UserError(f"workspace {path}: no such folder; pass the folder `automl run` "
                            f"printed")
        return path.resolve()
    candidates = [p.parent for p in Path(root).glob(f"*/{MARKER}")] if Path(root).is_dir() else []
    if not candidates:
        raise UserError(f"no workspace found under {Path(root).resolve()} (a folder with "
                        f"{MARKER}); pass one: automl ui WORKSPACE")
    return max(candidates, key=_last_activity).resolve()


def _last_activity(path: Path) -> float:
    times = []
    for name in (MARKER, "state.json", "history.json", STORE):
        try:
            times.append((path / name).stat().st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)


def store_uri(workspace: Path) -> str:
    db = Path(workspace) / STORE
    if not db.is_file():
        raise UserError(f"{workspace}: no MLflow store ({STORE}); it is written by `automl run` "
                        f"unless --tracking-uri sent the runs elsewhere (open that server instead)")
    return f"sqlite:///{db.resolve()}"


def runs_path(workspace: Path) -> str | None:
    """The MLflow UI's path to the workspace's runs (``#/experiments/<id>/runs?…``), read from
    its store (sqlite, read-only: mlflow is not imported here); None when there is none yet."""
    db = Path(workspace) / STORE
    try:  # a path the OS refuses (a name too long, say) has no store either
        if not db.is_file():
            return None
    except OSError:
        return None
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT experiment_id FROM experiments WHERE name != 'Default' "
                               "AND lifecycle_stage = 'active' ORDER BY experiment_id "
                               "LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    if row is None:
        return None
    return f"/#/experiments/{row[0]}/runs?workflowType=machine_learning"


def _check_port(host: str, port: int) -> int:
    """Fail early, in one line, when the port is taken; port 0 picks a free one. The socket is
    released: MLflow's server, a separate process, binds the port itself."""
    with contextlib.closing(listen.bind(host, port)) as sock:
        return sock.getsockname()[1]


def server_command(uri: str, workspace: Path, port: int, host: str) -> list[str]:
    return [sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", uri,
            "--default-artifact-root", (Path(workspace) / "mlartifacts").resolve().as_uri(),
            "--no-serve-artifacts",
            "--host", host, "--port", str(port), "--workers", "1"]


def serve(workspace: Path | None, port: int = 5000, host: str = "127.0.0.1") -> subprocess.Popen:
    """Start the MLflow UI on the workspace's store; returns the server process (its own
    process group). ``proc.url`` is the address; stop it with :func:`stop`."""
    path = find_workspace(workspace)
    uri = store_uri(path)
    port = _check_port(host, port)
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    # A read-mostly local UI: no telemetry, no background job runner (extra processes that
    # would also write to the store the running experiment writes to). Explicit settings win.
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    proc = subprocess.Popen(server_command(uri, path, port, host), cwd=path, env=env,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    proc.url = listen.url(host, port)  # type: ignore[attr-defined]
    proc.workspace = path  # type: ignore[attr-defined]
    return proc


def wait_ready(proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Poll the UI until it answers 200; False if the server exited or the time ran out."""
    url = f"{proc.url}/health"  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    return False


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop the server and its uvicorn worker: SIGTERM to its process group (the server
    forwards it and shuts down gracefully), SIGKILL after ``timeout`` seconds."""
    pgid = proc.pid  # start_new_session: the server leads its own process group
    for sig, grace in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while group_alive(pgid, proc) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not group_alive(pgid, proc):
            break
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def group_alive(pgid: int, proc: subprocess.Popen | None = None) -> bool:
    """Whether any process of group ``pgid`` is alive (a signal 0 to the group): the page's
    server runs as its own group, and stopping it means waiting until the whole group is gone."""
    if proc is not None:
        proc.poll()  # reap the leader, or it stays a zombie member of the group
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main_ui(args: argparse.Namespace) -> int:
    """``automl ui [WORKSPACE] [--port N] [--host H]``: serve until Ctrl-C; exit code.

    ``args.workspace`` (Path | None), ``args.port`` (int), ``args.host`` (str)."""
    port = getattr(args, "port", None)
    proc = serve(getattr(args, "workspace", None), 5000 if port is None else int(port),
                 getattr(args, "host", None) or "127.0.0.1")
    previous: dict[int, Any] = {}
    try:
        if threading.current_thread() is threading.main_thread():
            # Ctrl-C stops it even when started with SIGINT ignored (a non-interactive shell's
            # background job, or a parent that ignores it: Python then installs no handler);
            # `kill` (SIGTERM) stops the server too.
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, _interrupt)
        print(f"MLflow UI for {proc.workspace}: starting… (server pid {proc.pid})",  # type: ignore[attr-defined]
              flush=True)
        if not wait_ready(proc, timeout=120):
            if proc.poll() is not None:
                print(f"the MLflow server exited (code {proc.returncode}); see the messages above",
                      file=sys.stderr)
                return 1
            print("the MLflow server is slow to answer; still waiting", file=sys.stderr)
        url = proc.url + (runs_path(proc.workspace) or "/")  # type: ignore[attr-defined]
        print(f"MLflow UI: {url}   (Ctrl-C to stop)", flush=True)
        if getattr(args, "browser", True):
            webbrowser.open(url)  # no-op where no browser is known (a server, CI)
        proc.wait()
        print(f"the MLflow server exited (code {proc.returncode})", file=sys.stderr)
        return 1 if proc.returncode else 0
    except KeyboardInterrupt:
        print("\nstopping the MLflow UI", flush=True)
        return 0
    finally:
        stop(proc)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
