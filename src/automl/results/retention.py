"""Checkpoint retention (``--keep-checkpoints best|all``, default ``best``).

A SegFormer checkpoint is tens to hundreds of MB and a trial writes one per checkpoint interval,
so an experiment of 20 trials × 27 epochs would keep hundreds of files nobody will load. What
must survive:

* the best trial's **chosen** checkpoint (the epoch that was scored: ``best_rec.json``'s
  ``checkpoint_uri``), which the hand-off loads, and with several objectives the scored
  checkpoint of every Pareto-front member (``pareto_front``: each can be handed off);
* while the experiment runs: every checkpoint a trial may still resume from (paused trials,
  promotion candidates - ``keep_rec_ids``) and any file another trial still needs (a PBT child
  starting from its parent's checkpoint - ``needed_paths``).

Only contract-named files are ever deleted - ``model_epoch_EEE_step_SSSSS.pth`` and
``*_model_latest.pth`` (a file, or TAO's symlink once its target is gone) in a trial's
``results/train/`` (or ``results/``) - and only inside the
workspace's ``trials/`` folder; logs, status files, specs and hand-off outputs are never touched.

:func:`prune` runs during an experiment (the engine decides what is still needed);
:func:`finalize_retention` runs once at its end, when nothing is paused anymore.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from pathlib import Path

from automl.tao.checkpoints import CheckpointFile, checkpoint_after
from automl.errors import UserError
from automl.contract import UNFINISHED, results_dir, train_dir
from automl.results.records import TrialRecord

MODES = ("best", "all")


def checkpoint_files(trial_folder: Path) -> list[Path]:
    """Every deletable checkpoint file of one trial (contract names only)."""
    out: list[Path] = []
    results = results_dir(trial_folder)
    for folder in (train_dir(trial_folder), results):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if not path.is_file() or path.is_symlink():
                continue
            if CheckpointFile.parse(path) is not None or path.name.endswith("model_latest.pth"):
                out.append(path)
    return sorted(out)


def _drop_dangling_latest(trial_folder: Path) -> None:
    """Remove ``*_model_latest.pth`` symlinks whose target was deleted.

    TAO's ModelCheckpoint (``save_last='link'``) makes "latest" a symlink to the last epoch file;
    once retention deleted that file the link points nowhere: it can serve neither a resume nor
    a hand-off, and it breaks copies of the workspace.
    """
    results = results_dir(trial_folder)
    for folder in (train_dir(trial_folder), results):
        if folder.is_dir():
            for path in folder.glob("*model_latest.pth"):
                if path.is_symlink() and not path.exists():
                    path.unlink(missing_ok=True)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _delete(paths: Iterable[Path], protected: set[Path], trials_root: Path) -> int:
    reclaimed = 0
    for path in paths:
        resolved = path.resolve()
        if resolved in protected or not _inside(resolved, trials_root):
            continue
        try:
            size = resolved.stat().st_size
            resolved.unlink()
        except FileNotFoundError:
            continue
        reclaimed += size
    return reclaimed


def prune(workspace: Path, records: Iterable[TrialRecord], best_rec_id: str | None,
          keep_rec_ids: set[str], needed_paths: set[Path],
          front: Collection[str] = ()) -> int:
    """Delete the checkpoints of trials that can no longer be promoted or chosen; bytes reclaimed.

    * trials in ``keep_rec_ids`` (may still be promoted/resumed) and trials still pending,
      running or paused: untouched;
    * the best trial (``best_rec_id``) and the Pareto front's trials (``front``): everything
      but the checkpoint of its scored epoch (its largest observed epoch) - that file is never
      deleted;
    * every other finished trial: all its checkpoint files;
    * a path in ``needed_paths`` (e.g. a PBT parent's checkpoint a child will start from) is
      never deleted, whichever trial it belongs to.
    """
    workspace = Path(workspace)
    trials_root = workspace / "trials"
    protected = {Path(p).resolve() for p in needed_paths}
    reclaimed = 0
    for record in records:
        if record.rec_id in keep_rec_ids or record.status in UNFINISHED:
            continue
        folder = Path(record.folder) if record.folder else trials_root / record.rec_id
        if not _inside(folder, trials_root):
            continue
        keep = set(protected)
        if record.rec_id == best_rec_id or record.rec_id in front:
            chosen = checkpoint_after(train_dir(folder), record.observed_budget)
            if chosen is None:
                continue  # cannot tell which file was scored: keep them all
            keep.add(chosen.path.resolve())
        reclaimed += _delete(checkpoint_files(folder), keep, trials_root)
        _drop_dangling_latest(folder)
    return reclaimed


def finalize_retention(workspace: Path, mode: str) -> int:
    """At the end of an experiment: keep only the best trial's exact checkpoint and those of the
    Pareto front's members (``mode="best"``).

    Deletes every other checkpoint file of every trial and returns the bytes reclaimed;
    ``mode="all"`` deletes nothing. Nothing is deleted either when ``best_rec.json`` is missing or
    unreadable, or names no best trial (a failed experiment): without an answer there is no way to
    tell what is worth keeping, and the files may still serve a resume or a post-mortem.
    Call it only when the experiment is over (completed or failed), not after a cancel that the
    user may resume.
    """
    if mode not in MODES:
        raise UserError(f"--keep-checkpoints {mode!r}: expected one of {', '.join(MODES)}")
    if mode == "all":
        return 0
    workspace = Path(workspace)
    try:
        doc = json.loads((workspace / "best_rec.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    best = doc.get("best") if isinstance(doc, dict) else None
    if not isinstance(best, dict):
        return 0
    keep: set[Path] = set()
    trials_root = workspace / "trials"
    front = doc.get("pareto_front") if isinstance(doc.get("pareto_front"), list) else []
    for member in [best, *(m for m in front if isinstance(m, dict))]:
        uri = member.get("checkpoint_uri")
        if uri:
            keep.add(Path(str(uri)).resolve())
            # The same file when the workspace was moved since best_rec.json was written.
            keep.add((train_dir(trials_root / str(member.get("rec_id")))
                      / Path(str(uri)).name).resolve())
    if not trials_root.is_dir():
        return 0
    reclaimed = 0
    for folder in sorted(p for p in trials_root.iterdir() if p.is_dir()):
        reclaimed += _delete(checkpoint_files(folder), keep, trials_root)
        _drop_dangling_latest(folder)
    return reclaimed


def format_bytes(size: int) -> str:
    """``1536`` -> ``1.5 KiB`` (for the CLI's one-line report)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
