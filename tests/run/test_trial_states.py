"""Trial states as the records tell them: a trial waiting at a rung is paused, not running.

Issue 25: with asha and ``--max-concurrent 2`` the page said "4 running" while two trials waited
at a rung. The page, ``automl status`` and the API all read the records (history.json overlaid
with the journal), so the records must never count more trials running than there are slots.
The journal holds every record change in order; replaying it gives the records as a reader saw
them at each moment of the run.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from automl.cli import main
from automl.results.journal import Journal
from automl.results.records import read_history
from automl.run.recorder import Recorder

pytestmark = pytest.mark.usefixtures("ray_session")


def test_asha_trials_waiting_at_a_rung_are_paused_not_running(fake_skill, tmp_path, monkeypatch):
    entries: list[dict[str, Any]] = []
    append = Journal.append

    def keep(self: Journal, entry: dict[str, Any]) -> None:
        entries.append(entry)
        append(self, entry)

    monkeypatch.setattr(Journal, "append", keep)
    workspace = tmp_path / "ws"
    code = main(["run", "--skill-dir", str(fake_skill), "--workspace", str(workspace),
                 "--progress", "none", "--seed", "3", "--algo", "asha", "--max-epochs", "3",
                 "--reduction-factor", "3", "--max-recommendations", "6",
                 "--max-concurrent", "2"])
    assert code == 0

    statuses: dict[str, str] = {}
    seen: dict[str, list[str]] = {}
    for entry in entries:
        record = entry["trial"]
        statuses[record["rec_id"]] = record["status"]
        history = seen.setdefault(record["rec_id"], [])
        if not history or history[-1] != record["status"]:
            history.append(record["status"])
        running = sorted(r for r, s in statuses.items() if s == "running")
        assert len(running) <= 2, (running, seen)

    _, records = read_history(workspace / "history.json")
    assert len(records) == 6
    by_id = {r.rec_id: r for r in records}
    # Every trial that stopped at rung 1 (1 epoch) waited there, paused, before it was stopped.
    stopped = [r for r in records if r.status == "stopped"]
    assert stopped and all(r.observed_budget == 1 for r in stopped)
    for record in stopped:
        assert seen[record.rec_id][-2:] == ["paused", "stopped"], seen[record.rec_id]
    # A promoted trial was paused at rung 1, then ran again to the last rung.
    promoted = [i for i, h in seen.items() if "paused" in h and by_id[i].status == "completed"]
    assert promoted, seen
    for rec_id in promoted:
        assert seen[rec_id] == ["running", "paused", "running", "completed"], seen[rec_id]
        assert by_id[rec_id].observed_budget == 3
        assert len(by_id[rec_id].runs) == 2  # one trainer run per rung: the wait is not a run
    # What the page's timeline draws: every run closed, and never more at once than the slots.
    runs = [run for r in records for run in r.runs]
    assert runs and all(end is not None and end >= start for start, end in runs)
    for start, _ in runs:
        assert sum(1 for s, e in runs if s <= start < e) <= 2
    assert all(len(r.runs) == 1 for r in stopped)  # stopped while waiting: its one run ended

class _Trial:
    """What the Recorder reads of a Tune trial."""

    def __init__(self, trial_id: str, index: int) -> None:
        self.trial_id, self.experiment_tag = trial_id, f"{index}_x"
        self.config: dict[str, Any] = {"hp.x": 0.5}
        self.status = "RUNNING"


class _Statuses:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def trial_started(self, record) -> None:
        self.events.append(("started", record.rec_id, record.status))

    def trial_result(self, record, result) -> None: ...
    def trial_ended(self, record) -> None: ...

    def trial_status(self, record) -> None:
        self.events.append(("status", record.rec_id, record.status))


def test_recorder_marks_trials_that_stop_running_without_ending(tmp_path):
    """Paused by any scheduler (Tune has no pause callback) or made pending again: the record
    and the observers follow at the end of the step; a restart makes it running again."""
    observer = _Statuses()
    recorder = Recorder(tmp_path, {"budget": 3}, "val_miou", [observer])
    a, b = _Trial("a", 1), _Trial("b", 2)
    recorder.on_trial_start(0, [a, b], a)
    recorder.on_trial_start(0, [a, b], b)
    recorder.on_step_end(1, [a, b])
    assert [r.status for r in recorder.records.values()] == ["running", "running"]
    a.status, b.status = "PAUSED", "PENDING"
    recorder.on_step_end(2, [a, b])
    recorder.on_step_end(3, [a, b])  # told once
    assert recorder.records["a"].status == "paused" and recorder.records["b"].status == "pending"
    a.status = "RUNNING"
    recorder.on_trial_start(4, [a, b], a)
    assert observer.events == [("started", "a", "running"), ("started", "b", "running"),
                               ("status", "a", "paused"), ("status", "b", "pending"),
                               ("started", "a", "running")]
    _, records = read_history(tmp_path / "history.json")
    assert {r.rec_id: r.status for r in records} == {"a": "running", "b": "pending"}
    # Tune pickles its callbacks: the live trials stay with the driver.
    assert pickle.loads(pickle.dumps(recorder))._running == {}
    recorder.close()
