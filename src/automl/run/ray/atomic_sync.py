"""Tune's experiment state reaches the workspace atomically (old or new file, never a torn one).

Ray Tune (pinned version, see pyproject) writes its experiment state (``experiment_state-*.json``,
the searcher's ``searcher-state-*.pkl``, ``search_gen_state-*.json``) into a staging folder and
then copies the folder into ``<workspace>/ray/tune`` with pyarrow, in a background thread, after
every save. pyarrow truncates each destination file and then fills it: a controller
killed during that copy leaves empty or torn files, and ``Tuner.restore`` then starts the
experiment over (seen: 0-byte files after a SIGKILL; the resumed run re-proposed the first
configurations). :func:`install` makes the copy to a local destination synchronous, and writes
each file under a temporary name in the same folder that ``os.replace`` then moves over the
target, so the workspace always holds the complete, latest saved state. Other destinations
(cloud storage) keep Ray's copy.

Several files cannot be renamed at once, and a kill between two renames leaves files of two
saves (seen in the resume matrix under load: the searcher's pickle of the save that added the last
trial, Tune's trial list of the one before, so the resumed search made one recommendation too
few). So the renames are a small write-ahead step: once every file is copied, an intent file
(:data:`INTENT`, itself written atomically) lists the renames, they are done, and the intent is
removed. :func:`finish_interrupted` - called by ``automl resume`` before it reads Tune's state,
and by the next upload - redoes the renames an intent lists whose temporary files are still
there (they were complete before the intent was written), so the folder always ends up with
one whole save.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import tempfile
from pathlib import Path

_installed = False
INTENT = ".automl-renames.json"  # the renames an upload committed to (module docstring)
_TMP = ".automl-tmp."  # prefix of the temporary files: copies not yet moved into place


def atomic_upload(local_path: str, fs, fs_path: str, exclude: list[str] | None = None) -> None:
    """Ray's ``_upload_to_fs_path`` for a local filesystem: every file replaced atomically."""
    source = Path(local_path)
    target = Path(fs_path)
    files = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
    # Tune's trial list last: were the intent file lost (a tool removing dot-files), a kill
    # between two renames would still leave the searcher knowing a trial that Tune's restored
    # state does not (resume sets that trial aside, see automl.resume.reconcile), never the
    # reverse, a restored trial whose result the searcher cannot place (KeyError in
    # OptunaSearch.on_trial_result, seen once under load).
    files.sort(key=lambda p: p.name.startswith("experiment_state"))
    for folder in [] if source.is_file() else [p for p in source.rglob("*") if p.is_dir()]:
        rel = folder.relative_to(source).as_posix()
        if not (exclude and any(fnmatch.fnmatch(rel, pattern) for pattern in exclude)):
            (target / rel).mkdir(parents=True, exist_ok=True)
    # Two phases: copy every file under a temporary name (the slow part), then move them all
    # into place. A kill during the copies leaves the previous state whole; a kill during the
    # renames is finished by the intent (see the module docstring).
    root = target if not source.is_file() else target.parent
    _redo_renames(root)
    staged: list[tuple[Path, Path]] = []
    try:
        for path in files:
            rel = path.name if source.is_file() else path.relative_to(source).as_posix()
            if exclude and any(fnmatch.fnmatch(rel, pattern) for pattern in exclude):
                continue
            dest = target if source.is_file() else target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f"{_TMP}{dest.name}.", dir=dest.parent)
            staged.append((Path(tmp), dest))
            with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                shutil.copyfileobj(src, out)
            shutil.copymode(path, tmp)  # mkstemp makes it private
    except BaseException:
        for tmp, _dest in staged:
            tmp.unlink(missing_ok=True)
        raise
    if staged:
        _write_atomically(root / INTENT, json.dumps(
            [[tmp.relative_to(root).as_posix(), dest.relative_to(root).as_posix()]
             for tmp, dest in staged]).encode())
        _redo_renames(root)  # the recovery's own code: every save exercises it
    if not files and not source.is_file():
        target.mkdir(parents=True, exist_ok=True)


def finish_interrupted(root: Path) -> int:
    """Do the renames an interrupted upload into ``root`` had committed to (its intent file) and
    remove the temporary files it copied before committing; returns how many files it moved in.
    For ``automl resume``, which holds the workspace lock, before anything reads Tune's state."""
    moved = _redo_renames(root)
    for stray in root.glob(f"{_TMP}*") if root.is_dir() else ():
        stray.unlink(missing_ok=True)  # copied before a kill, never committed
    return moved


def _redo_renames(root: Path) -> int:
    intent = root / INTENT
    if not intent.is_file():
        return 0
    moved = 0
    for tmp, dest in json.loads(intent.read_text(encoding="utf-8")):
        if (root / tmp).is_file():  # else it was moved in before the interruption
            os.replace(root / tmp, root / dest)
            moved += 1
    intent.unlink()
    return moved


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP}{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def install() -> None:
    """Make Tune's driver-side sync to a local folder :func:`atomic_upload`, done at once in the
    controller's thread (idempotent; private API of the pinned Ray version).

    At once, not in Ray's background thread: Ray skips a sync while the previous one still
    runs, so under load the workspace lagged behind the state Tune had saved (seen: a trial
    that had started and finished was missing from the restored state, and resume created
    another configuration in its place). Copying these few small files costs milliseconds.
    """
    global _installed
    if _installed:
        return
    import pyarrow.fs

    from automl.run.ray.ray_private import train_storage

    storage = train_storage()  # private: see automl.run.ray.ray_private

    original = storage._FilesystemSyncer.sync_up

    def sync_up(self, local_dir, remote_dir, exclude=None) -> bool:
        if isinstance(self.storage_filesystem, pyarrow.fs.LocalFileSystem):
            atomic_upload(local_dir, self.storage_filesystem, remote_dir, exclude)
            return True
        return original(self, local_dir, remote_dir, exclude)

    storage._FilesystemSyncer.sync_up = sync_up
    _installed = True
