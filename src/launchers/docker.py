"""Docker launcher: a trial runs in a container of the skill's image (a TAO container), via the
Docker SDK for Python (``docker.from_env()``, so ``DOCKER_HOST`` & co. are honoured).

**Paths.** A trial's spec is written on the host and names host paths (``results_dir``, the
dataset root, checkpoints). Every host folder a job needs is bind-mounted at the *same absolute
path* inside the container: the dataset root(s) (``LaunchSpec.read_paths``) read-only, the trial folder
(``LaunchSpec.write_paths``) read-write, nothing else. The spec therefore needs no rewriting, the paths
in status.json, logs and checkpoints mean the same thing on both sides, and a trial can only
write into its own folder. The working directory is ``LaunchSpec.cwd`` (the trial folder).

**Identity.** The container runs as the invoking user (``uid:gid``), so every file a trial writes
belongs to whoever ran ``automl``, not to root. ``HOME`` is set to ``/tmp`` for a non-root user
(TAO images have no home folder for arbitrary uids). ``user=""`` keeps the image's own user.

**Isolation.** Never privileged; the image's default network unless ``network`` is given
(``"host"`` only when asked, e.g. for multi-node NCCL); ``--init`` so SIGTERM reaches the trainer
and zombies are reaped; ``shm_size`` (PyTorch data loaders need more than Docker's 64 MB) and the
NVIDIA-recommended ulimits (memlock unlimited, 64 MB stack).

**GPUs.** ``LaunchSpec.gpu_ids`` are the host GPU ids Ray assigned; they become a device request for
exactly those GPUs (NVIDIA container runtime). Inside the container they are renumbered
``0..n-1``, so ``CUDA_VISIBLE_DEVICES`` is set to ``0,..,n-1`` (and the spec's ``train.gpu_ids``
must be ``[0..n-1]``: see :mod:`launchers.gpus`). A trial without GPUs gets
``NVIDIA_VISIBLE_DEVICES=void``, so an image whose ENV says ``all`` cannot grab GPUs Ray gave to
other trials.

**Lifetime.** Containers are labelled ``automl=1``, ``automl.experiment``, ``automl.trial``. A
handle removes its container once it has exited (after its logs are copied into
``LaunchSpec.log_path``) or when stopped. Containers this process started are removed at exit
(``atexit``); :meth:`DockerLauncher.close` / :meth:`DockerLauncher.cleanup_all` remove the
containers of an experiment from any process (the controller calls it on exit, SIGINT, SIGTERM),
and ``automl cleanup`` removes leftovers after a hard kill.

The launcher object is pickled to Ray workers: it holds only settings. A Docker client is created
lazily, once per process, from the ``DOCKER_*`` environment captured when the launcher was built
(so every worker talks to the engine the controller checked).
"""

from __future__ import annotations

import atexit
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from automl.errors import UserError
from launchers.base import Handle, LaunchSpec, Launcher, LaunchError

LABEL = "automl"
PULL_POLICIES = ("missing", "never", "always")
_DOCKER_ENV_KEYS = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
EXIT_LOST = 125  # Docker's own "the daemon failed" status; used when a container is lost
_STACK_BYTES = 64 * 1024 * 1024

# Per-process state (never pickled): clients by DOCKER_* environment, and the containers this
# process started and has not removed yet (removed at exit).
_clients: dict[tuple[int, tuple[tuple[str, str], ...]], Any] = {}
_live: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {}
_state_lock = threading.Lock()
_pull_lock = threading.Lock()
_atexit_registered = False
_no_ulimits: set[tuple[tuple[str, str], ...]] = set()  # engines that refused our ulimits


def _env_key(docker_env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(docker_env.items()))


def _sdk():
    try:
        import docker
    except ImportError:  # pragma: no cover - docker is a dependency of the engine
        raise UserError("--launcher docker needs the Docker SDK for Python: pip install 'docker>=7'") \
            from None
    return docker


def get_client(docker_env: dict[str, str] | None = None):
    """This process's Docker client for ``docker_env`` (DOCKER_* variables; {} = Docker's default)."""
    docker = _sdk()
    env = dict(docker_env or {})
    key = (os.getpid(), _env_key(env))
    with _state_lock:
        client = _clients.get(key)
        if client is None:
            # No DOCKER_HOST in ``env`` means the default socket, whatever this process's own
            # environment says: every process must reach the engine the controller checked.
            client = docker.from_env(environment=env, max_pool_size=64)
            _clients[key] = client
    return client


def engine_address(docker_env: dict[str, str]) -> str:
    return docker_env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _short(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return " ".join(str(text).split())[:400]


def _unreachable(docker_env: dict[str, str], exc: BaseException,
                 context: str = "--launcher docker") -> UserError:
    where = engine_address(docker_env)
    text = _short(exc)
    if "ermission denied" in text:
        fix = ("add your user to the 'docker' group (sudo usermod -aG docker $USER, then log in "
               "again) or run rootless Docker and set DOCKER_HOST")
    else:
        fix = "start it (sudo systemctl start docker), or set DOCKER_HOST to a running engine"
        if context == "--launcher docker":
            fix += ", or use --launcher local"
    return UserError(f"{context}: cannot reach the Docker engine at {where} ({text}); {fix}")


def container_name(job_name: str) -> str:
    """A valid, unique container name derived from the job's name."""
    base = re.sub(r"[^a-zA-Z0-9_.-]+", "-", job_name).strip("-.") or "trial"
    if not base[0].isalnum():
        base = f"t{base}"
    return f"automl-{base[:90]}-{secrets.token_hex(3)}"


def _register(container_id: str, env_key: tuple[tuple[str, str], ...], name: str) -> None:
    global _atexit_registered
    with _state_lock:
        _live[container_id] = (env_key, name)
        if not _atexit_registered:
            atexit.register(remove_started_containers)
            _atexit_registered = True


def _unregister(container_id: str) -> None:
    with _state_lock:
        _live.pop(container_id, None)


def spec_input_paths(spec: dict[str, Any], input_keys: Iterable[str]) -> tuple[Path, ...]:
    """Host paths a trial's spec names under the skill's declared inputs, to mount read-only.

    ``input_keys`` are the dotted keys of ``actions.train.inputs`` in skill_info.yaml (TAO:
    ``dataset.segment.root_dir``, ``model.backbone.pretrained_backbone_path``,
    ``train.pretrained_model_path``, ``train.resume_training_checkpoint_path``). Empty values,
    ``???`` placeholders and relative paths (resolved inside the trial folder) are skipped.
    """
    from automl.skill.spec import get_dotted

    out: list[Path] = []
    for key in input_keys:
        value = get_dotted(spec, key, None)
        if isinstance(value, str) and value.startswith("/") and Path(value) not in out:
            out.append(Path(value))
    return tuple(out)


def remove_started_containers() -> int:
    """Force-remove every container this process started and has not removed yet (atexit)."""
    with _state_lock:
        items = list(_live.items())
    removed = 0
    for container_id, (env_key, _name) in items:
        try:
            get_client(dict(env_key)).api.remove_container(container_id, force=True, v=True)
            removed += 1
        except Exception:  # noqa: BLE001 - best effort at exit (already gone, engine down)
            pass
        _unregister(container_id)
    return removed


def remove_containers(labels: dict[str, str] | None = None,
                      docker_env: dict[str, str] | None = None,
                      context: str = "--launcher docker") -> int:
    """Force-remove all containers labelled ``automl=1`` and every label in ``labels``.

    Running or not; returns how many were removed. Raises UserError when the engine is down.
    """
    env = docker_env if docker_env is not None else _captured_env()
    filters = [f"{LABEL}=1", *(f"{k}={v}" for k, v in (labels or {}).items())]
    try:
        client = get_client(env)
        found = client.api.containers(all=True, filters={"label": filters})
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any SDK/connection error means: engine unreachable
        raise _unreachable(env, exc, context) from None
    removed = 0
    for info in found:
        try:
            client.api.remove_container(info["Id"], force=True, v=True)
            removed += 1
        except Exception as exc:  # noqa: BLE001
            if "No such container" not in _short(exc) and "already in progress" not in _short(exc):
                raise LaunchError(f"could not remove container {info['Id'][:12]}: {_short(exc)}") \
                    from exc
        _unregister(info["Id"])
    return removed


def _captured_env() -> dict[str, str]:
    return {k: os.environ[k] for k in _DOCKER_ENV_KEYS if os.environ.get(k)}


class DockerHandle(Handle):
    """A trial's running container: exit code from the engine, logs copied into the log file."""

    def __init__(self, container: Any, log_path: Path, env_key: tuple[tuple[str, str], ...]) -> None:
        self.container = container
        self.id: str = container.id
        self.name: str = container.name
        self.log_path = log_path
        self._env_key = env_key
        self._code: int | None = None
        self._exited = threading.Event()
        self._wait_error: BaseException | None = None
        self._finished = False
        self._finish_lock = threading.Lock()
        self._logs = threading.Thread(target=self._follow_logs, name=f"logs-{self.name}",
                                      daemon=True)
        self._waiter = threading.Thread(target=self._wait_exit, name=f"wait-{self.name}",
                                        daemon=True)
        self._logs.start()
        self._waiter.start()

    # -- background threads -------------------------------------------------------------------
    def _follow_logs(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            try:
                for chunk in self.container.logs(stream=True, follow=True, stdout=True,
                                                 stderr=True):
                    out.write(chunk)
                    out.flush()
            except Exception as exc:  # noqa: BLE001 - the engine went away or the container did
                out.write(f"\n[automl] log stream of container {self.name} ended: "
                          f"{_short(exc)}\n".encode())

    def _wait_exit(self) -> None:
        try:
            result = self.container.wait()
            self._code = int(result.get("StatusCode", EXIT_LOST))
        except Exception as exc:  # noqa: BLE001 - decided in poll()
            self._wait_error = exc
        self._exited.set()

    # -- Handle -------------------------------------------------------------------------------
    def poll(self) -> int | None:
        if not self._exited.is_set():
            return None
        self._finish()
        return self._code

    def stop(self, grace_s: float = 5.0) -> int | None:
        if not self._exited.is_set():
            try:
                # SIGTERM (the image's stop signal) to the init process, SIGKILL after grace_s.
                self.container.stop(timeout=max(1, math.ceil(grace_s)))
            except Exception:  # noqa: BLE001 - gone already, or the engine refuses: kill below
                pass
            if not self._exited.wait(grace_s + 10):
                try:
                    self.container.kill()
                except Exception:  # noqa: BLE001
                    pass
                self._exited.wait(10)
        self._finish()
        return self._code

    # -- internals ----------------------------------------------------------------------------
    def _finish(self) -> None:
        """Once exited: drain the logs, note an OOM kill, remove the container (once)."""
        with self._finish_lock:
            if self._finished:
                return
            self._finished = True
            oom = False
            if self._wait_error is not None or self._code is None:
                self._code, note = self._inspect_exit()
            else:
                note = ""
            try:
                state = self.container.client.api.inspect_container(self.id)["State"]
                oom = bool(state.get("OOMKilled"))
            except Exception:  # noqa: BLE001
                pass
            self._logs.join(timeout=15)
            if oom or note:
                with self.log_path.open("ab") as out:
                    if oom:
                        out.write(b"\n[automl] out of memory: the kernel OOM killer stopped "
                                  b"this container (State.OOMKilled)\n")
                    if note:
                        out.write(f"\n[automl] {note}\n".encode())
            try:
                self.container.remove(force=True, v=True)
            except Exception:  # noqa: BLE001 - already removed; atexit/cleanup retries otherwise
                pass
            else:
                _unregister(self.id)

    def _inspect_exit(self) -> tuple[int, str]:
        try:
            state = self.container.client.api.inspect_container(self.id)["State"]
            if not state.get("Running"):
                return int(state.get("ExitCode", EXIT_LOST)), ""
            # The wait call failed but the container runs on: nothing else to do than stop it.
            self.container.client.api.remove_container(self.id, force=True, v=True)
            return EXIT_LOST, (f"infrastructure: lost track of container {self.name} "
                               f"({_short(self._wait_error or RuntimeError('?'))}); removed it")
        except Exception as exc:  # noqa: BLE001
            text = _short(exc)
            if "No such container" in text or "404" in text:
                return EXIT_LOST, (f"infrastructure: container {self.name} disappeared (removed "
                                   f"outside automl?): {text}")
            return EXIT_LOST, f"infrastructure: Cannot connect to the Docker daemon: {text}"


class DockerLauncher(Launcher):
    """Runs each trial in a fresh container of ``image``.

    ``pull``: ``missing`` (pull when the image is not on the node), ``never`` (the image must be
    loaded/built already), ``always`` (pull once at preflight). ``shm_size``: /dev/shm of each
    container. ``network``: Docker network mode (None: Docker's default; ``host`` only when asked).
    ``user``: ``uid:gid`` inside the container (None: the invoking user; ``""``: the image's).
    ``extra_read_paths``: more host paths mounted read-only at the same path (pretrained weights
    outside the dataset and the trial folder).
    """

    name = "docker"
    runs_on_host = False

    @classmethod
    def from_settings(cls, settings: Any, skill: Any) -> DockerLauncher:
        return cls(image=settings.image or skill.container_image, pull=settings.pull,
                   shm_size=settings.shm_size, network=settings.docker_network,
                   extra_read_paths=tuple(settings.mounts))

    def __init__(self, image: str | None, pull: str = "missing", shm_size: str = "1g",
                 network: str | None = None, user: str | None = None, init: bool = True,
                 extra_read_paths: tuple[str | Path, ...] = (),
                 docker_env: dict[str, str] | None = None) -> None:
        if not image:
            raise UserError("--launcher docker needs an image: pass --image IMAGE or set "
                            "container_image in the skill's references/skill_info.yaml")
        if pull not in PULL_POLICIES:
            raise UserError(f"--pull {pull!r}: expected one of {', '.join(PULL_POLICIES)}")
        if network is not None and not re.fullmatch(r"[A-Za-z0-9_.:-]+", network):
            raise UserError(f"--network {network!r}: not a Docker network name")
        self.image = image
        self.pull = pull
        self.shm_size = shm_size
        self.network = network
        self.user = user
        self.init = init
        self.extra_read_paths = tuple(os.path.abspath(p) for p in extra_read_paths)
        self.docker_env = dict(docker_env) if docker_env is not None else _captured_env()

    def __repr__(self) -> str:
        return f"DockerLauncher(image={self.image!r}, pull={self.pull!r})"

    # -- clients --------------------------------------------------------------------------------
    def client(self):
        return get_client(self.docker_env)

    def _checked_client(self):
        try:
            client = self.client()
            client.ping()
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - DockerException, requests/OS errors alike
            raise _unreachable(self.docker_env, exc) from None
        return client

    # -- preflight ------------------------------------------------------------------------------
    def preflight(self, argv: tuple[str, ...]) -> None:
        if not argv:
            raise UserError("the skill's action command is empty: set actions.train.command "
                            "in references/skill_info.yaml")
        client = self._checked_client()
        self._ensure_image(client, at_preflight=True)
        self._check_command(client, argv[0])

    def _image_present(self, client) -> bool:
        docker = _sdk()
        try:
            client.images.get(self.image)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _ensure_image(self, client, at_preflight: bool) -> None:
        present = self._image_present(client)
        if present and not (self.pull == "always" and at_preflight):
            return
        if self.pull == "never":
            message = (f"image {self.image} not found locally and --pull never: docker load/build "
                       f"it or allow pulling (--pull missing)")
            raise UserError(message) if at_preflight else LaunchError(message)
        with _pull_lock:
            if not at_preflight and self._image_present(client):
                return
            try:
                client.images.pull(self.image)
            except Exception as exc:  # noqa: BLE001
                message = (f"image {self.image}: pull failed ({_short(exc)}); log in to the "
                           f"registry (nvcr.io: docker login nvcr.io with an NGC API key), or "
                           f"docker load/build the image and use --pull never")
                if at_preflight:
                    raise UserError(message) from None
                raise LaunchError(message) from exc

    def _check_command(self, client, program: str) -> None:
        """Refuse a trainer command the image does not have (one short container, best effort)."""
        try:
            container = client.containers.create(
                self.image, entrypoint=["/bin/sh", "-c", 'command -v "$1" >/dev/null', "sh"],
                command=[program], labels={LABEL: "1", "automl.preflight": "1"},
                network_mode="none", user=self._user() or None)
        except Exception:  # noqa: BLE001 - no way to check: the trials will tell
            return
        try:
            try:
                container.start()
            except Exception:  # noqa: BLE001 - no /bin/sh in the image: cannot check
                return
            code = int(container.wait(timeout=120).get("StatusCode", 0))
        except Exception:  # noqa: BLE001
            return
        finally:
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
        if code != 0:
            raise UserError(f"trainer command '{program}' not found in image {self.image} (not on "
                            f"the image's PATH); check actions.train.command in skill_info.yaml "
                            f"or --image")

    # -- start ----------------------------------------------------------------------------------
    def _user(self) -> str:
        if self.user is not None:
            return self.user
        return f"{os.getuid()}:{os.getgid()}"

    def container_config(self, job: LaunchSpec) -> dict[str, Any]:
        """The ``containers.create`` keyword arguments for ``job`` (pure; see the module doc)."""
        from docker.types import DeviceRequest, Mount, Ulimit

        env = {str(k): str(v) for k, v in job.env.items()}
        if job.gpu_ids:
            host_ids = [str(g) for g in job.gpu_ids]
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(host_ids)))
            env["NVIDIA_VISIBLE_DEVICES"] = ",".join(host_ids)
            env["AUTOML_HOST_GPU_IDS"] = ",".join(host_ids)
        else:
            env["NVIDIA_VISIBLE_DEVICES"] = "void"
        user = self._user()
        if user and user.split(":")[0] not in ("0", "root"):
            env.setdefault("HOME", "/tmp")
        config: dict[str, Any] = {
            "image": self.image,
            "command": list(job.argv),
            "name": container_name(job.name),
            "working_dir": os.path.abspath(job.cwd),
            "environment": env,
            "labels": {**{str(k): str(v) for k, v in job.labels.items()}, LABEL: "1"},
            "mounts": [Mount(target=path, source=path, type="bind", read_only=read_only)
                       for path, read_only in self.mount_plan(job)],
            "shm_size": self.shm_size,
            "init": self.init,
            "privileged": False,
            "ulimits": [Ulimit(name="memlock", soft=-1, hard=-1),
                        Ulimit(name="stack", soft=_STACK_BYTES, hard=_STACK_BYTES)],
            "stdin_open": False,
            "tty": False,
        }
        if user:
            config["user"] = user
        if self.network:
            config["network_mode"] = self.network
        if job.gpu_ids:
            config["device_requests"] = [DeviceRequest(device_ids=[str(g) for g in job.gpu_ids],
                                                       capabilities=[["gpu"]])]
        return config

    def mount_plan(self, job: LaunchSpec) -> list[tuple[str, bool]]:
        """(absolute host path = container path, read_only) for each bind mount, parents first.

        The write paths (the trial folder) are mounted read-write; a read path inside one of
        them (a checkpoint the trial inherited) is already visible and is not mounted again.
        """
        writes = sorted({os.path.abspath(p) for p in job.write_paths})
        plan: dict[str, bool] = {path: False for path in writes}
        for path in (*job.read_paths, *self.extra_read_paths):
            path = os.path.abspath(path)
            if not any(path == w or path.startswith(w.rstrip("/") + "/") for w in writes):
                plan.setdefault(path, True)
        return sorted(plan.items(), key=lambda item: (item[0].count("/"), item[0]))

    def start(self, job: LaunchSpec) -> DockerHandle:
        try:
            client = self._checked_client()
        except UserError as exc:
            raise LaunchError(str(exc)) from None
        config = self.container_config(job)
        env_key = _env_key(self.docker_env)
        if env_key in _no_ulimits:
            config.pop("ulimits", None)
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            container = self._create_and_start(client, config)
        except _StartError as exc:
            if "ulimits" not in config or "rlimit" not in exc.text:
                raise LaunchError(f"container {config['name']} ({self.image}) could not start: "
                                  f"{_explain_start_error(exc.text)}") from None
            # Some engines (rootless, sandboxed) may not raise memlock/stack limits: run without.
            _no_ulimits.add(env_key)
            config.pop("ulimits")
            with job.log_path.open("ab") as log:
                log.write(b"[automl] note: this Docker engine does not allow raising the "
                          b"memlock/stack ulimits; trials run with its defaults\n")
            try:
                container = self._create_and_start(client, config)
            except _StartError as again:
                raise LaunchError(f"container {config['name']} ({self.image}) could not start: "
                                  f"{_explain_start_error(again.text)}") from None
        return DockerHandle(container, job.log_path, env_key)

    def _create_and_start(self, client, config: dict[str, Any]):
        docker = _sdk()
        try:
            container = client.containers.create(**config)
        except docker.errors.ImageNotFound:
            try:
                self._ensure_image(client, at_preflight=False)
                container = client.containers.create(**config)
            except docker.errors.DockerException as exc:
                raise LaunchError(f"image {self.image}: {_short(exc)}") from exc
        except docker.errors.DockerException as exc:
            raise LaunchError(f"could not create a container of {self.image} for "
                              f"{config['name']}: {_short(exc)}") from exc
        _register(container.id, _env_key(self.docker_env), config["name"])
        try:
            container.start()
        except Exception as exc:  # noqa: BLE001
            try:
                container.remove(force=True, v=True)
                _unregister(container.id)
            except Exception:  # noqa: BLE001
                pass
            raise _StartError(_short(exc)) from exc
        return container

    # -- cleanup --------------------------------------------------------------------------------
    @classmethod
    def cleanup_leftovers(cls, labels: dict[str, str] | None = None) -> int:
        return remove_containers(labels, context="automl cleanup")

    def cleanup_all(self, labels: dict[str, str] | None = None) -> int:
        """Remove every container labelled ``automl=1`` and all of ``labels``; the count."""
        return remove_containers(labels, self.docker_env)

    def close(self, experiment: str | None = None) -> int:
        """Remove what is left: containers this process started, and (given ``experiment``)
        every container of that experiment, wherever in this engine it was started.

        Best effort, never raises (it runs on the way out of a failed or cancelled run).
        """
        removed = remove_started_containers()
        if experiment:
            try:
                removed += self.cleanup_all({"automl.experiment": experiment})
            except Exception:  # noqa: BLE001
                pass
        return removed


class _StartError(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _explain_start_error(text: str) -> str:
    if "could not select device driver" in text or "nvidia" in text.lower():
        return (f"{text} (GPU containers need the NVIDIA Container Toolkit on this node: "
                f"nvidia-ctk runtime configure --runtime=docker, then restart Docker)")
    if "bind source path does not exist" in text:
        return f"{text} (a dataset or trial folder is missing on this node; on a cluster the " \
               f"workspace and dataset must be on a filesystem shared at the same path)"
    return text


def wait_until_removed(client, container_id: str, timeout_s: float = 10.0) -> bool:
    """Test/diagnostic helper: True once ``container_id`` no longer exists."""
    docker = _sdk()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            client.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return True
        time.sleep(0.1)
    return False
