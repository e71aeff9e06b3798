"""The Docker launcher against a real Docker engine, without any registry.

An engine is used if one is reachable (DOCKER_HOST, /var/run/docker.sock); otherwise the session
starts a private ``dockerd`` (tests/docker/dockerd.py) and stops it at the end. The trainer image
is built here from busybox-static and a TAO-contract ``segformer`` sh script
(tests/docker/image.py, tests/docker/segformer.sh) with ``docker import``. Tests that need an
engine skip, with the precise reason, only where no engine can run at all (not root, docker.io
not installed, the kernel refuses). The unit tests at the top need no engine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from automl.errors import UserError
from launchers.base import LaunchSpec, LaunchError

docker_sdk = pytest.importorskip("docker", reason="the Docker SDK for Python is not installed")

from launchers.docker import DockerLauncher, container_name, remove_containers  # noqa: E402

HELPERS = Path(__file__).resolve().parents[1] / "docker"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"automl_test_{name}", HELPERS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


dockerd = _load("dockerd")
image_helpers = _load("image")


# ------------------------------------------------------------------------------------------
# Without an engine
# ------------------------------------------------------------------------------------------

def _job(tmp_path: Path, **kw) -> LaunchSpec:
    trial = tmp_path / "ws" / "trials" / "t1"
    data = tmp_path / "data"
    trial.mkdir(parents=True, exist_ok=True)
    data.mkdir(exist_ok=True)
    defaults = dict(argv=("segformer", "train", "-e", str(trial / "spec.yaml")), cwd=trial,
                    log_path=trial / "train.log", env={"OMP_NUM_THREADS": "2"}, name="ws-t1",
                    labels={"automl.experiment": "ws", "automl.trial": "t1"},
                    read_paths=(data,), write_paths=(trial,))
    defaults.update(kw)
    return LaunchSpec(**defaults)


def test_config_mounts_exactly_the_job_paths_at_the_same_path(tmp_path):
    job = _job(tmp_path)
    config = DockerLauncher("img:1").container_config(job)
    mounts = {m["Target"]: m for m in config["mounts"]}
    assert set(mounts) == {str(tmp_path / "data"), str(tmp_path / "ws" / "trials" / "t1")}
    for target, mount in mounts.items():
        assert mount["Source"] == target and mount["Type"] == "bind"
    assert mounts[str(tmp_path / "data")]["ReadOnly"] is True
    assert mounts[str(tmp_path / "ws" / "trials" / "t1")]["ReadOnly"] is False
    assert config["working_dir"] == str(job.cwd)
    assert config["command"] == list(job.argv)  # an argument list, no shell
    assert config["user"] == f"{os.getuid()}:{os.getgid()}"
    assert config["privileged"] is False and "network_mode" not in config
    assert config["labels"] == {"automl": "1", "automl.experiment": "ws", "automl.trial": "t1"}
    assert config["environment"]["OMP_NUM_THREADS"] == "2"
    assert config["environment"]["NVIDIA_VISIBLE_DEVICES"] == "void"  # a CPU trial gets no GPU
    assert "device_requests" not in config and config["shm_size"] == "1g" and config["init"]


def test_config_gpus_are_requested_by_host_id_and_renumbered_inside(tmp_path):
    config = DockerLauncher("img:1", shm_size="8g", network="host").container_config(
        _job(tmp_path, gpu_ids=(2, 3)))
    (request,) = config["device_requests"]
    assert request["DeviceIDs"] == ["2", "3"] and request["Capabilities"] == [["gpu"]]
    env = config["environment"]
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1"  # the container only has the requested GPUs
    assert env["NVIDIA_VISIBLE_DEVICES"] == "2,3" and env["AUTOML_HOST_GPU_IDS"] == "2,3"
    assert config["shm_size"] == "8g" and config["network_mode"] == "host"


def test_config_user_and_write_path_precedence(tmp_path):
    trial = tmp_path / "ws" / "trials" / "t1"
    inherited = trial / "inherited" / "model_epoch_000_step_00010.pth"
    job = _job(tmp_path, read_paths=(trial, inherited, tmp_path / "data", tmp_path / "data"))
    launcher = DockerLauncher("img:1", user="", extra_read_paths=(tmp_path / "weights.pth",))
    config = launcher.container_config(job)
    assert "user" not in config  # "" keeps the image's user
    plan = launcher.mount_plan(job)
    assert plan == [(str(tmp_path / "data"), True), (str(tmp_path / "weights.pth"), True),
                    (str(trial), False)]  # inside the writable trial folder: not mounted again
    assert DockerLauncher("i", user="1000:1000").container_config(job)["environment"]["HOME"] == "/tmp"


def test_spec_input_paths_are_the_declared_absolute_inputs():
    from launchers.docker import spec_input_paths

    spec = {"dataset": {"segment": {"root_dir": "/data/seg"}},
            "model": {"backbone": {"pretrained_backbone_path": ""}},
            "train": {"pretrained_model_path": "/weights/seg.pth",
                      "resume_training_checkpoint_path": "relative/ckpt.pth"}}
    keys = ["dataset.segment.root_dir", "model.backbone.pretrained_backbone_path",
            "train.pretrained_model_path", "train.resume_training_checkpoint_path", "absent.key"]
    assert spec_input_paths(spec, keys) == (Path("/data/seg"), Path("/weights/seg.pth"))


def test_container_names_are_valid_and_unique():
    names = {container_name("-weird name/with:chars") for _ in range(20)}
    assert len(names) == 20
    assert all(n.startswith("automl-weird-name-with-chars-") for n in names)


def test_launcher_pickles_without_a_client(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/automl-test-nowhere.sock")
    launcher = DockerLauncher("img:1", pull="never")
    clone = pickle.loads(pickle.dumps(launcher))
    assert clone.docker_env == {"DOCKER_HOST": "unix:///tmp/automl-test-nowhere.sock"}
    assert vars(clone) == vars(launcher)  # settings only: the client is per process


def test_settings_errors_are_user_errors():
    with pytest.raises(UserError, match="needs an image"):
        DockerLauncher(None)
    with pytest.raises(UserError, match="--pull 'sometimes'"):
        DockerLauncher("img", pull="sometimes")


def test_unreachable_engine_is_a_user_error_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    launcher = DockerLauncher("img:1")
    with pytest.raises(UserError) as err:
        launcher.preflight(("segformer", "train"))
    message = str(err.value)
    assert "cannot reach the Docker engine" in message and "no-docker.sock" in message
    assert "DOCKER_HOST" in message
    with pytest.raises(LaunchError, match="cannot reach the Docker engine"):
        launcher.start(_job(tmp_path))  # in a trial: an infrastructure failure (retried)
    from automl.commands.cleanup import cleanup

    with pytest.raises(UserError, match="cannot reach the Docker engine"):
        cleanup("ws")
    assert launcher.close("ws") == 0  # on the way out: never raises


def test_cleanup_cli_names(tmp_path):
    from automl.commands.cleanup import experiment_label

    assert experiment_label("seg-bohb-20260101") == "seg-bohb-20260101"
    assert experiment_label(str(tmp_path / "seg-bohb-20260101") + "/") == "seg-bohb-20260101"


# ------------------------------------------------------------------------------------------
# A real engine
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def docker_engine():
    engine, why = dockerd.provide()
    if engine is None:
        pytest.skip(f"no Docker engine can run here: {why}")
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="session")
def test_image(docker_engine, tmp_path_factory) -> str:
    busybox, why = image_helpers.find_static_busybox()
    if busybox is None:
        pytest.skip(f"cannot build the test image: {why}")
    client = docker_engine.client()
    try:
        return image_helpers.build_image(client, tmp_path_factory.mktemp("image"))
    finally:
        client.close()


@pytest.fixture
def engine(docker_engine, test_image, monkeypatch):
    """DOCKER_HOST points at the test engine (the launcher captures it when built)."""
    monkeypatch.setenv("DOCKER_HOST", docker_engine.host)
    client = docker_engine.client()
    yield client
    client.close()


def _containers(client, **labels) -> list:
    filters = ["automl=1", *(f"{k}={v}" for k, v in labels.items())]
    return client.containers.list(all=True, filters={"label": filters})


def _spec(tmp_path: Path, trial: Path, **values) -> Path:
    spec = {"results_dir": str(trial / "results"), "hp": {"x": 0.6, "y": 3, "c": "a"},
            "train": {"num_epochs": 3, "checkpoint_interval": 1, "validation_interval": 1,
                      "resume_training_checkpoint_path": "", "results_dir": ""},
            "fake": {"mode": "ok", "epoch_s": 0.0},
            "dataset": {"segment": {"root_dir": str(tmp_path / "data")}}}
    for key, value in values.items():
        section, _, leaf = key.partition(".")
        spec[section][leaf] = value
    path = trial / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _status(trial: Path) -> list[dict]:
    path = trial / "results" / "train" / "status.json"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for(predicate, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_preflight_checks_image_and_command(engine, test_image):
    DockerLauncher(test_image, pull="never").preflight(("segformer", "train"))
    with pytest.raises(UserError) as err:
        DockerLauncher("automl-test-absent:1", pull="never").preflight(("segformer",))
    assert str(err.value) == ("image automl-test-absent:1 not found locally and --pull never: "
                              "docker load/build it or allow pulling (--pull missing)")
    with pytest.raises(UserError, match="pull failed"):  # no registry reachable from here
        DockerLauncher("automl-test-absent:1", pull="missing").preflight(("segformer",))
    with pytest.raises(UserError, match="trainer command 'segformr' not found in image"):
        DockerLauncher(test_image, pull="never").preflight(("segformr", "train"))
    assert not _containers(engine, **{"automl.preflight": "1"})


def test_trial_runs_as_user_with_exact_mounts_and_logs(engine, test_image, tmp_path):
    (tmp_path / "data" / "images").mkdir(parents=True)
    secret = tmp_path / "not-mounted"
    secret.mkdir()
    trial = tmp_path / "ws" / "trials" / "t1"
    trial.mkdir(parents=True)
    trial.chmod(0o777)  # the container user below is not the owner of the folder
    spec = _spec(tmp_path, trial)
    job = _job(tmp_path, argv=("segformer", "train", "-e", str(spec)),
               env={"OMP_NUM_THREADS": "2", "PROBE_PATH": str(secret)})
    handle = DockerLauncher(test_image, pull="never", user="4321:4321", shm_size="256m") \
        .start(job)
    assert handle.wait(60) == 0
    log = job.log_path.read_text()
    assert "uid=4321 gid=4321" in log and "home=/tmp" in log
    assert f"cwd={trial}" in log
    assert f"dataset: read-only {tmp_path / 'data'}" in log
    assert f"probe: absent {secret}" in log  # nothing but the job's folders is visible
    assert "NVIDIA_VISIBLE_DEVICES=void" in log and "OMP_NUM_THREADS=2" in log
    assert "shm_kb=262144" in log
    # NVIDIA's recommended memlock/stack ulimits, unless this engine refuses them (then the
    # launcher says so in the log and runs without: a sandboxed or rootless engine).
    assert "memlock=unlimited" in log or "does not allow raising the memlock/stack" in log
    assert "epoch 3/3 val_miou=" in log
    checkpoint = trial / "results" / "train" / "model_epoch_002_step_00030.pth"  # 0-based epoch
    assert checkpoint.stat().st_uid == 4321  # files belong to the container user
    last = _status(trial)[-1]  # TAO's train run ends with RUNNING, not SUCCESS (exit 0 tells)
    assert (last["status"], last["message"]) == ("RUNNING", "Train finished successfully.")
    assert _removed(engine, handle.id)


def _removed(client, container_id: str) -> bool:
    """True once the container no longer exists (within 10 s)."""
    from launchers.docker import wait_until_removed

    return wait_until_removed(client, container_id, timeout_s=10)


def test_stop_removes_the_container_and_a_resume_continues(engine, test_image, tmp_path):
    (tmp_path / "data").mkdir()
    trial = tmp_path / "ws" / "trials" / "t1"
    trial.mkdir(parents=True)
    spec = _spec(tmp_path, trial, **{"train.num_epochs": 4, "fake.epoch_s": 0.5})
    launcher = DockerLauncher(test_image, pull="never")
    job = _job(tmp_path, argv=("segformer", "train", "-e", str(spec)))
    handle = launcher.start(job)
    first = trial / "results" / "train" / "model_epoch_000_step_00010.pth"
    assert _wait_for(first.exists, 30)
    started = time.monotonic()
    code = handle.stop(grace_s=5)
    assert time.monotonic() - started < 5  # the trainer got SIGTERM through --init at once
    assert code == 143, job.log_path.read_text()
    assert _removed(engine, handle.id)
    assert "SIGTERM at epoch" in job.log_path.read_text()
    done = max(line["epoch"] for line in _status(trial) if "epoch" in line)  # 0-based
    assert done < 3

    resume = sorted((trial / "results" / "train").glob("model_epoch_*.pth"))[-1]
    spec = _spec(tmp_path, trial, **{"train.num_epochs": 4,
                                     "train.resume_training_checkpoint_path": str(resume)})
    handle = launcher.start(_job(tmp_path, argv=("segformer", "train", "-e", str(spec))))
    assert handle.wait(60) == 0
    lines = _status(trial)
    second = max(i for i, line in enumerate(lines) if line["message"] == "Starting SegFormer train.")
    resumed = lines[second:]  # the resumed process's lines (it appends to the same file)
    assert resumed[1]["message"] == f"Resuming training from checkpoint: {resume}"
    epochs = [line["epoch"] for line in resumed if "epoch" in line]  # TAO's 0-based epochs
    resumed_at = int(resume.name.split("_")[2])
    assert epochs == list(range(resumed_at + 1, 4))
    assert f"resuming from {resume}" in job.log_path.read_text()
    assert not _containers(engine, **{"automl.experiment": "ws"})


def test_stop_kills_a_trainer_that_ignores_sigterm(engine, test_image, tmp_path):
    (tmp_path / "data").mkdir()
    trial = tmp_path / "ws" / "trials" / "t1"
    trial.mkdir(parents=True)
    spec = _spec(tmp_path, trial, **{"fake.mode": "ignore_term"})
    job = _job(tmp_path, argv=("segformer", "train", "-e", str(spec)))
    handle = DockerLauncher(test_image, pull="never").start(job)
    try:  # the log file appears once the container's output is being copied (later under load)
        assert _wait_for(lambda: job.log_path.is_file()
                         and "ignoring SIGTERM" in job.log_path.read_text(), 60)
        assert handle.poll() is None
        started = time.monotonic()
        assert handle.stop(grace_s=1) == 137  # SIGKILL after the grace period
        assert time.monotonic() - started < 15
        assert _removed(engine, handle.id)
    finally:  # never leave it running for the next test (they count labelled containers)
        handle.stop(grace_s=0)


def test_a_container_that_cannot_start_is_a_launch_error(engine, test_image, tmp_path):
    if "nvidia" in (engine.info().get("Runtimes") or {}):
        pytest.skip("this engine has the NVIDIA runtime: a GPU request would start")
    (tmp_path / "data").mkdir()
    job = _job(tmp_path, gpu_ids=(0,))
    with pytest.raises(LaunchError, match="could not start.*NVIDIA Container Toolkit"):
        DockerLauncher(test_image, pull="never").start(job)
    missing = _job(tmp_path, read_paths=(tmp_path / "no-such-dataset",))
    with pytest.raises(LaunchError, match="no-such-dataset"):
        DockerLauncher(test_image, pull="never").start(missing)
    assert not _containers(engine, **{"automl.experiment": "ws"})


_ORPHAN = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from launchers.base import LaunchSpec
    from launchers.docker import DockerLauncher
    trial = Path(sys.argv[1]); spec = sys.argv[2]; experiment = sys.argv[3]
    handle = DockerLauncher(sys.argv[4], pull="never").start(LaunchSpec(
        argv=("segformer", "train", "-e", spec), cwd=trial, log_path=trial / "train.log",
        name="orphan", labels={"automl.experiment": experiment, "automl.trial": "t1"},
        write_paths=(trial,)))
    print(handle.id, flush=True)
    if sys.argv[5] == "kill":
        time.sleep(3600)
""")


def _orphan(tmp_path: Path, image: str, experiment: str, how: str) -> subprocess.Popen:
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    trial = tmp_path / experiment / "trials" / "t1"
    trial.mkdir(parents=True)
    spec = _spec(tmp_path, trial, **{"fake.mode": "hang"})
    return subprocess.Popen([sys.executable, "-c", _ORPHAN, str(trial), str(spec), experiment,
                             image, how], stdout=subprocess.PIPE, text=True, env=os.environ)


def test_containers_are_removed_when_the_process_exits(engine, test_image, tmp_path):
    proc = _orphan(tmp_path, test_image, "exp-atexit", "exit")
    container_id = proc.stdout.readline().strip()
    assert proc.wait(60) == 0
    assert _removed(engine, container_id)  # atexit removed the running container


def test_cleanup_removes_what_a_killed_controller_left(engine, test_image, tmp_path, capsys):
    from automl.commands.cleanup import main_cleanup

    proc = _orphan(tmp_path, test_image, "exp-killed", "kill")
    container_id = proc.stdout.readline().strip()
    proc.kill()  # SIGKILL: no atexit
    proc.wait()
    other = _orphan(tmp_path / "other", test_image, "exp-other", "kill")
    other_id = other.stdout.readline().strip()
    try:
        assert [c.id for c in _containers(engine, **{"automl.experiment": "exp-killed"})] \
            == [container_id]
        import argparse

        assert main_cleanup(argparse.Namespace(experiment=str(tmp_path / "exp-killed"))) == 0
        assert "removed 1 container(s) of experiment exp-killed" in capsys.readouterr().out
        assert _removed(engine, container_id)
        assert [c.id for c in _containers(engine, **{"automl.experiment": "exp-other"})] \
            == [other_id]  # another experiment's container is left alone
        # What the controller calls on its way out (exit, SIGINT, SIGTERM):
        assert DockerLauncher(test_image, pull="never").close("exp-other") == 1
        assert _removed(engine, other_id)
    finally:
        other.kill()
        other.wait()
        for experiment in ("exp-killed", "exp-other"):
            remove_containers({"automl.experiment": experiment})


def test_resume_removes_the_containers_a_killed_controller_left(engine, test_image, tmp_path):
    """`automl resume` (automl.resume.reconcile, before it launches anything) removes the running
    containers labelled with its experiment, and only those, and says so."""
    from automl.resume.reconcile import stop_leftover_trainers

    proc = _orphan(tmp_path, test_image, "exp-resume", "kill")
    container_id = proc.stdout.readline().strip()
    proc.kill()  # SIGKILL: no atexit, the container runs on
    proc.wait()
    other = _orphan(tmp_path / "other", test_image, "exp-resume-other", "kill")
    other_id = other.stdout.readline().strip()
    try:
        note = stop_leftover_trainers(tmp_path / "exp-resume", DockerLauncher(test_image,
                                                                             pull="never"))
        assert note == "stopped 1 trainer container left by the interrupted run"
        assert _removed(engine, container_id)
        assert [c.id for c in _containers(engine, **{"automl.experiment": "exp-resume-other"})] \
            == [other_id]
    finally:
        other.kill()
        other.wait()
        for experiment in ("exp-resume", "exp-resume-other"):
            remove_containers({"automl.experiment": experiment})


# ------------------------------------------------------------------------------------------
# Through the engine
# ------------------------------------------------------------------------------------------

def _docker_skill(tmp_path: Path) -> Path:
    from tests.helpers.skills import make_fake_skill

    skill = make_fake_skill(tmp_path / "docker-skill")
    info_path = skill / "references" / "skill_info.yaml"
    info = yaml.safe_load(info_path.read_text())
    info["actions"]["train"]["command"] = "segformer train -e {config_path}"
    # As TAO's skill_info.yaml declares it: the one folder --root-dir sets, mounted read-only.
    info["actions"]["train"]["inputs"] = {"dataset.segment.root_dir": {"type": "folder"}}
    info["container_image"] = image_helpers.IMAGE
    info_path.write_text(yaml.safe_dump(info))
    return skill


def _run(tmp_path: Path, *extra: str) -> tuple[int, Path]:
    from automl.cli import main

    workspace = tmp_path / "ws"
    (tmp_path / "data").mkdir(exist_ok=True)
    code = main(["run", "--skill-dir", str(_docker_skill(tmp_path)), "--launcher", "docker",
                 "--image", image_helpers.IMAGE, "--root-dir", str(tmp_path / "data"),
                 "--workspace", str(workspace), "--progress", "none", "--seed", "3", *extra])
    return code, workspace


def _history(workspace: Path):
    from automl.results.records import read_history

    return read_history(workspace / "history.json")[1]


@pytest.mark.usefixtures("ray_session")
def test_engine_runs_trials_in_containers(engine, tmp_path):
    from automl.results.best import read_best_rec

    code, ws = _run(tmp_path, "--algo", "random", "--max-recommendations", "2",
                    "--max-epochs", "2")
    assert code == 0
    records = _history(ws)
    assert len(records) == 2 and all(r.status == "completed" for r in records), records
    best = read_best_rec(ws / "best_rec.json")["best"]
    assert best["observed_budget"] == 2 and Path(best["checkpoint_uri"]).exists()
    for record in records:
        log = (ws / "trials" / record.rec_id / "train.log").read_text()
        assert f"uid={os.getuid()} gid={os.getgid()}" in log
        assert f"dataset: read-only {tmp_path / 'data'}" in log
        assert "epoch 2/2 val_miou=" in log
    assert not _containers(engine, **{"automl.experiment": ws.name})


@pytest.mark.usefixtures("ray_session")
def test_engine_trial_timeout_stops_a_hung_container(engine, tmp_path):
    started = time.monotonic()
    code, ws = _run(tmp_path, "--algo", "random", "--max-recommendations", "1",
                    "--max-epochs", "2", "--trial-timeout", "4", "--set", "fake.mode=hang")
    assert code == 1  # no trial produced a metric
    (record,) = _history(ws)
    assert record.status == "failed" and record.failure_class == "timeout"
    assert time.monotonic() - started < 60
    assert "hanging" in (ws / "trials" / record.rec_id / "train.log").read_text()
    assert not _containers(engine, **{"automl.experiment": ws.name})


@pytest.mark.usefixtures("ray_session")
def test_engine_pbt_pauses_and_resumes_containers(engine, tmp_path):
    from automl.algorithms import available

    if "pbt" not in available():
        pytest.skip("--algo pbt is not available in this checkout (pause/resume through the "
                    "engine needs a pausing scheduler)")
    code, ws = _run(tmp_path, "--algo", "pbt", "--population-size", "2",
                    "--max-recommendations", "2", "--max-epochs", "4", "--max-concurrent", "2",
                    "--set", "fake.epoch_s=0.3")
    assert code == 0
    records = _history(ws)
    assert records and all(r.status in ("completed", "recovered") for r in records), records
    resumed = [spec for spec in ws.glob("trials/*/spec_segment_*.yaml")
               if yaml.safe_load(spec.read_text())["train"]["resume_training_checkpoint_path"]]
    assert resumed, "no trial segment resumed from a checkpoint"
    for spec in resumed:
        path = Path(yaml.safe_load(spec.read_text())["train"]["resume_training_checkpoint_path"])
        assert spec.parent in path.parents  # resumed from inside its own (mounted) folder
        log = (spec.parent / "train.log").read_text()
        assert "resuming from" in log
    assert not _containers(engine, **{"automl.experiment": ws.name})


@pytest.mark.usefixtures("ray_session")
def test_handoff_run_of_a_docker_experiment_runs_in_its_image(engine, tmp_path, capsys):
    """`automl handoff --run` runs the action where the trials ran: in the experiment's image,
    through the Docker launcher (dataset read-only, the hand-off folder writable), not locally."""
    from automl.cli import main

    code, ws = _run(tmp_path, "--algo", "random", "--max-recommendations", "1",
                    "--max-epochs", "1")
    assert code == 0
    skill = tmp_path / "docker-skill"  # give the skill an evaluate action run by the image
    info_path = skill / "references" / "skill_info.yaml"
    info = yaml.safe_load(info_path.read_text())
    info["actions"]["evaluate"] = {"command": "segformer evaluate -e {config_path}",
                                   "inputs": {"dataset.segment.root_dir": {"type": "folder"},
                                              "evaluate.checkpoint": {"type": "file"}}}
    info["spec_templates"]["evaluate"] = "../references/spec_template_evaluate.yaml"
    info_path.write_text(yaml.safe_dump(info))
    template = yaml.safe_load((skill / "references" / "spec_template_train.yaml").read_text())
    template.update(dataset={"segment": {"root_dir": ""}},
                    evaluate={"checkpoint": "", "results_dir": ""})
    (skill / "references" / "spec_template_evaluate.yaml").write_text(yaml.safe_dump(template))
    capsys.readouterr()
    code = main(["handoff", "evaluate", str(ws), "--run"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "evaluate exited 0 (docker)" in out
    log = (ws / "handoff" / "evaluate" / "evaluate.log").read_text()
    assert f"segformer(sh): uid={os.getuid()} gid={os.getgid()}" in log  # the image's trainer
    assert f"dataset: read-only {tmp_path / 'data'}" in log
    status = (ws / "handoff" / "evaluate" / "results" / "evaluate" / "status.json").read_text()
    assert '"val_miou"' in status and "val_miou = " in out  # its KPIs, from its status.json
    assert not _containers(engine, **{"automl.experiment": ws.name})

