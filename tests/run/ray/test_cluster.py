"""GPU slots and a real multi-node Ray cluster (two raylets on this machine).

The cluster tests start their own head node (``ray start --head --block``, 1 CPU and 2 declared
GPUs: Ray accepts GPUs that do not exist) and a second worker node (1 CPU, no GPU) joined to it,
each in its own process group, and stop exactly those processes at the end (never ``ray stop``,
which would stop every Ray instance on the machine). Experiments run in a subprocess
(``python -m automl.cli run --address ...``) so they have their own Ray driver, separate from the
test session's in-process Ray. The trainer is the fake trainer behind a probe that logs the Ray
node it runs on (``RAY_RAYLET_PID``: one raylet per node) and its ``CUDA_VISIBLE_DEVICES``.

Ray replaces a loopback ``--node-ip-address`` with the machine's own address, so the nodes
advertise that address; all processes still run on this machine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.helpers.skills import FAKE_TRAINER, make_fake_skill
from launchers.gpus import distributed_env, free_port, gpu_spec_overrides, visible_devices

# ------------------------------------------------------------------------------------------
# GPU slot helpers (pure)
# ------------------------------------------------------------------------------------------


def test_gpu_spec_overrides_renumber_the_assigned_gpus():
    assert gpu_spec_overrides(()) == {}
    assert gpu_spec_overrides((3,)) == {"train.num_gpus": 1, "train.gpu_ids": [0]}
    assert gpu_spec_overrides((2, 5)) == {"train.num_gpus": 2, "train.gpu_ids": [0, 1]}
    assert gpu_spec_overrides(("GPU-1a2b", "GPU-3c4d")) == {"train.num_gpus": 2,
                                                           "train.gpu_ids": [0, 1]}
    # Only keys the skill knows (TAO rejects unknown keys).
    assert gpu_spec_overrides((2, 5), known_keys={"train.num_gpus", "train.lr"}) == \
        {"train.num_gpus": 2}
    assert visible_devices((2, 5)) == "2,5"


def test_distributed_env_follows_tao_multinode_contract():
    assert distributed_env(1, 0, "10.0.0.1", 29500, 8) == {}  # single node: no WORLD_SIZE at all
    assert distributed_env(2, 1, "10.0.0.1", 29500, 4) == {
        "WORLD_SIZE": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1",
        "MASTER_PORT": "29500", "NUM_GPU_PER_NODE": "4"}
    for bad in [(0, 0, "a", 1, 1), (2, 2, "a", 1, 1), (2, 0, "", 1, 1), (2, 0, "a", 70000, 1),
                (2, 0, "a", 1, 0)]:
        with pytest.raises(ValueError):
            distributed_env(*bad)
    port = free_port()
    assert 1 <= port <= 65535


# ------------------------------------------------------------------------------------------
# A real local cluster
# ------------------------------------------------------------------------------------------

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
       "PYTHONUNBUFFERED": "1"}
RAY = [sys.executable, "-m", "ray.scripts.scripts"]
START_TIMEOUT_S = 120.0


def _free_ports(n: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(n):
        sock = socket.socket()
        sock.bind(("", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


@dataclass
class Cluster:
    address: str
    temp_dir: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the nodes this test started: each ``ray start --block`` process group."""
        for proc in reversed(self.processes):
            _kill_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.processes:  # the group outlives a stuck leader: always sweep it
            _kill_group(proc, signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _start_node(argv: list[str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(RAY + argv, stdout=out, stderr=subprocess.STDOUT, env=ENV,
                                stdin=subprocess.DEVNULL, start_new_session=True)


_WAIT_NODES = textwrap.dedent("""
    import sys, time, ray
    ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
    deadline = time.monotonic() + float(sys.argv[3])
    while time.monotonic() < deadline:
        alive = [n for n in ray.nodes() if n["Alive"]]
        if len(alive) >= int(sys.argv[2]):
            print(len(alive), ray.cluster_resources().get("CPU"), ray.cluster_resources().get("GPU"))
            sys.exit(0)
        time.sleep(0.2)
    sys.exit(1)
""")


@pytest.fixture(scope="module")
def ray_cluster():
    if sys.platform != "linux":
        pytest.skip("the local multi-node cluster test needs Linux")
    temp_dir = Path(tempfile.mkdtemp(prefix="automl-ray-", dir="/tmp"))  # short socket paths
    port, dashboard_port, agent_head, agent_worker = _free_ports(4)
    address = f"127.0.0.1:{port}"
    cluster = Cluster(address=address, temp_dir=temp_dir)
    try:
        head_log = temp_dir / "head.log"
        cluster.logs.append(head_log)
        cluster.processes.append(_start_node(
            ["start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1",
             "--num-cpus", "1", "--num-gpus", "2", "--temp-dir", str(temp_dir),
             "--include-dashboard", "false", "--dashboard-port", str(dashboard_port),
             "--dashboard-agent-listen-port", str(agent_head), "--disable-usage-stats"],
            head_log))
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:  # the GCS port answers once the head is up
            if cluster.processes[0].poll() is not None:
                pytest.fail(f"ray head exited: {head_log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        worker_log = temp_dir / "worker.log"
        cluster.logs.append(worker_log)
        cluster.processes.append(_start_node(
            ["start", "--block", "--address", address, "--node-ip-address", "127.0.0.1",
             "--num-cpus", "1", "--num-gpus", "0",
             "--dashboard-agent-listen-port", str(agent_worker), "--disable-usage-stats"],
            worker_log))
        ready = subprocess.run([sys.executable, "-c", _WAIT_NODES, address, "2",
                                str(START_TIMEOUT_S)], capture_output=True, text=True, env=ENV,
                               timeout=START_TIMEOUT_S + 30)
        if ready.returncode != 0:
            pytest.fail(f"the two-node cluster did not come up: {ready.stderr[-2000:]}\n"
                        f"{worker_log.read_text()[-2000:]}")
        assert ready.stdout.split()[:3] == ["2", "2.0", "2.0"], ready.stdout
        yield cluster
    finally:
        cluster.stop()
        import shutil

        shutil.rmtree(temp_dir, ignore_errors=True)


_PROBE = textwrap.dedent("""
    # Logs where the trial runs, then runs the fake trainer (same argv).
    import json, os, runpy, socket, sys, time
    print("probe:", json.dumps({"raylet_pid": os.environ.get("RAY_RAYLET_PID"),
                                "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                                "host": socket.gethostname(), "start": time.time()}), flush=True)
    sys.argv = [TRAINER, *sys.argv[1:]]
    try:
        runpy.run_path(TRAINER, run_name="__main__")
    finally:
        print("probe-end:", json.dumps({"end": time.time()}), flush=True)
""")


def _probe_skill(tmp_path: Path) -> Path:
    skill = make_fake_skill(tmp_path / "probe-skill")
    probe = tmp_path / "probe_trainer.py"
    probe.write_text(_PROBE.replace("TRAINER", repr(str(FAKE_TRAINER))))
    info_path = skill / "references" / "skill_info.yaml"
    info = yaml.safe_load(info_path.read_text())
    info["actions"]["train"]["command"] = f"{sys.executable} {probe} train -e {{config_path}}"
    info_path.write_text(yaml.safe_dump(info))
    return skill


def _run_on_cluster(cluster: Cluster, tmp_path: Path, *extra: str) -> Path:
    workspace = tmp_path / "ws"
    result = subprocess.run(
        [sys.executable, "-m", "automl.cli", "run", "--skill-dir", str(_probe_skill(tmp_path)),
         "--address", cluster.address, "--workspace", str(workspace), "--progress", "none",
         "--algo", "random", "--seed", "11", *extra],
        capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workspace


def _probes(workspace: Path) -> list[dict]:
    """One record per trial segment: where it ran, its GPUs, when."""
    out = []
    for log in sorted(workspace.glob("trials/*/train.log")):
        starts = [json.loads(line.split(" ", 1)[1]) for line in log.read_text().splitlines()
                  if line.startswith("probe: ")]
        ends = [json.loads(line.split(" ", 1)[1]) for line in log.read_text().splitlines()
                if line.startswith("probe-end: ")]
        for start, end in zip(starts, ends):
            out.append({**start, **end, "trial": log.parent.name})
    return out


@pytest.mark.slow
def test_trials_run_on_both_nodes_of_a_cluster(ray_cluster, tmp_path):
    # Trials long enough (3 x 1.5 s) that the second node's trial actor is up before the first
    # node's actor could take every trial (actors are reused).
    ws = _run_on_cluster(ray_cluster, tmp_path, "--max-recommendations", "4",
                         "--max-epochs", "3", "--max-concurrent", "2", "--cpus-per-trial", "1",
                         "--set", "fake.epoch_s=1.5")
    probes = _probes(ws)
    assert len(probes) == 4, probes
    nodes = {p["raylet_pid"] for p in probes}
    assert len(nodes) == 2 and None not in nodes, probes  # one raylet per node: both nodes ran trials
    history = json.loads((ws / "history.json").read_text())["trials"]
    assert len(history) == 4 and all(t["status"] == "completed" for t in history)


@pytest.mark.slow
def test_concurrent_trials_never_share_a_gpu(ray_cluster, tmp_path):
    ws = _run_on_cluster(ray_cluster, tmp_path, "--max-recommendations", "4",
                         "--max-epochs", "3", "--max-concurrent", "2", "--cpus-per-trial", "0.5",
                         "--gpus-per-trial", "1", "--set", "fake.epoch_s=1.5")
    probes = _probes(ws)
    assert len(probes) == 4, probes
    assert {p["cuda"] for p in probes} <= {"0", "1"}, probes  # exactly one GPU each
    assert len({p["raylet_pid"] for p in probes}) == 1  # only the head node has GPUs
    overlapping = 0
    for i, a in enumerate(probes):
        for b in probes[i + 1:]:
            if a["start"] < b["end"] and b["start"] < a["end"]:
                overlapping += 1
                assert a["cuda"] != b["cuda"], (a, b)
    assert overlapping >= 1, probes  # the two slots were really used at the same time
