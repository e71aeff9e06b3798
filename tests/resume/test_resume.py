"""Kill the controller with SIGKILL mid-experiment, then `automl resume` completes it exactly."""

from __future__ import annotations

import json

import pytest

from automl.results.records import read_history
from tests.helpers.processes import cli, kill_when, start_run


# Slow-marked to keep CI's default run under its time budget: a controller kill -9 then resume
# of a FIFO run is in the default run through tests/resume/test_resume_continues.py (every
# epoch validated once, results equal an uninterrupted run's), and the resume matrix covers a
# model-based searcher's state (bohb).
@pytest.mark.parametrize("algo", [pytest.param("random", marks=pytest.mark.slow),
                                  pytest.param("bayesian", marks=pytest.mark.slow)])
def test_sigkill_then_resume_completes_without_duplicates(fake_skill, tmp_path, algo):
    ws = tmp_path / "ws"
    total = 5
    proc = start_run(fake_skill, ws, "--algo", algo, "--max-recommendations", str(total),
                     "--max-epochs", "3", "--max-concurrent", "1", "--set", "fake.epoch_s=1.0",
                     "--seed", "5")
    kill_when(ws, proc, finished=2)
    before = {r.rec_id: r for r in read_history(ws / "history.json")[1]}

    resumed = cli("resume", str(ws), "--progress", "none", timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    records = read_history(ws / "history.json")[1]
    ids = [r.rec_id for r in records]
    assert len(ids) == len(set(ids)) == total, ids  # same number of recommendations, no dupes
    assert all(r.status == "completed" for r in records)
    for rec_id, old in before.items():  # nothing finished before the kill was lost or re-run
        if old.status == "completed":
            new = next(r for r in records if r.rec_id == rec_id)
            assert new.results == old.results and new.params == old.params
    # A searcher whose state was reset on resume would propose the first configurations again.
    assert len({tuple(sorted(r.params.items())) for r in records}) == total
    assert json.loads((ws / "state.json").read_text())["state"] == "completed"
    again = cli("resume", str(ws))
    assert again.returncode == 2 and "already completed" in again.stderr


@pytest.mark.parametrize("algo", ["random", pytest.param("bfbo", marks=pytest.mark.slow)])
def test_trials_added_after_the_last_save_are_created_again(fake_skill, tmp_path, algo):
    """FIFO algorithms defer Tune's saves (automl.run.ray.tune_state); here they are held for the
    whole run, so the kill leaves trials - finished ones too - that Tune's saved state lacks.
    Resume creates them again with their ids and configurations (automl.resume.replay): none is
    set aside, none that had ended is trained again, and the count is exact."""
    from automl.run.ray.tune_state import MIN_INTERVAL_ENV
    from tests.helpers.processes import status_epochs, trial_folders

    ws = tmp_path / "ws"
    total = 5
    proc = start_run(fake_skill, ws, "--algo", algo, "--max-recommendations", str(total),
                     "--max-epochs", "2", "--max-concurrent", "1", "--set", "fake.epoch_s=0.4",
                     "--seed", "3", env={MIN_INTERVAL_ENV: "3600"})
    kill_when(ws, proc, finished=3)
    before = {r.rec_id: r for r in read_history(ws / "history.json")[1]}
    at_kill = {f.name for f in trial_folders(ws)}
    state = json.loads(sorted((ws / "ray" / "tune").glob("experiment_state-*.json"))[-1].read_text())
    saved = {json.loads(entry[0])["trial_id"] for entry in state["trial_data"]}
    assert len(at_kill - saved) >= 2, (at_kill, saved)  # the situation under test

    resumed = cli("resume", str(ws), "--progress", "none", timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "created again with the same configuration" in resumed.stdout, resumed.stdout
    assert not (ws / "abandoned").exists()
    records = read_history(ws / "history.json")[1]
    ids = [r.rec_id for r in records]
    assert len(ids) == len(set(ids)) == total, ids
    assert at_kill <= set(ids)
    assert all(r.status == "completed" and r.observed_budget == 2 for r in records)
    for rec_id, old in before.items():
        new = next(r for r in records if r.rec_id == rec_id)
        assert new.params == old.params and new.index == old.index, rec_id
        if old.status == "completed":  # ended before the kill: kept, not trained again
            assert new.results == old.results
            assert status_epochs(ws / "trials" / rec_id) == [1, 2], rec_id
    assert len({tuple(sorted(r.params.items())) for r in records}) == total
