"""GPU slots: which GPUs a trial owns, and how the spec and environment must say so.

Each trial asks Ray for ``--gpus-per-trial`` GPUs; Ray hands the trial's worker a set of ids
(``ray.get_gpu_ids()``) that no concurrent trial on that node holds. The launcher passes exactly
those ids on: ``CUDA_VISIBLE_DEVICES`` for a local process, a device request for a container.
Either way the trainer then sees its GPUs renumbered ``0..n-1`` (CUDA renumbers visible devices,
and a container only has the requested ones), so the spec must say ``train.num_gpus: n`` and
``train.gpu_ids: [0, .., n-1]`` - never the host ids, which would name devices the trainer
cannot see (TAO's launcher exports ``gpu_ids`` as its device list).

Multi-node trials (``train.num_nodes > 1``) use TAO's environment contract, as read by the TAO
PyTorch entrypoint: ``WORLD_SIZE`` is the **number of nodes**, ``NUM_GPU_PER_NODE`` the GPUs per
node, ``NODE_RANK`` this node's index, ``MASTER_ADDR``/``MASTER_PORT`` the rendezvous of node 0.
Setting ``WORLD_SIZE`` at all switches TAO into multi-node mode, so single-node trials get none of
these variables.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

GPU_KEYS = ("train.num_gpus", "train.gpu_ids")


def assigned_gpu_ids() -> tuple[int | str, ...]:
    """The GPU ids Ray assigned to the calling worker (() outside Ray or without GPUs).

    Numeric ids become ints; anything else (GPU/MIG UUIDs when a node's CUDA_VISIBLE_DEVICES lists
    UUIDs) is kept as a string, which both CUDA_VISIBLE_DEVICES and Docker device requests accept.
    """
    try:
        import ray

        ids = ray.get_gpu_ids()
    except Exception:  # noqa: BLE001 - not in a Ray worker
        return ()
    return tuple(int(g) if str(g).isdigit() else str(g) for g in ids)


def visible_devices(assigned: Iterable[int | str]) -> str:
    """``CUDA_VISIBLE_DEVICES`` for a local process that owns ``assigned`` (host ids)."""
    return ",".join(str(g) for g in assigned)


def gpu_spec_overrides(assigned: tuple[int | str, ...],
                       known_keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Spec values that make the trainer use exactly its ``assigned`` GPUs.

    ``{}`` when no GPU was assigned (CPU trial: the template's values stay). Otherwise
    ``train.num_gpus = n`` and ``train.gpu_ids = [0..n-1]`` (renumbered: see the module doc).
    ``known_keys``: when given, only keys the skill knows are returned (a skill without
    ``train.gpu_ids`` must not get an unknown key, TAO rejects those).
    """
    if not assigned:
        return {}
    n = len(tuple(assigned))
    out: dict[str, Any] = {"train.num_gpus": n, "train.gpu_ids": list(range(n))}
    if known_keys is not None:
        known = set(known_keys)
        out = {k: v for k, v in out.items() if k in known}
    return out


def distributed_env(num_nodes: int, node_rank: int, master_addr: str, master_port: int,
                    gpus_per_node: int) -> dict[str, str]:
    """TAO's multi-node environment for one node of a ``num_nodes``-node trial.

    ``{}`` for a single-node trial (TAO treats any WORLD_SIZE as multi-node). Raises ValueError on
    inconsistent values (they would otherwise hang the rendezvous).
    """
    if num_nodes < 1:
        raise ValueError(f"num_nodes must be >= 1, got {num_nodes}")
    if num_nodes == 1:
        return {}
    if not 0 <= node_rank < num_nodes:
        raise ValueError(f"node_rank {node_rank} is outside 0..{num_nodes - 1}")
    if not master_addr:
        raise ValueError("master_addr is empty")
    if not 1 <= int(master_port) <= 65535:
        raise ValueError(f"master_port {master_port} is not a TCP port")
    if gpus_per_node < 1:
        raise ValueError(f"gpus_per_node must be >= 1, got {gpus_per_node}")
    return {
        "WORLD_SIZE": str(num_nodes),
        "NODE_RANK": str(node_rank),
        "MASTER_ADDR": str(master_addr),
        "MASTER_PORT": str(int(master_port)),
        "NUM_GPU_PER_NODE": str(gpus_per_node),
    }


def free_port(host: str = "") -> int:
    """A TCP port free right now on this node (for MASTER_PORT on the rank-0 node)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
