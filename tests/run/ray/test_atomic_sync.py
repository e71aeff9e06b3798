"""Tune's state files reach the workspace all from one save or all from the previous one
(automl.run.ray.atomic_sync): a failure while copying leaves the previous files whole, and a kill
between two renames is finished by ``automl resume`` (the upload's intent file)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow.fs
import pytest

from automl.run.ray import atomic_sync


def _stage(folder: Path, version: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("experiment_state-x.json", "search_gen_state-x.json", "searcher-state-x.pkl"):
        (folder / name).write_text(f"{name} {version}")


def _upload(staging: Path, target: Path) -> None:
    atomic_sync.atomic_upload(str(staging), pyarrow.fs.LocalFileSystem(), str(target))


def _second_save_staged(tmp_path: Path) -> tuple[Path, Path]:
    """Save 1 uploaded to the workspace, save 2 staged: (staging, target)."""
    staging, target = tmp_path / "staging", tmp_path / "ws" / "tune"
    _stage(staging, "1")
    _upload(staging, target)
    _stage(staging, "2")
    return staging, target


def _contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def test_every_file_is_replaced_and_the_trial_list_last(tmp_path, monkeypatch):
    staging, target = _second_save_staged(tmp_path)
    moved = []
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (moved.append(Path(b).name), replace(a, b)))
    _upload(staging, target)
    assert set(_contents(target).values()) == {f"{n} 2" for n in _contents(target)}
    moved = [name for name in moved if name != atomic_sync.INTENT]
    assert moved[-1] == "experiment_state-x.json" and len(moved) == 3


def test_a_failed_copy_leaves_the_previous_save_whole(tmp_path, monkeypatch):
    staging, target = _second_save_staged(tmp_path)
    before = _contents(target)
    copies = []
    copy = shutil.copyfileobj

    def failing(src, dst, *args):  # the last file's copy fails (a kill would stop here too)
        copies.append(src)
        if len(copies) == 3:
            raise OSError("disk full")
        return copy(src, dst, *args)

    monkeypatch.setattr(shutil, "copyfileobj", failing)
    with pytest.raises(OSError):
        _upload(staging, target)
    assert _contents(target) == before  # nothing of save 2 was moved in, no temporary left


def test_a_kill_between_two_renames_is_finished_on_resume(tmp_path, monkeypatch):
    staging, target = _second_save_staged(tmp_path)
    replace = os.replace
    moved = []

    def killed_after_one(a, b):  # the controller dies after the first state file moved in
        if Path(b).name != atomic_sync.INTENT:
            if moved:
                raise KeyboardInterrupt  # nothing in the upload handles it: like a SIGKILL here
            moved.append(Path(b).name)
        replace(a, b)

    monkeypatch.setattr(os, "replace", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        _upload(staging, target)
    monkeypatch.setattr(os, "replace", replace)
    mixed = {n: v for n, v in _contents(target).items() if not n.startswith(".")}
    assert {v[-1] for v in mixed.values()} == {"1", "2"}  # two saves mixed: what the kill left
    assert atomic_sync.finish_interrupted(target) == 2
    assert _contents(target) == {n: f"{n} 2" for n in mixed}  # whole save 2, nothing else


def test_copies_a_kill_left_uncommitted_are_removed_on_resume(tmp_path, monkeypatch):
    staging, target = _second_save_staged(tmp_path)
    before = _contents(target)
    monkeypatch.setattr(atomic_sync, "_write_atomically",  # killed before it committed
                        lambda path, data: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        _upload(staging, target)
    assert atomic_sync.finish_interrupted(target) == 0
    assert _contents(target) == before
