"""Fixtures of the service tests: a private PostgreSQL server, stores, a live ``automl serve``.

PostgreSQL comes from Debian's packages (``.ci/run`` installs ``postgresql``); its ``initdb`` and
``pg_ctl`` refuse to run as root, so as root they run as the package's ``postgres`` user (or a
user created here). The server listens on loopback on a private port, with its socket in a
temporary folder; it is stopped at the end of the session.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from launchers.gpus import free_port

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _as_user() -> list[str]:
    """A prefix that runs a command as a non-root user (none needed when not root)."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "automl-pg"):
        try:
            pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"]
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "automl-pg"], check=True)
    return ["runuser", "-u", "automl-pg", "--"]


@pytest.fixture(scope="session")
def postgres_server():
    """The URL of a private PostgreSQL server's ``postgres`` database (superuser, trust auth)."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it): "
                    "the PostgreSQL store tests need a real server")
    prefix = _as_user()
    folder = Path(tempfile.mkdtemp(prefix="automl-pg-"))
    if prefix:
        shutil.chown(folder, user=prefix[2])
    data = folder / "data"
    subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U",
                    "postgres", "--no-sync"], check=True, capture_output=True)
    for _ in range(3):  # a free port can be taken before PostgreSQL binds it: another one
        port = free_port("127.0.0.1")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
        started = subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
                                  "-l", str(folder / "log"), "-w", "start"], capture_output=True)
        if started.returncode == 0:
            break
    else:
        pytest.fail(f"PostgreSQL did not start: {(folder / 'log').read_text()[-2000:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


_databases = itertools.count()


def new_database(server_url: str) -> str:
    """A fresh, empty database on the test server; its URL."""
    import psycopg

    name = f"t{os.getpid()}_{next(_databases)}"
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


class LiveServer:
    """``automl serve`` in a subprocess (own process group) on ``--port 0``: the server binds a
    free port itself and prints it, so no other process can take the port between a test choosing
    it and the server binding it (CI saw that race). Each start may get another port: ``url`` is
    the current one."""

    def __init__(self, root: Path, *args: str, db: str | None = None) -> None:
        self.root, self.args, self.db = root, args, db
        self.url = ""
        self.proc: subprocess.Popen | None = None
        self.groups: list[int] = []

    def start(self, timeout: float = 120.0) -> str:
        """Start and wait until it answers; returns what it printed before (the admin token line)."""
        log = open(self.root / f"serve-{len(self.groups)}.log", "w")  # noqa: SIM115
        argv = [sys.executable, "-m", "automl.cli", "serve", "--root", str(self.root / "srv"),
                "--port", "0", *self.args, *(["--db", self.db] if self.db else [])]
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=ENV,
                                     start_new_session=True)
        self.groups.append(self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"automl serve exited ({self.proc.returncode}): "
                            f"{Path(log.name).read_text()[-2000:]}")
            printed = Path(log.name).read_text()
            serving = re.search(r"^serving on (\S+)", printed, re.M)
            if serving is None:
                time.sleep(0.3)
                continue
            self.url = serving.group(1)
            try:
                httpx.get(f"{self.url}/api/v1/health", timeout=2)
                return printed
            except httpx.HTTPError:
                time.sleep(0.3)
        pytest.fail(f"automl serve did not answer in {timeout:.0f}s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the server process alone (its children die with it: PR_SET_PDEATHSIG)."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=120)

    def close(self) -> None:
        """Stop everything any start of this server left (Ray's processes included)."""
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.proc.wait()


def admin_token(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("admin token"):
            return line.rsplit(" ", 1)[1]
    raise AssertionError(f"no admin token printed: {output[-500:]}")
