"""The launcher interface: start a trial's command, watch it, stop it.

The engine never knows *where* a trial runs; a launcher turns a :class:`LaunchSpec` (an
argument list, a working folder, environment, the log file) into a running :class:`Handle`. Local
processes and GPU containers are two implementations of the same three verbs, plus the clean-up
verbs (:meth:`Launcher.close`, :meth:`Launcher.cleanup_all`) that a launcher leaving nothing
behind inherits as no-ops. The registry of launchers is :data:`launchers.LAUNCHERS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LaunchSpec:
    """One trial segment to run. ``argv`` is an argument list, never a shell string."""

    argv: tuple[str, ...]
    cwd: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    name: str = "trial"
    labels: dict[str, str] = field(default_factory=dict)
    gpu_ids: tuple[int, ...] = ()
    # Host folders the job reads (dataset) and writes (trial folder): containers mount exactly these.
    read_paths: tuple[Path, ...] = ()
    write_paths: tuple[Path, ...] = ()


class Handle(ABC):
    """A running job."""

    @abstractmethod
    def poll(self) -> int | None:
        """The exit code once the job has ended, else None."""

    @abstractmethod
    def stop(self, grace_s: float = 5.0) -> int | None:
        """Stop the job (SIGTERM, then SIGKILL after ``grace_s``) and return its exit code."""

    def local_pid(self) -> int | None:
        """The pid of the job's process-group leader on this machine, which ``automl resume``
        records and stops after a controller kill (automl.resume.reconcile); None for a job that
        is not a local process (a container is found by its labels instead). Declared, never
        guessed from an attribute: a remote job may well carry an integer id."""
        return None

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Block until the job ends (or ``timeout_s`` passes); the exit code or None."""
        import time

        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        return code


class Launcher(ABC):
    """Starts jobs. Implementations must be picklable (they travel to Ray workers)."""

    name: str = "base"
    # The skill's command runs on this machine (its program is resolved on PATH); False: inside
    # an image, where the skill's own command line is used as written.
    runs_on_host: bool = True

    @classmethod
    def from_settings(cls, settings: Any, skill: Any) -> Launcher:
        """The launcher an experiment's settings (automl.study.Settings) and skill ask for."""
        return cls()

    @abstractmethod
    def start(self, job: LaunchSpec) -> Handle:
        """Start ``job``; raise :class:`LaunchError` when it cannot start at all."""

    def preflight(self, argv: tuple[str, ...]) -> None:
        """Check, before any trial is launched, that ``argv`` can run; raise UserError if not."""

    def close(self, experiment: str | None = None) -> int:
        """Remove what this launcher's jobs left (given ``experiment``: all of that experiment's,
        wherever they were started); the count. Best effort, never raises: it runs on the way
        out of a failed or cancelled run."""
        return 0

    def cleanup_all(self, labels: dict[str, str] | None = None) -> int:
        """Remove every leftover job carrying all of ``labels`` (an interrupted run's, before a
        resume); the count."""
        return 0

    @classmethod
    def cleanup_leftovers(cls, labels: dict[str, str] | None = None) -> int:
        """``automl cleanup``: remove leftover jobs of all experiments (or those with ``labels``)
        without the settings of any; the count. Raises UserError when the backend is down."""
        return 0


class LaunchError(RuntimeError):
    """The job could not be started (an infrastructure failure, retryable)."""


def log_tail(path: Path, max_bytes: int = 8192) -> str:
    """The last ``max_bytes`` of a log file ('' if missing)."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - max_bytes))
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
