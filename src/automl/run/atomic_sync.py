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
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from pathlib import Path

_installed = False


def atomic_upload(local_path: str, fs, fs_path: str, exclude: list[str] | None = None) -> None:
    """Ray's ``_upload_to_fs_path`` for a local filesystem: every file replaced atomically."""
    source = Path(local_path)
    target = Path(fs_path)
    files = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
    # Tune's trial list last: a kill between two files then leaves the searcher knowing a trial
    # that Tune's restored state does not (resume sets that trial aside, see automl.resume.reconcile),
    # never the reverse, a restored trial whose result the searcher cannot place (KeyError in
    # OptunaSearch.on_trial_result, seen once under load).
    files.sort(key=lambda p: p.name.startswith("experiment_state"))
    for folder in [] if source.is_file() else [p for p in source.rglob("*") if p.is_dir()]:
        rel = folder.relative_to(source).as_posix()
        if not (exclude and any(fnmatch.fnmatch(rel, pattern) for pattern in exclude)):
            (target / rel).mkdir(parents=True, exist_ok=True)
    # Two phases: copy every file under a temporary name (the slow part), then move them all
    # into place. A kill during the copies leaves the previous state whole; only one landing
    # within the few microseconds of the renames can still mix two saves (seen before this:
    # a kill during the copies left the searcher's counter of one save with the trial list of
    # the previous one, and the resumed run made one recommendation too few).
    staged: list[tuple[str, Path]] = []
    try:
        for path in files:
            rel = path.name if source.is_file() else path.relative_to(source).as_posix()
            if exclude and any(fnmatch.fnmatch(rel, pattern) for pattern in exclude):
                continue
            dest = target if source.is_file() else target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
            staged.append((tmp, dest))
            with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                shutil.copyfileobj(src, out)
            shutil.copymode(path, tmp)  # mkstemp makes it private
        while staged:
            tmp, dest = staged[0]
            os.replace(tmp, dest)
            staged.pop(0)
    finally:
        for tmp, _dest in staged:
            Path(tmp).unlink(missing_ok=True)
    if not files and not source.is_file():
        target.mkdir(parents=True, exist_ok=True)


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

    from automl.run.ray_private import train_storage

    storage = train_storage()  # private: see automl.run.ray_private

    original = storage._FilesystemSyncer.sync_up

    def sync_up(self, local_dir, remote_dir, exclude=None) -> bool:
        if isinstance(self.storage_filesystem, pyarrow.fs.LocalFileSystem):
            atomic_upload(local_dir, self.storage_filesystem, remote_dir, exclude)
            return True
        return original(self, local_dir, remote_dir, exclude)

    storage._FilesystemSyncer.sync_up = sync_up
    _installed = True
