"""The engine's reading of TAO's dialect, on golden fixtures reproduced from TAO's own source.

``tests/fixtures/tao_golden/<case>/`` holds a status.json exactly as TAO's SegFormer container
writes it, the checkpoint names it leaves, and ``case.yaml`` with the expected interpretation;
the README names the TAO files each fact comes from. Every case goes through the same readers
the engine uses: the whole-file reader (recovery, ``automl recover``), the live tail fed in small
chunks (a trial watching its trainer), the outcome decision (recovery after the budget) and the
checkpoint resolver (best_rec.json, promotion, hand-off).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import yaml

from automl.results.failures import decide
from automl.tao.checkpoints import (
    CheckpointFile,
    checkpoint_after,
    finished_checkpoints,
    list_checkpoints,
    resume_candidates,
)
from automl.tao.lines import StatusTail, read_status, status_path
from automl.tao.progress import ResultReader, final_status, read_results, runs

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "tao_golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "case.yaml").exists())


def case(name: str) -> dict:
    return yaml.safe_load((GOLDEN / name / "case.yaml").read_text())


def results_dir(tmp_path: Path, name: str) -> Path:
    """The fixture laid out as TAO leaves results_dir: status.json and the checkpoint files."""
    spec = case(name)
    folder = tmp_path / "results"
    where = folder / "train" if spec["status_json_location"].endswith("train/status.json") else folder
    where.mkdir(parents=True)
    shutil.copyfile(GOLDEN / name / spec["status_json"], where / "status.json")
    for checkpoint in (GOLDEN / name / "checkpoints.txt").read_text().split():
        (where / checkpoint).write_bytes(b"weights")
    return folder


def validations(results, metric="val_miou"):
    return [(r.epochs, r.metric(metric)) for r in results if r.validation and r.metric(metric) is not None]


def expected(name: str):
    return [(e["epochs_completed"], pytest.approx(e["val_miou"])) for e in case(name)["expected"]["results"]]


def test_every_case_is_here():
    assert {"train_3_epochs", "resumed", "validation_interval_2", "checkpoint_interval_2",
            "fails_mid_epoch", "wrapper_failure_after_last_epoch", "json_array",
            "string_kpis", "top_level_status", "sigterm_between_epochs_7_3",
            "sigterm_mid_epoch_7_3", "auto_resume_from_latest_7_3"} <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_whole_file_results(tmp_path, name):
    lines = read_status(status_path(results_dir(tmp_path, name)))
    assert lines, "the status file must parse"
    assert validations(read_results(lines)) == expected(name)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_live_tail_in_chunks_gives_the_same_results(tmp_path, name, chunk):
    """Read while it is written: the file grows ``chunk`` bytes at a time (torn lines, and the
    JSON array's objects split over several reads)."""
    source = (GOLDEN / name / case(name)["status_json"]).read_bytes()
    path = tmp_path / "status.json"
    path.write_bytes(b"")
    tail, reader, got = StatusTail(path), ResultReader(), []
    for offset in range(0, len(source), chunk):
        with path.open("ab") as handle:
            handle.write(source[offset:offset + chunk])
        for line in tail.read_new():
            got += reader.feed(line)
    for line in tail.read_new(final=True):
        got += reader.feed(line)
    got += reader.finish()
    assert validations(got) == expected(name)


@pytest.mark.parametrize("name", CASES)
def test_outcome_and_recovery(tmp_path, name):
    """Exit code + lines -> completed / recovered / failed, with the budget in epochs completed."""
    spec = case(name)
    lines = read_status(status_path(results_dir(tmp_path, name)))
    results = read_results(lines)
    out = decide(spec["expected"]["exit_code"], lines, results, "", "val_miou",
                 spec["num_epochs"], stopped=False)
    done = spec["expected"]["epochs_completed"]
    if "outcome" in spec["expected"]:  # TAO 7.3.0: a SIGTERM exits 0 without a closing line
        assert out.status == spec["expected"]["outcome"]
    elif spec["expected"]["exit_code"] == 0:
        assert out.status == "completed"
    elif done >= spec["num_epochs"]:
        assert out.status == "recovered"  # the wrapper failed after the last epoch: it counts
    else:
        assert out.status == "failed"
    last = validations(results)[-1]
    assert last[0] == max(e for e, _ in expected(name))
    # What the lines alone say (post mortem): TAO 6.25 writes no FAILURE line for a RuntimeError
    # (fails_mid_epoch): only the exit code knows; success is "Train finished successfully.".
    said = final_status(runs(lines)[-1])
    assert said == spec["expected"]["final_status"] or (said is None and out.status == "failed")


@pytest.mark.parametrize("name", CASES)
def test_checkpoint_of_each_result(tmp_path, name):
    """The file of the epoch that was scored: 0-based in its name, never latest, never the
    exception checkpoint of an unfinished epoch."""
    spec = case(name)
    folder = results_dir(tmp_path, name)
    train_dir = status_path(folder).parent
    interval = spec["checkpoint_interval"]
    for epochs, _ in expected(name):
        found = checkpoint_after(train_dir, epochs)
        if epochs % interval:
            assert found is None or found.epochs == epochs
            continue
        assert found is not None and found.path.name.startswith(f"model_epoch_{epochs - 1:03d}_step_")
        assert found.step == epochs * spec["steps_per_epoch"]
        assert found.pointer("t1")["epoch"] == epochs  # the resume pointer speaks epochs completed
    incomplete = spec["expected"].get("incomplete_epoch_checkpoint")
    if incomplete:  # TAO's exception checkpoint of the epoch that never finished
        named = CheckpointFile.parse(Path(incomplete))
        assert named.epochs > spec["expected"]["epochs_completed"] or "auto_resumed_from" in \
            spec["expected"]
        assert incomplete not in {c.path.name for c in finished_checkpoints(train_dir)}
        found = checkpoint_after(train_dir, named.epochs)
        assert found is None or found.path.name != incomplete
    resume = spec["expected"].get("resume_from")
    if resume:  # where an interrupted trial continues: the newest complete epoch
        newest = max(resume_candidates(train_dir), key=lambda c: (c.epochs, not c.interrupted))
        assert (newest.path.name, newest.epochs) == (resume["file"], resume["epochs"])
    names = {c.path.name for c in list_checkpoints(train_dir)}
    assert "segformer_model_latest.pth" not in names


def test_resumed_run_continues_after_the_checkpoint_epoch(tmp_path):
    """The second process of ``resumed`` starts after model_epoch_000 (1 epoch completed): fed
    alone, with the engine's start, it yields epochs completed 2 only."""
    lines = read_status(status_path(results_dir(tmp_path, "resumed")))
    first, second = runs(lines)
    assert validations(read_results(second, start=1)) == [(2, pytest.approx(0.7038522958755493))]
    # Post mortem without the start: the "Resuming training from checkpoint" line places it.
    assert [r.epochs for r in read_results(second) if r.validation] == [2]
    assert final_status(first) == final_status(second) == "SUCCESS"


def test_repeated_kpis_are_not_new_results(tmp_path):
    """validation_interval 2: the epoch lines of non-validating epochs and the final lines
    repeat train_loss; only the two validations are results, at 2 and 4 epochs completed."""
    lines = read_status(status_path(results_dir(tmp_path, "validation_interval_2")))
    results = read_results(lines)
    assert [r.epochs for r in results if r.validation] == [2, 4]
    train = [(r.epochs, round(r.kpi["train_loss"], 4)) for r in results if not r.validation]
    assert [e for e, _ in train] == [1, 2, 3, 4]  # each epoch's own training loss, once


def test_string_kpis_parse_and_nan_stays_divergence():
    from automl.tao.lines import parse_text

    lines = parse_text('{"status": "RUNNING", "message": "Eval metrics generated.", '
                       '"kpi": {"val_miou": "0.5", "val_loss": "nan"}}\n'
                       '{"status": "RUNNING", "epoch": 0, "max_epoch": 1, "kpi": {"val_miou": "0.5"}}\n')
    (result,) = read_results(lines)
    assert result.epochs == 1 and result.metric("val_miou") == 0.5
    assert math.isnan(result.metric("val_loss"))


def test_kpis_of_a_process_that_died_after_validation_count_for_that_epoch():
    """Validation of epoch index 1 ran, then the process died before its epoch line."""
    from automl.tao.lines import parse_text

    lines = parse_text(
        '{"status": "STARTED", "message": "Starting SegFormer train."}\n'
        '{"status": "RUNNING", "message": "Eval metrics generated.", "kpi": {"val_miou": 0.1}}\n'
        '{"epoch": 0, "max_epoch": 2, "status": "RUNNING", "message": "Training loop in progress", "kpi": {"val_miou": 0.1}}\n'
        '{"status": "RUNNING", "message": "Train metrics generated.", "kpi": {"train_loss": 0.9}}\n'
        '{"status": "RUNNING", "message": "Eval metrics generated.", "kpi": {"val_miou": 0.2}}\n')
    assert validations(read_results(lines)) == [(1, 0.1), (2, 0.2)]


def test_exception_checkpoint_between_epochs_holds_the_finished_epochs(tmp_path):
    """TAO 7.3.0 SIGTERM between epochs: model_epoch_002_step_00020.pth holds 2 finished epochs
    (the step of epoch index 1's line), so it is offered to resume after 2 epochs - marked as
    TAO's exception checkpoint - and never as the checkpoint after 3."""
    train_dir = status_path(results_dir(tmp_path, "sigterm_between_epochs_7_3")).parent
    (train_dir / "model_epoch_001_step_00020.pth").unlink()  # checkpoint_interval 2, say
    (held,) = [c for c in resume_candidates(train_dir) if c.epochs == 2]
    assert held.interrupted and held.path.name == "model_epoch_002_step_00020.pth"
    assert checkpoint_after(train_dir, 3) is None and checkpoint_after(train_dir, 2) is None


def test_auto_resumed_run_is_placed_by_the_checkpoint_it_names(tmp_path):
    """TAO 7.3.0's auto-resume from latest (the exception checkpoint): the forwarded log lines
    ("Experiment configuration: ...", "Setting resume checkpoint to ...") are not results, and
    the second process, read with the first one's lines as history, starts after 2 epochs."""
    train_dir = status_path(results_dir(tmp_path, "auto_resume_from_latest_7_3")).parent
    first, second = runs(read_status(train_dir / "status.json"))
    assert any(line.message.startswith("Experiment configuration:\n") for line in second)
    reader = ResultReader(history=first)
    got = [result for line in second for result in reader.feed(line)] + reader.finish()
    assert [r.epochs for r in got if r.validation] == [3]
    # Cut after the eval line of epoch index 2 (no epoch line): placed by the resume line, after
    # the 2 epochs the exception checkpoint holds (its name says 3).
    assert second[6].message == "Eval metrics generated."
    for history, placed in ((first, 3), ((), 4)):
        cut = ResultReader(history=history)
        assert [r for line in second[:7] for r in cut.feed(line)] == []
        assert [r.epochs for r in cut.finish()] == [placed]
    assert checkpoint_after(train_dir, 3).path.name == "model_epoch_002_step_00030.pth"
