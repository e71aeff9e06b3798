"""``automl serve``: the store, one Ray instance, the queue and the API, for the server's life.

Ray is started (or joined, with ``--address``) once, here; every experiment's run connects to it,
so a submission does not pay Ray's start-up. With ``--max-experiments 0`` nothing runs and Ray is
not started: the queue only fills (for tests of the API, and to drain a server for maintenance).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

from automl.errors import UserError
from automl.service.door import Limits
from automl.service.server import add_store_flags, build, open_store, openapi_document


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="run the HPO service: REST API, queue, auth, store")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000,
                   help="port to bind (default 8000; 0 picks a free one and prints it)")
    add_store_flags(p)
    p.add_argument("--address", help="an existing Ray cluster (HOST:PORT); default: a local one")
    p.add_argument("--max-experiments", type=int, default=2, help="experiments running at once "
                   "(default 2; 0 queues only)")
    p.add_argument("--skill-dir", dest="skill_dirs", action="append", type=Path, default=[],
                   help="a TAO skill folder users may name (repeatable; the bundled one is always there)")
    p.add_argument("--allow-root", dest="allow_roots", action="append", type=Path, default=[],
                   help="a folder whose paths (datasets, skills) requests may name (repeatable)")
    p.add_argument("--mlflow-ui", default="http://127.0.0.1:5000", metavar="URL",
                   help="where users' browsers reach the MLflow UI of a workspace (`automl ui "
                        "WORKSPACE`); the web page's MLflow link starts with it (default "
                        "http://127.0.0.1:5000, automl ui's own default on the same machine)")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    limits = Limits()
    for name, default, what in (
            ("body-bytes", limits.body_bytes, "bytes of one request body"),
            ("recommendations", limits.recommendations, "max_recommendations (and population_size) of an experiment"),
            ("epochs", limits.epochs, "max_epochs of an experiment (after TAO's epoch_multiplier)"),
            ("concurrent", limits.concurrent, "max_concurrent trials of an experiment"),
            ("retries", limits.retries, "max_retries of an experiment's trials")):
        p.add_argument(f"--limit-{name}", type=int, default=default, metavar="N",
                       help=f"the most {what} a user may ask for (default {default})")
    p.add_argument("--allow-image", dest="allow_images", action="append", default=[],
                   metavar="PATTERN", help="a container image users may run with launcher docker "
                   "(fnmatch pattern, e.g. 'nvcr.io/nvidia/tao/*'; repeatable; default: none, "
                   "so no containers)")
    p.add_argument("--allow-host-network", action="store_true",
                   help="let users' containers use docker_network host (default: refused)")
    p.add_argument("--openapi", action="store_true", help="print the OpenAPI document and exit")
    p.set_defaults(func=main_serve)


def _start_ray(args: argparse.Namespace) -> str:
    import ray

    from automl.run.engine import init_ray

    init_ray(args.address, num_cpus=args.num_cpus or os.cpu_count() or 1)
    return ray.get_runtime_context().gcs_address


def main_serve(args: argparse.Namespace) -> int:
    if args.openapi:
        print(json.dumps(openapi_document(), indent=1, sort_keys=True))
        return 0
    if args.max_experiments < 0:
        raise UserError(f"--max-experiments {args.max_experiments}: must be 0 or more")
    if not 0 <= args.port < 65536:
        raise UserError(f"--port {args.port}: must be 0-65535 (0 picks a free one)")
    if not args.mlflow_ui.startswith(("http://", "https://")):
        raise UserError(f"--mlflow-ui {args.mlflow_ui}: expected an http:// or https:// URL "
                        f"(where browsers reach `automl ui`)")
    import uvicorn

    from automl import listen
    from automl.service.auth import ensure_admin
    from automl.service.runner import Runner

    sock = listen.bind(args.host, args.port)  # first: a taken port creates nothing (listen.py)
    if args.max_experiments > 0 and args.address:
        from automl.run.ray.ray_address import check_reachable

        check_reachable(args.address)  # before the store and the admin token, as the port
    store = open_store(args)
    runner = Runner(store, args.root.resolve(), args.max_experiments, None)
    cluster: dict[str, float] = {}
    app = build(args, store, runner, cluster)
    token = ensure_admin(store)
    if token:
        print(f"admin token (shown once; create others with `automl token create`): {token}",
              flush=True)
    if args.max_experiments > 0:
        runner.ray_address = _start_ray(args)
        runner.ray_local = not args.address
        import ray

        totals = ray.cluster_resources()
        cluster.update({k: float(totals.get(k, 0)) for k in ("CPU", "GPU")})
    runner.start()
    print(f"serving on {listen.url(args.host, sock.getsockname()[1])}  (web page /, API /api/v1, docs /docs) | "
          f"store: {store.url.render_as_string(hide_password=True)} | "
          f"max experiments: {args.max_experiments}", flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop_serving)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    except SystemExit:
        pass  # the signal, raised again by uvicorn once it stopped serving (_stop_serving)
    finally:
        runner.stop()
    return 0


def _stop_serving(signum: int, frame: object) -> None:
    """SIGINT or SIGTERM: the clean end of the server, exit code 0.

    uvicorn stops serving on the signal and then raises it again for the handler it found; that
    was Ray's driver handler, ``sys.exit(15)``, which ended the server with an error code (and a
    Ctrl-C a traceback). This handler ends ``Server.run`` alone; the runs are then stopped as
    Ctrl-C stops them (``Runner.stop``), so that the next start resumes them.
    """
    raise SystemExit(0)
