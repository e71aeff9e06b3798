"""The MLflow store of a workspace: where it is, and how a new one is created fast.

Creating a new sqlite store runs MLflow's ~50 schema migrations (7-8 s of CPU). With
``template_dir`` (the CLI passes ``<workspace root>/_cache``, beside the workspaces like the
bundled dataset's ``_data``), the first store MLflow creates there is also kept, empty, as
``mlflow-<version>-empty.db``, and later workspaces start from a copy of it (0.1 s). The copy
is what MLflow itself created, minus its Default experiment, which each store re-creates on
opening (its artifact location depends on the opener). Only the workspace's own default store
(``<workspace>/mlflow.db``) is ever created this way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def workspace_tracking_uri(workspace: Path) -> str:
    """The default store: ``sqlite:///<workspace>/mlflow.db`` (absolute path)."""
    return f"sqlite:///{(Path(workspace) / 'mlflow.db').resolve()}"


def resolve_tracking_uri(workspace: Path, flag: str | None = None) -> str:
    """``--tracking-uri`` if given, else ``MLFLOW_TRACKING_URI``, else the workspace's sqlite."""
    for candidate in (flag, os.environ.get("MLFLOW_TRACKING_URI")):
        if candidate and candidate.strip():
            return candidate.strip()
    return workspace_tracking_uri(workspace)


def artifact_location(tracking_uri: str) -> str | None:
    """Artifacts beside a sqlite store (``<db folder>/mlartifacts``); None: the store decides."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = tracking_uri[len("sqlite:///"):].split("?", 1)[0]
    if not db or db == ":memory:":
        return None
    return (Path(db).resolve().parent / "mlartifacts").as_uri()


def store_template(template_dir: Path) -> Path:
    """The empty, migrated store kept for this MLflow version in ``template_dir``."""
    from importlib.metadata import version

    return Path(template_dir) / f"mlflow-{version('mlflow')}-empty.db"


def copy_store_template(db: Path, template: Path) -> bool:
    """Create the store ``db`` as a copy of ``template``; False if there is none or ``db`` exists."""
    if db.exists() or not template.is_file():
        return False
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(template, tmp)
        try:
            os.link(tmp, db)  # never replaces a store that appeared in the meantime
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system
            if db.exists():
                return False
            os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def keep_default_inside(db: Path) -> None:
    """Point the store's Default experiment (id 0) at ``<workspace>/mlartifacts/0``.

    MLflow creates it whenever it opens a store without one, with its artifacts at the opening
    process's ``./mlruns/0``: outside the workspace. MLflow has no call to change an
    experiment's artifact location, so the row is updated here (sqlite; one statement).
    """
    target = (Path(db).resolve().parent / "mlartifacts" / "0").as_uri()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0 "
                     "AND artifact_location != ?", (target, target))
        conn.commit()


def save_store_template(db: Path, template: Path) -> None:
    """Keep an empty copy of the store ``db`` that MLflow has just created (nothing logged yet).

    The Default experiment (id 0) is left out: its artifact location is the creating process's
    ``./mlruns``, so every copy re-creates its own when MLflow opens it.
    """
    template.parent.mkdir(parents=True, exist_ok=True)
    tmp = template.with_name(f".{template.name}.{os.getpid()}.tmp")
    try:
        with contextlib.closing(sqlite3.connect(db)) as source, \
                contextlib.closing(sqlite3.connect(tmp)) as copy:
            source.backup(copy)  # a consistent copy while MLflow holds the store open
            copy.execute("DELETE FROM experiments WHERE experiment_id = 0")
            copy.commit()
            leftovers = copy.execute("SELECT (SELECT COUNT(*) FROM experiments) + "
                                     "(SELECT COUNT(*) FROM runs)").fetchone()[0]
        if leftovers:
            return  # not an empty store: not a template
        os.replace(tmp, template)
    finally:
        tmp.unlink(missing_ok=True)


def open_store(client_class: Any, tracking_uri: str, experiment_name: str, workspace: Path,
               template_dir: Path | None) -> tuple[Any, Any]:
    """The client and our MLflow experiment (None if new); a new workspace store starts from
    the template when there is one, and becomes the template when there is none."""
    db = workspace / "mlflow.db"
    template = None
    own_store = tracking_uri == workspace_tracking_uri(workspace)
    if template_dir is not None and own_store and not db.exists():
        template = store_template(template_dir)
    copied = False
    if template is not None:
        try:
            copied = copy_store_template(db, template)
        except OSError as exc:
            log.debug("MLflow store template %s not used: %s", template, exc)
    try:
        client = client_class(tracking_uri)
        experiment = client.get_experiment_by_name(experiment_name)
    except Exception:
        if copied:  # a template MLflow does not accept (edited by hand?): the next store
            template.unlink(missing_ok=True)  # is created by MLflow again
        raise
    if own_store:
        try:
            keep_default_inside(db)
        except sqlite3.Error as exc:
            log.debug("MLflow store %s: Default experiment not moved: %s", db, exc)
    if template is not None and not copied and experiment is None:
        try:
            save_store_template(db, template)
        except (OSError, sqlite3.Error) as exc:
            log.debug("MLflow store template %s not saved: %s", template, exc)
    return client, experiment
