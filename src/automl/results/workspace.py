"""The experiment workspace: one folder per experiment, everything it writes inside it.

Layout::

    <workspace>/experiment.yaml   resolved settings, seed, space, state
    <workspace>/state.json        prepared | running | completed | failed | canceled (+ pid, times)
    <workspace>/trials/<rec_id>/  spec.yaml, results/ (results_dir), train.log, outcome.json
    <workspace>/history.json      every trial's results (compacted at a run's start and end)
    <workspace>/history.journal   record changes since the last compaction (fsync'd appends)
    <workspace>/best_rec.json     the answer
    <workspace>/mlflow.db         the MLflow store (default tracking URI)
    <workspace>/ray/              Ray Tune's own experiment state

A workspace is locked (``fcntl.flock`` on ``.lock``) while an experiment runs in it: a second
``automl run``/``resume`` on it is refused, and the kernel releases the lock if the process dies.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from automl.errors import UserError
from automl.results.records import atomic_write_json
from automl.validation import EXPERIMENT, validate

# An experiment's states (state.json), one spelling each; the service's states (its queue:
# PENDING, RUNNING, PAUSED, CANCELED, ...) are automl.service.states, and say the same word.
PREPARED, RUNNING, COMPLETED = "prepared", "running", "completed"
FAILED, CANCELED = "failed", "canceled"
# What a workspace written before the spelling was made one said for CANCELED.
_SPELLED_BEFORE = {"cancelled": CANCELED}

MARKER = "experiment.yaml"


@dataclass
class Workspace:
    path: Path

    @property
    def trials(self) -> Path:
        return self.path / "trials"

    @property
    def history(self) -> Path:
        return self.path / "history.json"

    @property
    def best_rec(self) -> Path:
        return self.path / "best_rec.json"

    @property
    def experiment_file(self) -> Path:
        return self.path / MARKER

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    # -- creation & locking --------------------------------------------------------------
    @classmethod
    def create(cls, path: Path | None, root: Path, name: str) -> Workspace:
        if path is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "experiment"
            path = root / f"{safe}-{stamp}"
            suffix = 1
            while path.exists():
                suffix += 1
                path = root / f"{safe}-{stamp}-{suffix}"
        path = path.resolve()
        if (path / MARKER).exists():
            raise UserError(f"workspace {path} already holds an experiment: use `automl resume "
                            f"{path}` to continue it, or choose a new --workspace")
        if path.exists() and any(path.iterdir()):
            raise UserError(f"workspace {path} exists and is not empty: choose a new --workspace")
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise UserError(f"workspace {path}: cannot write there ({exc.strerror}); "
                            f"choose another --workspace or --workspace-root") from None
        return cls(path)

    def shared_dir(self, root: Path) -> Path | None:
        """The workspace root, when this workspace lives directly in it; else None.

        Caches that outlive one experiment (the generated dataset, the empty MLflow store) are
        kept there for the next experiment. A workspace given with ``--workspace`` somewhere
        else gets no neighbours: nothing is written beside it.
        """
        root = Path(root).resolve()
        return root if self.path.parent == root else None

    @classmethod
    def open(cls, path: Path) -> Workspace:
        path = Path(path).resolve()
        if not (path / MARKER).exists():
            raise UserError(f"{path}: not an automl workspace (no {MARKER}); pass the folder "
                            f"`automl run` printed")
        return cls(path)

    def lock(self) -> None:
        """Hold the workspace lock for the life of this process (released on exit/crash)."""
        handle = open(self.path / ".lock", "a+")  # noqa: SIM115 - kept open on purpose
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise UserError(f"workspace {self.path} is in use by another automl process "
                            f"(pid {self.state().get('pid', '?')}); wait for it or stop it") from None
        self._lock_handle = handle

    def is_locked(self) -> bool:
        try:
            with open(self.path / ".lock", "a+") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
                return False
        except BlockingIOError:
            return True

    # -- documents -----------------------------------------------------------------------
    def write_experiment(self, doc: dict[str, Any]) -> None:
        tmp = self.experiment_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        tmp.replace(self.experiment_file)

    def read_experiment(self) -> dict[str, Any]:
        try:
            doc = yaml.safe_load(self.experiment_file.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"{self.experiment_file}: unreadable ({exc}); run `automl recover "
                            f"{self.path}`") from None
        validate(doc, EXPERIMENT, str(self.experiment_file), f"run `automl recover {self.path}`")
        return doc

    def set_state(self, state: str, **extra: Any) -> None:
        doc = {**self.state(), "state": state, "pid": os.getpid(), "updated": time.time(), **extra}
        atomic_write_json(self.state_file, doc)

    def state(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if isinstance(doc, dict) and doc.get("state") in _SPELLED_BEFORE:
            doc["state"] = _SPELLED_BEFORE[doc["state"]]
        return doc

    def inside(self, candidate: Path) -> bool:
        """Whether ``candidate`` resolves to a path inside this workspace."""
        try:
            Path(candidate).resolve().relative_to(self.path)
            return True
        except ValueError:
            return False
