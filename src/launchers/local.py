"""Local launcher: a trial is a child process of the Ray worker that runs it.

Each trial gets its own process group, so stopping it (SIGTERM, then SIGKILL) reaches the
trainer's own children (data-loader workers) too. The child also asks the kernel to kill it if
the thread that started it dies (``PR_SET_PDEATHSIG``), so a Ray worker killed hard never leaves
an orphan trainer holding CPU or GPU memory.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import sysconfig

from automl.errors import UserError
from launchers.base import Handle, LaunchSpec, Launcher, LaunchError

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class LocalHandle(Handle):
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def local_pid(self) -> int | None:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout_s: float | None = None) -> int | None:
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace_s: float = 5.0) -> int | None:
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        # The leader may be gone while members of its group still run: always sweep the group.
        self._signal_group(signal.SIGKILL)
        try:
            return self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            return None


def resolve_command(name: str) -> str | None:
    """``name`` on PATH, else beside this Python's console scripts.

    ``pip install`` puts the bundled ``segformer`` next to the running interpreter's scripts,
    which is not always on PATH (pyenv shims before a rehash, a venv used without activation).
    """
    return shutil.which(name) or shutil.which(name, path=sysconfig.get_path("scripts"))


class LocalLauncher(Launcher):
    """Runs the job's argv on this machine; GPUs are exposed through CUDA_VISIBLE_DEVICES."""

    name = "local"

    def preflight(self, argv: tuple[str, ...]) -> None:
        if not argv:
            raise UserError("the skill's action command is empty: set actions.train.command "
                            "in references/skill_info.yaml")
        if resolve_command(argv[0]) is None:
            raise UserError(
                f"trainer command '{argv[0]}' not found on PATH: install it (for the bundled "
                f"trainer: pip install -e '.[trainer]') or use --launcher docker"
            )

    def start(self, job: LaunchSpec) -> LocalHandle:
        env = {**os.environ, **job.env}
        if job.gpu_ids:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in job.gpu_ids)
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        with job.log_path.open("ab") as log:
            try:
                argv = [resolve_command(job.argv[0]) or job.argv[0], *job.argv[1:]]
                process = subprocess.Popen(  # noqa: S603 - argument list, no shell
                    argv,
                    cwd=job.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, async-signal-safe
                )
            except OSError as exc:
                raise LaunchError(f"could not start {job.argv[0]!r}: {exc}") from exc
        return LocalHandle(process)
