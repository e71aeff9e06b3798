"""Hyperband survives a SIGKILL of the controller: `automl resume` keeps brackets and pauses.

Its own file: two fresh controllers (each starts Ray) make it the slowest bracket test.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from automl.results.records import read_history
from tests.helpers.processes import cli, kill_controller, start_run, trial_folders, wait_until
from tests.helpers.processes import status_epochs as epochs_in_status


@pytest.mark.slow  # CI time budget; bracket resume stays in the matrix (asha, bohb)
def test_hyperband_state_survives_sigkill_and_resume(fake_skill, tmp_path):
    """`automl resume` restores the brackets (the searcher saves the scheduler's state): the
    allocation stays textbook, and trials that were paused at a rung stay paused (Tune would
    requeue them as pending) until promoted or stopped."""
    ws = tmp_path / "ws"
    proc = start_run(fake_skill, ws, "--algo", "hyperband", "--max-recommendations", "5",
                     "--max-epochs", "3", "--max-concurrent", "1", "--set", "fake.epoch_s=0.5",
                     "--seed", "5")

    def two_of_three_paused():  # kill while 2 of bracket 0's 3 trials wait at rung 0
        folders = trial_folders(ws)
        done = [f for f in folders if epochs_in_status(f)]
        return done if len(folders) == 3 and len(done) == 2 else None

    done = wait_until(two_of_three_paused, proc)
    kill_controller(proc)
    paused = [f.name for f in done]

    resumed = cli("resume", str(ws), "--progress", "none", timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    records = read_history(ws / "history.json")[1]
    assert len({r.rec_id for r in records}) == len(records) == 5
    budgets = Counter((r.bracket, r.observed_budget) for r in records)
    assert budgets == Counter({(0, 1): 2, (0, 3): 1, (1, 3): 2})  # 3@1 -> 1@3, then 2@3
    for record in records:  # nobody retrained, paused ones were not restarted
        runs = len(list(Path(record.folder).glob("spec_segment_*.yaml")))
        assert runs <= 2 if record.bracket == 0 else runs == 1
        assert epochs_in_status(record.folder)[-record.observed_budget:] == \
            list(range(1, record.observed_budget + 1))
    for rec_id in paused:
        final = next(r for r in records if r.rec_id == rec_id)
        runs = len(list(Path(final.folder).glob("spec_segment_*.yaml")))
        assert runs == (2 if final.observed_budget == 3 else 1)
