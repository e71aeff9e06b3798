"""Refuse a Ray address no cluster answers at, in one line, before anything is created.

``ray.init(address=HOST:PORT)`` with nothing listening there does not fail: Ray retries the
cluster's GCS for minutes and prints a warning every few seconds (measured: still retrying after
200 s). ``address="auto"`` with no cluster on this machine raises ConnectionError with a
traceback. Both are user mistakes (a wrong ``--address``, a cluster not started), so they get
the one-line error and exit code 2 every mistake gets. Ray has no public "is a cluster there"
call short of ``ray.init``, so a HOST:PORT is probed with a TCP connect to the GCS port.
"""

from __future__ import annotations

import socket

from automl.errors import UserError

PROBE_TIMEOUT_S = 3.0  # a reachable GCS accepts within milliseconds; a dropped SYN waits this long
_RAY_CHOOSES = ("auto", "local")  # ray.init looks these up itself (see ray_init_error)


def check_reachable(address: str) -> None:
    """Raise UserError unless something accepts connections at ``address`` (HOST:PORT or
    ray://HOST:PORT); ``auto`` and ``local`` are left to Ray."""
    if address in _RAY_CHOOSES:
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UserError(f"--address {address}: expected HOST:PORT of a Ray cluster node "
                        f"(or ray://HOST:PORT, or auto)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise UserError(f"--address {address}: no Ray cluster answers there "
                        f"({exc.strerror or exc}); start one with `ray start --head` on that "
                        f"node, or fix the address") from None


def ray_init_error(address: str, exc: ConnectionError) -> UserError:
    """Ray's own refusal (``auto`` with no cluster, a cluster that went away) as one line."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UserError(f"--address {address}: {reason} (start a cluster with `ray start --head`, "
                     f"or pass HOST:PORT of a node)")
