"""A Docker engine for the tests: an existing one if reachable, else a private ``dockerd``.

The private daemon gets its own ``--data-root``, ``--exec-root``, ``--pidfile``, unix socket and an
empty ``--config-file`` (the machine's /etc/docker/daemon.json is not read), no iptables and no
bridge (``--iptables=false --bridge=none``: nothing on the host network changes; containers still
get Docker's default network mode). Storage: overlay2 first, then vfs where overlay mounts are
not allowed. It is owned by the test session and stopped at its end (SIGTERM, then SIGKILL, by
pid; its containerd too).

:func:`provide` returns ``(Engine, "")`` or ``(None, reason)``, the reason naming exactly what is
missing (not root, no dockerd/containerd/runc binary, the daemon refused to start and why).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
START_TIMEOUT_S = 60.0


def ping(host: str, timeout: float = 5.0) -> bool:
    try:
        import docker

        client = docker.DockerClient(base_url=host, timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means: not reachable
        return False


@dataclass
class Engine:
    host: str  # DOCKER_HOST value
    process: subprocess.Popen | None = None  # the private dockerd, when we started it
    root: Path | None = None
    storage_driver: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def private(self) -> bool:
        return self.process is not None

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.host, version="auto", timeout=120)

    def close(self) -> None:
        """Stop the private daemon (only ours) and delete its folders."""
        if self.process is None:
            return
        containerd_pid = _read_pid(self.root / "exec" / "containerd" / "containerd.pid") \
            if self.root else None
        _terminate(self.process.pid, self.process, grace_s=20.0)
        if containerd_pid and _alive(containerd_pid):  # started by our dockerd, not stopped by it
            _terminate(containerd_pid, None, grace_s=5.0)
        self.process = None
        if self.root:
            _unmount_below(self.root)
            shutil.rmtree(self.root, ignore_errors=True)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _terminate(pid: int, process: subprocess.Popen | None, grace_s: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if process is not None:
        process.wait(timeout=10)


def _unmount_below(root: Path) -> None:
    """Lazily unmount anything a killed daemon left mounted under ``root`` (deepest first)."""
    try:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return
    prefix = str(root) + "/"
    for target in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def _missing_requirements() -> str:
    if os.geteuid() != 0:
        return ("no Docker engine reachable (DOCKER_HOST or /var/run/docker.sock) and starting a "
                "private dockerd needs root")
    for binary, package in (("dockerd", "docker.io"), ("containerd", "containerd"),
                            ("runc", "runc")):
        if shutil.which(binary) is None:
            return (f"no Docker engine reachable and '{binary}' is not installed "
                    f"(apt-get install docker.io; see .ci/run)")
    return ""


def _start(root: Path, storage_driver: str) -> tuple[Engine | None, str]:
    for sub in ("data", "exec"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    config = root / "daemon.json"
    config.write_text(json.dumps({}))
    socket = root / "docker.sock"
    host = f"unix://{socket}"
    log_path = root / f"dockerd-{storage_driver}.log"
    argv = ["dockerd", "--config-file", str(config), "--data-root", str(root / "data"),
            "--exec-root", str(root / "exec"), "--pidfile", str(root / "dockerd.pid"),
            "--host", host, "--iptables=false", "--ip-masq=false", "--bridge=none",
            "--storage-driver", storage_driver, "--log-level", "warn"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            return None, f"dockerd ({storage_driver}) exited {process.returncode}: {' | '.join(tail)}"
        if socket.exists() and ping(host, timeout=2):
            engine = Engine(host=host, process=process, root=root, storage_driver=storage_driver)
            if _storage_works(engine):
                return engine, ""
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            _terminate(process.pid, process, grace_s=10)
            return None, (f"dockerd ({storage_driver}) started but cannot store an image layer: "
                          f"{' | '.join(tail)}")
        time.sleep(0.2)
    _terminate(process.pid, process, grace_s=10)
    return None, f"dockerd ({storage_driver}) did not answer within {START_TIMEOUT_S:.0f}s"


def _storage_works(engine: Engine) -> bool:
    """The storage driver works once an image layer can be imported (a one-file tarball)."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("probe")
        info.size = 0
        tar.addfile(info, io.BytesIO(b""))
    client = engine.client()
    try:
        client.api.import_image_from_data(buffer.getvalue(), repository="automl-probe",
                                          tag="latest")
        client.images.remove("automl-probe:latest", force=True)
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        client.close()


def provide() -> tuple[Engine | None, str]:
    """An engine to test against: ``(engine, '')`` or ``(None, why none can run here)``."""
    if os.environ.get("DOCKER_HOST") and ping(os.environ["DOCKER_HOST"]):
        return Engine(host=os.environ["DOCKER_HOST"]), ""
    if not os.environ.get("AUTOML_TEST_PRIVATE_DOCKERD") and ping(DEFAULT_SOCKET, timeout=2):
        return Engine(host=DEFAULT_SOCKET), ""
    missing = _missing_requirements()
    if missing:
        return None, missing
    reasons = []
    for driver in ("overlay2", "vfs"):
        root = Path(tempfile.mkdtemp(prefix="automl-dockerd-", dir="/tmp"))
        engine, why = _start(root, driver)
        if engine is not None:
            engine.notes = reasons
            return engine, ""
        reasons.append(why)
        _unmount_below(root)
        shutil.rmtree(root, ignore_errors=True)
    return None, "a private dockerd cannot run in this sandbox: " + "; ".join(reasons)
