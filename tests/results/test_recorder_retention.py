"""The Recorder's incremental retention deletes exactly what a full rescan would, at every step."""

from __future__ import annotations

import random
from pathlib import Path

from automl.tao.checkpoints import checkpoint_name
from automl.results.records import TrialRecord
from automl.run.recorder import Recorder
from automl.results.best import choose_best
from automl.results.retention import checkpoint_files, prune

METRIC = "val_miou"


class FakeTrial:
    def __init__(self, trial_id: str, index: int) -> None:
        self.trial_id = trial_id
        self.config = {"x": index}
        self.experiment_tag = f"{index}_x={index}"
        self.status = "RUNNING"


def _write_checkpoints(ws: Path, rec_id: str, epochs: range) -> None:
    train = ws / "trials" / rec_id / "results" / "train"
    train.mkdir(parents=True, exist_ok=True)
    for epoch in epochs:
        (train / checkpoint_name(epoch, epoch * 10)).write_text("w" * 10)  # after `epoch` epochs
    (train / "zero_model_latest.pth").write_text("w" * 10)


def _files(ws: Path) -> set[str]:
    trials = ws / "trials"
    if not trials.is_dir():
        return set()
    return {str(p.relative_to(ws)) for folder in trials.iterdir() for p in checkpoint_files(folder)}


def _full_rescan(ws: Path, records: list[TrialRecord]) -> None:
    """What ``Recorder._retain`` did before it became incremental."""
    best = choose_best(records, METRIC, "max")
    prune(ws, records, best.record.rec_id if best else None, keep_rec_ids=set(), needed_paths=set())


def test_incremental_retention_matches_a_full_rescan(tmp_path: Path):
    rng = random.Random(3)
    fast, slow = tmp_path / "fast", tmp_path / "slow"
    recorder = Recorder(fast, {"keep_checkpoints": "best", "budget": 9, "direction": "max"}, METRIC)
    reference: dict[str, TrialRecord] = {}
    trials = [FakeTrial(f"t{i:03d}", i + 1) for i in range(40)]
    running: list[FakeTrial] = []
    done: list[FakeTrial] = []
    for step in range(160):
        restart = done and rng.random() < 0.1
        if restart:  # a finished trial runs again (restarted / resumed): new files, new end
            trial = done.pop(rng.randrange(len(done)))
        elif trials and (len(running) < 4 or rng.random() < 0.3):
            trial = trials.pop(0)
        else:
            trial = None
        if trial is not None:
            recorder.on_trial_start(0, [], trial)
            running.append(trial)
        if not running:
            continue
        trial = running.pop(rng.randrange(len(running)))
        epochs = rng.choice([1, 3, 9])
        for ws in (fast, slow):
            _write_checkpoints(ws, trial.trial_id, range(1, epochs + 1))
        for epoch in range(1, epochs + 1):
            recorder.on_trial_result(0, [], trial, {METRIC: rng.random(), "epoch": epoch})
        recorder.on_trial_complete(0, [], trial)
        done.append(trial)
        twin = TrialRecord.from_json(recorder.records[trial.trial_id].to_json())
        twin.folder = str(slow / "trials" / trial.trial_id)
        reference[trial.trial_id] = twin
        for record in reference.values():  # the reference sees the same statuses
            record.status = recorder.records[record.rec_id].status
        _full_rescan(slow, list(reference.values()))
        assert _files(fast) == _files(slow), f"step {step}"
    assert _files(fast)  # the best trial kept its chosen checkpoint


def test_incremental_best_is_the_full_choice_ties_included(tmp_path: Path):
    """The best the incremental pass keeps is ``choose_best`` over every record at each end,
    also when scores tie (the first in the records' order wins) and when the best trial itself
    starts again and stops counting for a while."""
    rng = random.Random(11)
    recorder = Recorder(tmp_path, {"keep_checkpoints": "best", "budget": 3, "direction": "max"},
                        METRIC)
    trials = [FakeTrial(f"t{i:03d}", i + 1) for i in range(30)]
    done: list[FakeTrial] = []
    for step in range(90):
        best_id = recorder._best_id
        if best_id and rng.random() < 0.15:  # the best runs again
            trial = next(t for t in done if t.trial_id == best_id)
        elif trials:
            trial = trials.pop(rng.randrange(len(trials)))
        else:
            trial = rng.choice(done)
        recorder.on_trial_start(0, [], trial)
        epochs = rng.choice([1, 3])
        _write_checkpoints(tmp_path, trial.trial_id, range(1, epochs + 1))
        for epoch in range(1, epochs + 1):
            recorder.on_trial_result(0, [], trial, {METRIC: rng.choice([0.3, 0.6]), "epoch": epoch})
        recorder.on_trial_complete(0, [], trial)
        done.append(trial)
        full = choose_best(list(recorder.records.values()), METRIC, "max")
        assert recorder._best_id == full.record.rec_id, f"step {step}"


def test_a_resumed_driver_prunes_what_the_history_left(tmp_path: Path):
    """Records loaded from history.json are all looked at on the first trial end."""
    records = {}
    for i, score in enumerate([0.2, 0.9, 0.5]):
        rec_id = f"h{i}"
        _write_checkpoints(tmp_path, rec_id, range(1, 4))
        record = TrialRecord(rec_id=rec_id, params={}, index=i + 1, status="completed", budget=3,
                             folder=str(tmp_path / "trials" / rec_id))
        for epoch in (1, 2, 3):
            record.add_result(epoch, {METRIC: score})
        records[rec_id] = record
    recorder = Recorder(tmp_path, {"keep_checkpoints": "best", "budget": 3}, METRIC,
                        records=records)
    trial = FakeTrial("new", 4)
    recorder.on_trial_start(0, [], trial)
    _write_checkpoints(tmp_path, "new", range(1, 4))
    recorder.on_trial_result(0, [], trial, {METRIC: 0.1, "epoch": 3})
    recorder.on_trial_complete(0, [], trial)
    assert _files(tmp_path) == {"trials/h1/results/train/model_epoch_002_step_00030.pth"}


def test_failure_stopper_counts_follow_every_change(tmp_path: Path):
    """``FailureStopper.stop_all`` (asked at every Tune step) keeps counts instead of scanning
    the records; at every event it answers what a scan of the records answers, through trial
    ends, failures (a metric never reported among them), restarts and a resumed history."""
    import json

    from automl.contract import FINISHED, OUTCOME
    from automl.run.recorder import FailureStopper

    def scan(records, minimum: int) -> bool:
        done = [r for r in records.values() if r.status in FINISHED]
        return any(r.failure_class == "metric" for r in done) or (
            len(done) >= minimum and all(r.status == "failed" for r in done))

    rng = random.Random(5)
    for round_ in range(6):
        recorder = Recorder(tmp_path / str(round_), {"keep_checkpoints": "all"}, METRIC)
        stopper = FailureStopper(recorder, minimum=3)
        trials = [FakeTrial(f"t{i}", i + 1) for i in range(12)]
        for step in range(40):
            trial = rng.choice(trials)
            recorder.on_trial_start(0, [], trial)
            assert stopper.stop_all() == scan(recorder.records, 3), (round_, step)
            folder = Path(recorder.records[trial.trial_id].folder)
            folder.mkdir(parents=True, exist_ok=True)
            failure = rng.choice([None, None, "runtime", "metric"] if round_ % 2 else [None, "runtime"])
            (folder / OUTCOME).write_text(json.dumps(
                {"status": "failed" if failure else "completed", "failure_class": failure}))
            if failure:
                recorder.on_trial_error(0, [], trial)
            else:
                recorder.on_trial_complete(0, [], trial)
            assert stopper.stop_all() == scan(recorder.records, 3), (round_, step)
        resumed = Recorder(tmp_path / str(round_), {"keep_checkpoints": "all"}, METRIC,
                           records=recorder.records)
        assert FailureStopper(resumed, 3).stop_all() == scan(recorder.records, 3)
