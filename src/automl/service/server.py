"""The server's parts as ``automl serve`` (:mod:`automl.commands.serve`) and ``automl token``
assemble them: the store named by ``--root``/``--db``, the served skills, the app with its
configuration, and the OpenAPI document."""

from __future__ import annotations

import argparse
from pathlib import Path

from automl.errors import UserError
from automl.service.door import Limits

DEFAULT_ROOT = Path("automl-server")


def add_store_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                   help=f"server folder: workspaces, logs, the SQLite store (default ./{DEFAULT_ROOT})")
    p.add_argument("--db", help="database URL (default: sqlite under --root; or postgresql://…)")


def open_store(args: argparse.Namespace, create: bool = True):
    """The server's store, migrated; ``create=False``: refuse a root (or --db) that holds no
    server store yet, so that a mistyped --root is an error rather than a new, unused store."""
    from sqlalchemy import inspect

    from automl.service.store import Store, default_url

    root = args.root.resolve()
    if not create:
        missing = (not (root / "automl.db").is_file()) if args.db is None else \
            not inspect(Store(args.db).engine).has_table("users")
        if missing:
            where = f"--db {args.db}" if args.db else f"--root {root}"
            raise UserError(f"{where}: no automl serve store there (a typo?); pass the server's "
                            f"--root/--db, or --init to create a new store")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--root {root}: cannot create it ({exc.strerror})") from None
    store = Store(args.db or default_url(root))
    store.migrate()
    return store


def _skills(dirs: list[Path]) -> dict[str, Path]:
    from automl.skill.folder import SkillDir, bundled_skill_dir

    found: dict[str, Path] = {}
    try:
        dirs = [bundled_skill_dir(), *dirs]
    except UserError:
        pass  # the bundled trainer is not installed: only the configured skills
    for folder in dirs:
        skill = SkillDir.load(folder)
        if skill.name in found and found[skill.name] != skill.path.resolve():
            raise UserError(f"--skill-dir {folder}: a skill named {skill.name!r} is already "
                            f"served from {found[skill.name]}")
        found[skill.name] = skill.path.resolve()
    return found


def build(args: argparse.Namespace, store, runner, cluster: dict[str, float] | None = None):
    """The app; ``cluster``: Ray's CPU/GPU totals, a dict filled once Ray is up (empty: unknown,
    nothing checked against it)."""
    from automl.study import EMBEDDED_DEFAULTS
    from automl.service.api import Config, create_app

    root = args.root.resolve()
    allowed = [root, *(p.resolve() for p in args.allow_roots)]
    for path in allowed:
        if not path.is_dir():
            raise UserError(f"--allow-root {path}: no such folder")
    for name in ("body_bytes", "recommendations", "epochs", "concurrent", "retries"):
        if getattr(args, f"limit_{name}") < 1:
            raise UserError(f"--limit-{name.replace('_', '-')} {getattr(args, f'limit_{name}')}: "
                            f"must be 1 or more")
    limits = Limits(body_bytes=args.limit_body_bytes, recommendations=args.limit_recommendations,
                    epochs=args.limit_epochs, concurrent=args.limit_concurrent,
                    retries=args.limit_retries)
    config = Config(root=root, allowed_roots=allowed, skills=_skills(args.skill_dirs),
                    defaults=EMBEDDED_DEFAULTS, mlflow_ui=args.mlflow_ui, limits=limits,
                    allow_images=tuple(args.allow_images),
                    allow_host_network=args.allow_host_network,
                    cluster=cluster if cluster is not None else {})
    return create_app(store, runner, config)


def openapi_document() -> dict:
    """The API's OpenAPI document (``schemas/openapi.json``), without a store or a server."""
    from automl.service.api import Config, create_app

    return create_app(None, None, Config(root=Path("."), allowed_roots=[])).openapi()  # type: ignore[arg-type]
