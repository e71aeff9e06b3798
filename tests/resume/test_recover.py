"""``automl recover``: history.json and best_rec.json rebuilt from the trial folders of a real
experiment (fake trainer) after they were deleted, corrupted, or never finished."""

from __future__ import annotations

import argparse
import fcntl
import json
import shutil
from pathlib import Path

import pytest

from automl.commands.recover import main_recover
from automl.errors import UserError
from automl.results.best import read_best_rec
from automl.results.records import read_history
from automl.resume.recover import recover
from tests.helpers.experiments import finished_random_search


@pytest.fixture(scope="module")
def experiment(ray_session, tmp_path_factory):
    base = tmp_path_factory.mktemp("recover")
    return finished_random_search(base, 11, 2)


@pytest.fixture
def ws(experiment, tmp_path) -> Path:
    """A private copy (moved workspace: best_rec.json's paths still name the original)."""
    return Path(shutil.copytree(experiment, tmp_path / "copy"))


def _fields(records):
    return {r.rec_id: (r.params, r.status, r.results, r.budget, r.failure_class) for r in records}


def test_rebuilds_deleted_history_and_best(experiment, ws):
    original = read_best_rec(experiment / "best_rec.json")
    _, original_records = read_history(experiment / "history.json")
    (ws / "history.json").unlink()
    (ws / "best_rec.json").unlink()

    summary = recover(ws)

    assert summary["history_was"] == "missing" and summary["previous_best"] is None
    assert summary["trials"] == 4 and summary["by_status"] == {"completed": 4}
    doc = read_best_rec(ws / "best_rec.json")
    best, before = doc["best"], original["best"]
    assert (best["rec_id"], best["score"], best["observed_budget"], best["checkpoint_epoch"],
            best["checkpoint_step"], best["specs"]) == \
        (before["rec_id"], before["score"], before["observed_budget"], before["checkpoint_epoch"],
         before["checkpoint_step"], before["specs"])
    # The checkpoint is this workspace's own file.
    assert best["checkpoint_uri"] == str(ws / "trials" / best["rec_id"] / "results" / "train"
                                         / Path(before["checkpoint_uri"]).name)
    assert Path(best["checkpoint_uri"]).is_file()
    experiment_doc, records = read_history(ws / "history.json")
    assert _fields(records) == _fields(original_records)
    assert all(set(r.params) == {"hp.x", "hp.y", "hp.c"} for r in records)  # the searched names
    assert sorted(r.index for r in records) == [1, 2, 3, 4]
    assert experiment_doc["metric"] == "val_miou" and experiment_doc["budget"] == 2
    assert doc["all_recs"] and {r["rec_id"] for r in doc["all_recs"]} == set(_fields(records))


def test_corrupted_history_and_best(experiment, ws):
    original = read_best_rec(experiment / "best_rec.json")["best"]
    _, original_records = read_history(experiment / "history.json")
    (ws / "history.json").write_text('{"version": 1, "trials": [{"rec_id": ')
    (ws / "best_rec.json").write_text("not json at all")
    summary = recover(ws)
    assert summary["history_was"] == "unreadable"
    assert summary["best"]["rec_id"] == original["rec_id"]
    assert summary["best"]["score"] == original["score"]
    assert _fields(read_history(ws / "history.json")[1]) == _fields(original_records)


def test_keeps_what_a_readable_history_knows(experiment, ws):
    _, original_records = read_history(experiment / "history.json")
    summary = recover(ws)
    assert summary["history_was"] == "ok"
    assert summary["previous_best"] == summary["best"]["rec_id"]
    records = {r.rec_id: r for r in read_history(ws / "history.json")[1]}
    for old in original_records:
        assert records[old.rec_id].index == old.index
        assert records[old.rec_id].started_at == old.started_at


def test_crashed_trials_without_outcome(experiment, ws):
    """The driver died: no outcome.json anywhere, one trial cut off after its first epoch."""
    original = read_best_rec(experiment / "best_rec.json")["best"]
    (ws / "history.json").unlink()
    (ws / "best_rec.json").unlink()
    for outcome in ws.glob("trials/*/outcome.json"):
        outcome.unlink()
    cut = next(p for p in sorted((ws / "trials").iterdir()) if p.name != original["rec_id"])
    status = cut / "results" / "train" / "status.json"
    lines = status.read_text().splitlines()
    # Cut after the first epoch (TAO's epoch 0 line and its train-metrics line), then a torn line.
    first = next(i for i, ln in enumerate(lines) if json.loads(ln).get("epoch") == 0)
    kept = lines[:first + 2]
    assert json.loads(kept[-1])["message"] == "Train metrics generated."
    status.write_text("\n".join(kept) + '\n{"status": "RUNNING", "message": "Eval metr')  # torn
    summary = recover(ws)
    records = {r.rec_id: r for r in read_history(ws / "history.json")[1]}
    assert records[cut.name].status == "stopped"
    assert records[cut.name].observed_budget == 1 and "interrupted" in records[cut.name].failure_message
    assert {records[k].status for k in records if k != cut.name} == {"completed"}
    assert summary["best"]["rec_id"] == original["rec_id"]  # the cut trial is not at the top budget


def test_failed_trial_from_status_only(experiment, ws):
    trial = sorted((ws / "trials").iterdir())[0]
    (trial / "outcome.json").unlink()
    (trial / "results" / "train" / "status.json").write_text(
        '{"status": "STARTED"}\n{"status": "FAILURE", "message": "data: split \'val\' not found"}\n')
    recover(ws)
    record = next(r for r in read_history(ws / "history.json")[1] if r.rec_id == trial.name)
    assert record.status == "failed" and record.failure_class == "data"


def test_refuses_a_running_experiment(ws):
    with open(ws / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(UserError, match="in use"):
            recover(ws)
    assert recover(ws)["trials"] == 4  # lock released: fine


def test_not_a_workspace(tmp_path):
    with pytest.raises(UserError, match="not an automl workspace"):
        recover(tmp_path)


def test_unreadable_experiment_file(ws):
    (ws / "experiment.yaml").write_text("metric: [unclosed")
    with pytest.raises(UserError, match="experiment.yaml: unreadable"):
        recover(ws)


def test_cli_summary(ws, capsys):
    (ws / "history.json").unlink()
    assert main_recover(argparse.Namespace(workspace=ws)) == 0
    out = capsys.readouterr().out
    assert "4 trials (4 completed)" in out and "best trial:" in out and "checkpoint:" in out


def test_pinned_parameters_are_params(ws):
    """A pinned parameter is recorded like the engine records it (part of each trial's config)."""
    import yaml

    doc = yaml.safe_load((ws / "experiment.yaml").read_text())
    doc["space"]["params"] = [p for p in doc["space"]["params"] if p["name"] != "hp.c"]
    doc["space"]["pinned"] = {"hp.c": "a"}
    (ws / "experiment.yaml").write_text(yaml.safe_dump(doc))
    recover(ws)
    assert all(set(r.params) == {"hp.x", "hp.y", "hp.c"} for r in read_history(ws / "history.json")[1])
