"""The trial journal (automl.results.journal) and history.json as its compaction (automl.results.records)."""

from __future__ import annotations

import json

import pytest

from automl.results.journal import Journal, journal_path, read_journal
from automl.results.records import TrialRecord, read_history, write_history


def _record(rec_id: str, index: int, status: str = "running", epochs: int = 0) -> TrialRecord:
    record = TrialRecord(rec_id=rec_id, params={"lr": 0.1 * index}, index=index, status=status)
    for epoch in range(1, epochs + 1):
        record.add_result(epoch, {"val_miou": 0.1 * epoch})
    return record


def test_journal_overlays_history_and_compaction_empties_it(tmp_path):
    history = tmp_path / "history.json"
    write_history(history, {"metric": "val_miou"}, [_record("a", 1, "completed", 2)])
    journal = Journal(journal_path(history))
    journal.append({"trial": _record("b", 2, "running", 1).to_json()})
    journal.append({"trial": _record("b", 2, "completed", 3).to_json()})
    experiment, records = read_history(history)
    assert experiment == {"metric": "val_miou"}
    assert [(r.rec_id, r.status, r.observed_budget) for r in records] == \
        [("a", "completed", 2), ("b", "completed", 3)]
    write_history(history, experiment, records)  # compaction
    assert journal_path(history).stat().st_size == 0
    assert [r.rec_id for r in read_history(history)[1]] == ["a", "b"]
    journal.append({"trial": _record("c", 3).to_json()})  # the open handle appends after it
    assert [r.rec_id for r in read_history(history)[1]] == ["a", "b", "c"]
    journal.close()


def test_replaying_lines_already_compacted_changes_nothing(tmp_path):
    """A crash between the history.json write and the journal's truncation."""
    history = tmp_path / "history.json"
    final = _record("a", 1, "completed", 3)
    journal = Journal(journal_path(history))
    journal.append({"trial": _record("a", 1, "running", 1).to_json()})
    journal.append({"trial": final.to_json()})
    journal.close()
    lines = journal_path(history).read_bytes()
    write_history(history, {}, [final])
    journal_path(history).write_bytes(lines)  # as if the truncation never happened
    assert read_history(history)[1][0].to_json() == final.to_json()


def test_torn_last_line_is_ignored_and_cut_by_the_next_writer(tmp_path):
    history = tmp_path / "history.json"
    write_history(history, {}, [])
    path = journal_path(history)
    journal = Journal(path)
    journal.append({"trial": _record("a", 1, "completed", 1).to_json()})
    journal.close()
    whole = json.dumps({"trial": _record("b", 2).to_json()}).encode()
    with path.open("ab") as handle:
        handle.write(whole[: len(whole) // 2])  # a kill in the middle of an append
    assert [r.rec_id for r in read_history(history)[1]] == ["a"]
    journal = Journal(path)  # the resumed driver
    journal.append({"trial": _record("c", 3).to_json()})
    journal.close()
    assert [e["trial"]["rec_id"] for e in read_journal(path)] == ["a", "c"]


def test_damage_before_the_last_line_is_an_error(tmp_path):
    path = tmp_path / "history.journal"
    path.write_bytes(b'{"trial": {"rec_id": "a"}}\nnot json\n{"trial": {"rec_id": "b"}}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_journal(path)
