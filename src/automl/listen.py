"""A local server's port, bound before anything else starts (``automl serve``, ``automl ui``).

``uvicorn.run(host=, port=)`` binds only once the event loop runs, which is after the store is
created, the admin token printed and Ray started: a port already in use then ended the server
with uvicorn's log line and exit code 0 (found by CI, where a test's free port was taken in
between by another process). Binding first makes a taken port a user mistake like any other:
one line, exit code 2, nothing created. It also lets ``--port 0`` pick a free port and print
the one it got, which is what tests and scripts need to avoid racing for a port. ``automl ui``
checks its port the same way before starting MLflow's server (which binds it itself).
"""

from __future__ import annotations

import socket

from automl.errors import UserError


def bind(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) TCP socket on ``host:port``; uvicorn listens on it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise UserError(f"--host {host}: not an address this machine can bind ({exc.strerror}); "
                        f"use 127.0.0.1, 0.0.0.0 or one of this machine's addresses") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart at once
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UserError(f"--port {port} on {host}: cannot bind ({exc.strerror}); stop what holds "
                        f"it, or pass another --port (0 picks a free one)") from None
    return sock


def url(host: str, port: int) -> str:
    """The base URL a server on ``host:port`` answers at (an IPv6 address in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
