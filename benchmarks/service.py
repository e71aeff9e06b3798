"""Benchmark of ``automl serve`` (run on demand, not a test; figures in the README).

1. ``startup``: seconds from ``POST /experiments`` to the first trial's first status.json line on
   a warm server, against a cold ``automl run`` of the same experiment (the bundled SegFormer
   trainer unless ``--skill-dir``), each with a warm dataset/MLflow cache.
2. ``latency``: p50/p95 of ``GET /experiments/{id}`` and ``GET /experiments/{id}/trials`` with
   20 experiments × 50 trials in the store, on SQLite and (with ``--pg URL``, a server whose
   user may create databases) PostgreSQL.

    python benchmarks/service.py startup [--skill-dir DIR]
    python benchmarks/service.py latency [--pg postgresql://USER@HOST:PORT]
"""

from __future__ import annotations

import argparse
import glob
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
STUDY = {"algo": "random", "max_recommendations": 1, "max_epochs": 1, "max_concurrent": 1}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(root: Path, *args: str) -> tuple[subprocess.Popen, str, str]:
    port = _port()
    root.mkdir(parents=True, exist_ok=True)
    log = root / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "automl.cli", "serve", "--root", str(root),
                             "--port", str(port), *args], stdout=open(log, "w"),  # noqa: SIM115
                            stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            httpx.get(f"{url}/api/v1/health", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    token = next((line.rsplit(" ", 1)[1] for line in log.read_text().splitlines()
                  if line.startswith("admin token")), "")  # none on a store that has users
    return proc, url, token


def _first_status_line(pattern: str, timeout: float = 900) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in glob.glob(pattern):
            if Path(path).read_text().strip():
                return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError(pattern)


def startup(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="automl-bench-"))
    skill = ["--skill-dir", str(args.skill_dir.resolve())] if args.skill_dir else []
    proc, url, token = _serve(root / "srv", "--max-experiments", "1",
                              *(["--skill-dir", str(args.skill_dir.resolve()), "--allow-root",
                                 str(args.skill_dir.resolve())] if args.skill_dir else []))
    headers = {"Authorization": f"Bearer {token}"}
    body = {**STUDY, **({"skill_dir": str(args.skill_dir.resolve())} if args.skill_dir else {})}
    try:
        warm = []
        for i in range(args.repeat + 1):  # the first one fills the dataset and MLflow caches
            start = time.monotonic()
            e = httpx.post(f"{url}/api/v1/experiments", json=body, headers=headers).json()
            end = _first_status_line(f"{e['workspace']}/trials/*/results/train/status.json")
            if i:
                warm.append(end - start)
            httpx.post(f"{url}/api/v1/experiments/{e['id']}:cancel", headers=headers)
            while httpx.get(f"{url}/api/v1/experiments/{e['id']}", headers=headers
                            ).json()["state"] not in ("CANCELED", "SUCCEEDED", "FAILED"):
                time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
    cold = []
    for i in range(1, args.repeat + 1):  # the server's first experiment filled the same caches
        workspace = root / "srv" / "workspaces" / f"cli-{i}"
        start = time.monotonic()
        run = subprocess.Popen([sys.executable, "-m", "automl.cli", "run", *skill, "--workspace",
                                str(workspace), "--workspace-root", str(root / "srv" / "workspaces"),
                                "--progress", "none", "--algo", "random",
                                "--max-recommendations", "1", "--max-epochs", "1"],
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = _first_status_line(f"{workspace}/trials/*/results/train/status.json")
        cold.append(end - start)
        run.send_signal(signal.SIGTERM)  # Ctrl-C: the rest of the run is not measured
        run.wait()
    print(f"POST -> first status line, warm server: {statistics.median(warm):.1f} s "
          f"(median of {len(warm)})")
    print(f"automl run -> first status line, cold:  {statistics.median(cold):.1f} s "
          f"(median of {len(cold)})")


def _fill(db: str) -> tuple[str, str]:
    """20 experiments × 50 trials for one user; returns (token, one experiment id)."""
    from automl.service import auth
    from automl.service.store import Experiment, Store, Trial

    store = Store(db)
    store.migrate()
    token = auth.issue(store, "bench")
    with store.session() as session:
        user_id = auth.authenticate(store, token).user_id
        ids = []
        for e in range(20):
            eid = str(uuid.uuid4())
            ids.append(eid)
            session.add(Experiment(id=eid, owner_id=user_id, name=f"exp-{e}", state="SUCCEEDED",
                                   settings={"algo": "random", "metric": "val_miou",
                                             "direction": "max", "max_recommendations": 50},
                                   workspace=f"/nonexistent/{eid}", progress={}, version=50,
                                   created=time.time(), queued=time.time()))
            session.flush()
            for t in range(50):
                results = [{"epoch": k, "val_miou": 0.1 * k, "val_loss": 1.0 / k} for k in range(1, 10)]
                record = {"rec_id": f"t{t:03d}", "params": {"lr": 0.001 * t, "bs": 8}, "index": t,
                          "status": "completed", "budget": 9, "results": results}
                session.add(Trial(experiment_id=eid, rec_id=f"t{t:03d}", index=t, version=t + 1,
                                  status="completed", score=0.9, record=record))
    store.engine.dispose()
    return token, ids[7]


def _percentiles(url: str, headers: dict, n: int) -> tuple[float, float]:
    times = []
    with httpx.Client(headers=headers) as client:
        for _ in range(n):
            start = time.perf_counter()
            client.get(url).raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.95)]


def latency(args: argparse.Namespace) -> None:
    stores = {"SQLite": None}
    if args.pg:
        import psycopg

        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        stores["PostgreSQL"] = f"{args.pg}/{name}"
    for label, db in stores.items():
        root = Path(tempfile.mkdtemp(prefix="automl-bench-")) / "srv"
        root.mkdir()
        url_db = db or f"sqlite:///{root / 'automl.db'}"
        token, experiment_id = _fill(url_db)
        proc, url, _ = _serve(root, "--max-experiments", "0", "--db", url_db)
        try:
            headers = {"Authorization": f"Bearer {token}"}
            for what, path in (("GET experiment", f"/experiments/{experiment_id}"),
                               ("GET trials (50)", f"/experiments/{experiment_id}/trials")):
                p50, p95 = _percentiles(f"{url}/api/v1{path}", headers, args.requests)
                print(f"{label:<10} {what:<16} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("startup")
    s.add_argument("--skill-dir", type=Path)
    s.add_argument("--repeat", type=int, default=2)
    lat = sub.add_parser("latency")
    lat.add_argument("--pg", help="postgresql://USER@HOST:PORT of a server to create a database on")
    lat.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    startup(args) if args.what == "startup" else latency(args)


if __name__ == "__main__":
    main()
