"""Checkpoint retention on a real experiment's trial folders (fake trainer, 3 epochs each)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from automl.tao.checkpoints import list_checkpoints
from automl.errors import UserError
from automl.results.records import read_history
from automl.results.best import read_best_rec, write_best_rec
from automl.results.retention import checkpoint_files, finalize_retention, format_bytes, prune
from tests.helpers.experiments import finished_random_search


@pytest.fixture(scope="module")
def experiment(ray_session, tmp_path_factory):
    base = tmp_path_factory.mktemp("retention")
    return finished_random_search(base, 5, 3, "--keep-checkpoints", "all")


@pytest.fixture
def ws(experiment, tmp_path) -> Path:
    """A private copy; trials also get a ``*_model_latest.pth`` as TAO writes one."""
    copy = Path(shutil.copytree(experiment, tmp_path / "copy"))
    for train_dir in copy.glob("trials/*/results/train"):
        (train_dir / "fake_model_latest.pth").write_text("x" * 100)
    return copy


def _best(ws: Path) -> tuple[str, Path]:
    best = read_best_rec(ws / "best_rec.json")["best"]
    # best_rec.json names the original workspace's file: the copy's own is the same name.
    return best["rec_id"], ws / "trials" / best["rec_id"] / "results" / "train" / Path(best["checkpoint_uri"]).name


def _all_checkpoints(ws: Path) -> set[Path]:
    return {p for folder in (ws / "trials").iterdir() for p in checkpoint_files(folder)}


def _other_files(ws: Path) -> set[Path]:
    return {p for p in ws.rglob("*") if p.is_file()} - _all_checkpoints(ws)


def test_finalize_best_keeps_exactly_the_best_checkpoint(ws):
    rec_id, chosen = _best(ws)
    before = _all_checkpoints(ws)
    others = _other_files(ws)
    assert chosen in before and len(before) == 4 * 4  # 3 epochs + latest, 4 trials
    expected = sum(p.stat().st_size for p in before if p != chosen)

    reclaimed = finalize_retention(ws, "best")

    assert reclaimed == expected > 0
    assert _all_checkpoints(ws) == {chosen}
    assert _other_files(ws) == others  # status.json, specs, logs, outcome.json untouched
    assert finalize_retention(ws, "best") == 0  # idempotent


def test_finalize_all_deletes_nothing(ws):
    before = _all_checkpoints(ws)
    assert finalize_retention(ws, "all") == 0
    assert _all_checkpoints(ws) == before


def test_finalize_without_an_answer_deletes_nothing(ws):
    before = _all_checkpoints(ws)
    doc = read_best_rec(ws / "best_rec.json")
    write_best_rec(ws / "best_rec.json", {**doc, "best": None})
    assert finalize_retention(ws, "best") == 0
    (ws / "best_rec.json").unlink()
    assert finalize_retention(ws, "best") == 0
    assert _all_checkpoints(ws) == before


def test_finalize_bad_mode(ws):
    with pytest.raises(UserError, match="--keep-checkpoints 'some'"):
        finalize_retention(ws, "some")


def test_prune_respects_best_keep_and_needed(ws):
    _, records = read_history(ws / "history.json")
    # The copy's records must point at the copy's folders.
    for record in records:
        record.folder = str(ws / "trials" / record.rec_id)
    best_id, chosen = _best(ws)
    others = sorted(r.rec_id for r in records if r.rec_id != best_id)
    kept, parent, running = others
    running_record = next(r for r in records if r.rec_id == running)
    running_record.status = "running"
    needed = ws / "trials" / parent / "results" / "train"
    needed = list_checkpoints(needed)[0].path  # a PBT child will start from the parent's epoch 1
    before = _all_checkpoints(ws)
    sizes = {p: p.stat().st_size for p in before}
    by_trial = {r.rec_id: set(checkpoint_files(Path(r.folder))) for r in records}

    reclaimed = prune(ws, records, best_id, keep_rec_ids={kept}, needed_paths={needed})

    after = _all_checkpoints(ws)
    assert set(checkpoint_files(Path(ws / "trials" / best_id))) == {chosen}
    assert set(checkpoint_files(ws / "trials" / kept)) == by_trial[kept]  # may still be promoted
    assert set(checkpoint_files(ws / "trials" / running)) == by_trial[running]  # still running
    assert set(checkpoint_files(ws / "trials" / parent)) == {needed}
    deleted = before - after
    assert deleted == (by_trial[best_id] - {chosen}) | (by_trial[parent] - {needed})
    assert reclaimed == sum(sizes[p] for p in deleted) > 0


def test_prune_reports_bytes(ws):
    _, records = read_history(ws / "history.json")
    for record in records:
        record.folder = str(ws / "trials" / record.rec_id)
    best_id, chosen = _best(ws)
    sizes = {p: p.stat().st_size for p in _all_checkpoints(ws)}
    reclaimed = prune(ws, records, best_id, keep_rec_ids=set(), needed_paths=set())
    assert reclaimed == sum(size for p, size in sizes.items() if p != chosen)
    assert _all_checkpoints(ws) == {chosen}


def test_prune_never_leaves_the_workspace(ws, tmp_path):
    _, records = read_history(ws / "history.json")
    outside = tmp_path / "elsewhere"
    (outside / "results" / "train").mkdir(parents=True)
    stray = outside / "results" / "train" / "model_epoch_001_step_00010.pth"
    stray.write_text("keep me")
    records[0].folder = str(outside)
    prune(ws, records[:1], None, keep_rec_ids=set(), needed_paths=set())
    assert stray.exists()


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 1024**3) == "3.0 GiB"
