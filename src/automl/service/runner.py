"""The queue: one child process per running experiment, up to ``max_experiments`` at once.

Each experiment runs as ``automl run`` (first start) or ``automl resume`` (after a pause or a
server restart) in a child process (:mod:`.worker`) connected to the server's Ray instance with
``--address``: the CLI's machinery unchanged, Ray started once for the server's life, and a crash
of one experiment's driver cannot take the server or the others down. A pause or cancel is the
CLI's Ctrl-C (SIGTERM: the run stops its trials and marks its workspace ``canceled``).

Only the runner thread starts, signals and reaps children (``PR_SET_PDEATHSIG`` is tied to the
thread that forked them). It also copies each active workspace's ``history.json`` into the
trials table, numbering every change (``version``) so that clients poll with ``?after=N``.

One broken experiment never holds up the queue: whatever one experiment's step raises (a
workspace the OS refuses, a child that cannot start) fails that experiment, with the reason, and
the others go on (:meth:`Runner._isolated`); only a database error retries the whole step.

Restart safety: the database says which experiments were running. At start-up those become
RESUMING (their children died with the old server: ``automl resume`` continues them from the
workspace's saved state), PAUSING becomes PAUSED, CANCELING becomes CANCELED, and the queue is
kept as it was.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from automl.results.journal import journal_path
from automl.results.records import read_history
from automl.results.workspace import Workspace
from automl.run.ray.prestarted_workers import INHERITS_ENV
from automl.service.states import LIVE, State
from automl.service.store import Experiment, Store, Trial
from automl.service.summary import progress

log = logging.getLogger("automl.service")
STOP_TIMEOUT_S = 60.0


def _error_line(log_path: Path) -> str | None:
    """The run's one-line error (``error: …``, what the CLI prints for a UserError), if any."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines[-200:]):
        if line.startswith("error: "):
            return line[len("error: "):]
    return None


class Runner:
    def __init__(self, store: Store, root: Path, max_experiments: int,
                 ray_address: str | None, poll_s: float = 0.5) -> None:
        self.store = store
        self.root = root
        self.max_experiments = max_experiments
        self.ray_address = ray_address
        self.ray_local = False  # the server started that Ray itself (its workers share our env)
        self.poll_s = poll_s
        self.children: dict[str, subprocess.Popen] = {}
        self._signalled: set[str] = set()
        self._mtimes: dict[str, float] = {}
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def logs(self, experiment_id: str) -> Path:
        return self.root / "logs" / f"{experiment_id}.log"

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        for folder in ("logs", "studies", "workspaces"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self._recover()
        self._thread = threading.Thread(target=self._loop, name="automl-runner", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop every run (SIGTERM, as Ctrl-C) and leave their states as they are, so the next
        start resumes them."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _recover(self) -> None:
        with self.store.session() as session:
            ids = session.scalars(select(Experiment.id).where(
                Experiment.state.in_([s.value for s in LIVE]))).all()
        for experiment_id in ids:
            self._isolated(experiment_id, self._recover_one, experiment_id)

    def _recover_one(self, experiment_id: str) -> None:
        after_restart = {State.RUNNING: State.RESUMING, State.PAUSING: State.PAUSED,
                         State.CANCELING: State.CANCELED}
        with self.store.session() as session:
            row = session.get(Experiment, experiment_id)
            self._sync(row, session)
            workspace = Workspace(Path(row.workspace))
            if workspace.state_file.exists() and workspace.state().get("state") == "completed":
                new = State.SUCCEEDED  # it ended in the instant before the server died
            else:
                new = after_restart.get(State(row.state), State(row.state))
            row.state, row.pid = new.value, None
            if new in (State.SUCCEEDED, State.CANCELED):
                row.ended = time.time()
            self._renumber_running(row, session)

    def _loop(self) -> None:
        while not self._stopping:
            try:
                self._tick()
            except DBAPIError:  # the store itself failed: every experiment waits, then retries
                log.exception("runner tick failed (database); retrying")
            self._wake.wait(self.poll_s)
            self._wake.clear()
        self._shutdown()

    def _isolated(self, experiment_id: str, step: Callable[..., None], *args: Any) -> None:
        """Run one experiment's step; anything it raises fails that experiment alone.

        A database error is the store's, not the experiment's: it propagates (the whole tick
        is retried). Anything else (a workspace the OS refuses, a history that cannot be read,
        a child that cannot be started) marks the experiment FAILED with the reason in one line,
        and the queue moves on: one broken experiment never holds up the others.
        """
        try:
            step(*args)
        except DBAPIError:
            raise
        except Exception as exc:  # noqa: BLE001 - contained to this experiment, reported on it
            log.exception("experiment %s failed in the runner", experiment_id)
            self._fail(experiment_id, f"the server could not run it: {type(exc).__name__}: "
                                      f"{' '.join(str(exc).split())[:500]}")

    def _fail(self, experiment_id: str, reason: str) -> None:
        proc = self.children.pop(experiment_id, None)
        self._signalled.discard(experiment_id)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        with self.store.session() as session:
            row = session.get(Experiment, experiment_id)
            if row is not None:
                row.state, row.pid, row.error, row.ended = \
                    State.FAILED.value, None, reason, time.time()

    def _shutdown(self) -> None:
        for proc in self.children.values():
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for experiment_id, proc in self.children.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with self.store.session() as session:
                row = session.get(Experiment, experiment_id)
                if row is not None:
                    self._sync(row, session)
        self.children.clear()

    # -- one step ------------------------------------------------------------------------
    def _tick(self) -> None:
        for experiment_id, proc in list(self.children.items()):
            if proc.poll() is not None:
                self._isolated(experiment_id, self._finish, experiment_id, proc.returncode)
        with self.store.session() as session:
            ids = session.scalars(select(Experiment.id).where(Experiment.state.in_(
                [s.value for s in LIVE] + [State.PENDING.value])).order_by(Experiment.queued)).all()
        for experiment_id in ids:
            self._isolated(experiment_id, self._step, experiment_id)

    def _step(self, experiment_id: str) -> None:
        """One experiment's turn: copy its trials and pass on a pause or cancel if it runs,
        start it if it is queued and a slot is free."""
        with self.store.session() as session:
            row = session.get(Experiment, experiment_id)
            if row is None:
                return
            if row.id in self.children:
                self._sync(row, session)
                if row.state in (State.PAUSING, State.CANCELING) and row.id not in self._signalled:
                    self.children[row.id].send_signal(signal.SIGTERM)
                    self._signalled.add(row.id)
            elif row.state in (State.PENDING, State.RESUMING) and \
                    len(self.children) < self.max_experiments:
                self._spawn(row)

    def _argv(self, row: Experiment) -> list[str]:
        workspace = Path(row.workspace)
        address = ["--address", self.ray_address] if self.ray_address else []
        if (workspace / "ray" / "tune").is_dir():
            return ["resume", str(workspace), "--progress", "plain", *address]
        if workspace.exists():  # set up, but no trial was launched: nothing to keep
            shutil.rmtree(workspace)
        study = self.root / "studies" / f"{row.id}.yaml"
        settings = dict(row.settings)
        if row.space is not None:
            space_file = self.root / "studies" / f"{row.id}.space.yaml"
            space_file.write_text(yaml.safe_dump(row.space), encoding="utf-8")
            settings["space_file"] = str(space_file)
        study.write_text(yaml.safe_dump(settings), encoding="utf-8")
        return ["run", "--study", str(study), "--workspace", str(workspace),
                "--workspace-root", str(self.root / "workspaces"), "--progress", "plain", *address]

    def _spawn(self, row: Experiment) -> None:
        argv = self._argv(row)
        with open(self.logs(row.id), "ab") as out:
            out.write(f"--- automl {argv[0]} ({time.strftime('%Y-%m-%d %H:%M:%S')})\n".encode())
            out.flush()
            self.children[row.id] = subprocess.Popen(
                [sys.executable, "-m", "automl.service.worker", str(os.getpid()), *argv],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.root, env={**os.environ, "PYTHONUNBUFFERED": "1",
                                    **({INHERITS_ENV: "1"} if self.ray_local else {})})
        row.state, row.pid = State.RUNNING.value, self.children[row.id].pid
        row.started = row.started or time.time()
        row.error = None

    def _finish(self, experiment_id: str, code: int) -> None:
        self.children.pop(experiment_id)
        self._signalled.discard(experiment_id)
        with self.store.session() as session:
            row = session.get(Experiment, experiment_id, with_for_update=True)
            if row is None:
                return
            self._sync(row, session, force=True)
            ended = Workspace(Path(row.workspace)).state().get("state")
            if row.state == State.PAUSING:
                new = State.PAUSED
            elif row.state == State.CANCELING:
                new = State.CANCELED
            elif ended == "completed":
                new = State.SUCCEEDED
            else:
                new = State.FAILED
                row.error = _error_line(self.logs(experiment_id)) or \
                    f"the run stopped (exit code {code}); see its log"
            row.state, row.pid = new.value, None
            if new != State.PAUSED:
                row.ended = time.time()
            self._renumber_running(row, session)

    # -- trials --------------------------------------------------------------------------
    @staticmethod
    def _renumber_running(row: Experiment, session: Any) -> None:
        """The run stopped: trials its history left "running" now read "paused" in the API
        (:func:`.summary.shown_status`); a new version sends them to ``?after=N`` pollers."""
        for trial in session.scalars(select(Trial).where(Trial.experiment_id == row.id,
                                                         Trial.status == "running")):
            row.version += 1
            trial.version = row.version

    def _sync(self, row: Experiment, session: Any, force: bool = False) -> None:
        """Copy changed trial records from the workspace's history.json into the table."""
        history = Path(row.workspace) / "history.json"
        try:
            mtime = history.stat().st_mtime
        except OSError:
            return
        with contextlib.suppress(OSError):  # a running experiment appends to its journal
            mtime = max(mtime, journal_path(history).stat().st_mtime)
        if not force and self._mtimes.get(row.id) == mtime:
            return
        try:
            experiment, records = read_history(history)
        except (OSError, ValueError):
            return  # rewritten atomically; a failure here is transient
        self._mtimes[row.id] = mtime
        stored = {t.rec_id: t for t in session.scalars(
            select(Trial).where(Trial.experiment_id == row.id))}
        metric = experiment.get("metric") or row.settings.get("metric") or ""
        version = row.version
        for record in records:
            doc = record.to_json()
            old = stored.get(record.rec_id)
            if old is not None and old.record == doc:
                continue
            version += 1
            if old is None:
                old = Trial(experiment_id=row.id, rec_id=record.rec_id)
                session.add(old)
            old.index, old.version, old.status = record.index, version, record.status
            old.score, old.record = record.score(metric), doc
        row.version = version
        row.progress = progress(records, row.settings, experiment)
