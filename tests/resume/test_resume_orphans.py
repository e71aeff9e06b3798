"""`automl resume` stops what a controller killed alone (not its process group) left running.

Killing only the controller's pid kills its Ray workers within seconds and each trainer leader
with its worker (PR_SET_PDEATHSIG), but not the trainer's own children (``fake.mode=child``
starts one, like torchrun's workers): they would keep writing into the trial folders while the
resumed run retrains there. The resumed controller must stop them before launching anything,
and say so in one line; and it must never signal a process that only reuses a recorded pid.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from automl.results.records import read_history
from automl.resume.reconcile import TRAINER_FILE, leftover_processes, process_stat, record_trainer
from tests.helpers.processes import cli, kill_controller, start_run, trial_folders, wait_until


def _alive(pid: int, start_ticks: int) -> bool:
    stat = process_stat(pid)
    return stat is not None and stat[1] == start_ticks


@pytest.mark.slow  # CI time budget (36 s)
def test_leftover_trainer_children_are_stopped_on_resume(fake_skill: Path, tmp_path: Path):
    ws = tmp_path / "ws"
    proc = start_run(fake_skill, ws, "--algo", "random", "--max-recommendations", "2",
                     "--max-epochs", "8", "--max-concurrent", "2", "--seed", "3",
                     "--set", "fake.epoch_s=1.0", "--set", "fake.mode=child")

    def children() -> dict[int, int] | None:
        found = {}
        for folder in trial_folders(ws):
            pid_file = folder / "results" / "train" / "child.pid"
            if not pid_file.exists() or not (folder / TRAINER_FILE).exists():
                return None
            stat = process_stat(int(pid_file.read_text()))
            if stat is None:
                return None
            found[int(pid_file.read_text())] = stat[1]
        return found if len(found) == 2 else None

    kids = wait_until(children, proc, what="two trainers with a worker each")
    leaders = [json.loads((f / TRAINER_FILE).read_text())["pid"] for f in trial_folders(ws)]
    kill_controller(proc, group=False)  # the controller alone
    # The leaders die with their Ray workers; their workers do not (the premise of this test).
    wait_until(lambda: all(process_stat(p) is None for p in leaders), timeout=60,
               what="the trainer leaders' end")
    assert all(_alive(pid, ticks) for pid, ticks in kids.items()), "the premise: workers outlive"

    resumed = cli("resume", str(ws), "--progress", "none", timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "stopped 2 trainer processes of 2 trials left by the interrupted run" in resumed.stdout
    assert not any(_alive(pid, ticks) for pid, ticks in kids.items()), "an orphan survived resume"
    records = read_history(ws / "history.json")[1]
    assert len({r.rec_id for r in records}) == len(records) == 2
    assert all(r.status == "completed" and r.observed_budget == 8 for r in records)


def test_a_reused_pid_is_never_signalled(tmp_path: Path):
    """A recorded trainer whose pid now belongs to another process (another start time, or
    the same start time but another command line) yields nothing to stop."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             start_new_session=True)
    try:
        wait_until(lambda: process_stat(other.pid) is not None, timeout=10, what="the process start")
        folder = tmp_path / "trial"
        folder.mkdir()
        record_trainer(folder, other.pid, [sys.executable, "-c", "import time; time.sleep(60)"])
        assert leftover_processes(folder) == [other.pid]  # the real thing is found
        info = json.loads((folder / TRAINER_FILE).read_text())
        for change in ({"start_ticks": info["start_ticks"] - 1},  # the pid was reused
                       {"start_ticks": info["start_ticks"] + 1},
                       {"argv": ["segformer", "train", "-e", "spec.yaml"]},  # another command
                       {"boot_id": "another-boot"}):  # recorded before a reboot
            (folder / TRAINER_FILE).write_text(json.dumps({**info, **change}))
            assert leftover_processes(folder) == [], change
        assert process_stat(other.pid) is not None and other.poll() is None
    finally:
        other.kill()
        other.wait()


def _unsaved_workspace(tmp_path: Path):
    """Tune saved trials a and b; c and d have folders, e only a journal record."""
    from automl.results.records import TrialRecord

    tune_dir = tmp_path / "ray" / "tune"
    tune_dir.mkdir(parents=True)
    state = {"trial_data": [[json.dumps({"trial_id": t}), "{}"] for t in ("a", "b")],
             "runner_data": {}, "stats": {}}
    (tune_dir / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps(state))
    for name in ("a", "b", "c", "d"):
        (tmp_path / "trials" / name).mkdir(parents=True)
    # "e": journaled as started, killed before its trainer had a folder, never saved by Tune.
    return {"a": TrialRecord("a", {"x": 1}, index=1, status="completed"),
            "c": TrialRecord("c", {"x": 3}, index=4),
            "d": TrialRecord("d", {"x": 4}, index=3, status="completed"),
            "e": TrialRecord("e", {"x": 5}, index=5, status="running")}


def test_trials_tune_never_saved_are_set_aside(tmp_path: Path):
    """Without a searcher that can replay them, a trial unknown to the restored Tune has its
    folder moved to abandoned/ and its record dropped (the search proposes again); trials Tune
    saved, and finished ones, stay."""
    from automl.resume.reconcile import unsaved_trials
    from automl.resume.replay import Settled, settle_unsaved_trials

    records = _unsaved_workspace(tmp_path)
    assert unsaved_trials(tmp_path, records) == ["d", "c", "e"]  # creation order
    settled = settle_unsaved_trials(tmp_path, records, None)
    assert settled.replays == [] and settled.set_aside == ["c", "e"]
    assert "2 trials" in settled.note and "(c, e)" in settled.note
    assert sorted(records) == ["a", "d"]
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == ["a", "b", "d"]
    assert (tmp_path / "abandoned" / "c").is_dir()
    assert settle_unsaved_trials(tmp_path, records, None) == Settled()  # idempotent


def test_trials_tune_never_saved_are_replayed_when_the_searcher_can(tmp_path: Path):
    """A replaying searcher gets every unsaved trial whose configuration it reproduces, in
    creation order; the others are set aside as before."""
    from automl.resume.replay import settle_unsaved_trials

    class Searcher:
        def replayable(self, params):
            return params["x"] != 3

    records = _unsaved_workspace(tmp_path)
    settled = settle_unsaved_trials(tmp_path, records, Searcher())
    assert settled.replays == [("d", {"x": 4}), ("e", {"x": 5})] and settled.set_aside == ["c"]
    assert settled.note.startswith("2 trials created after Tune's last save (d, e) are created again")
    assert "1 trial started just before the interruption" in settled.note and "(c)" in settled.note
    assert sorted(records) == ["a", "d", "e"]


def test_replaying_names_the_next_trials_and_hands_their_configurations_to_the_searcher():
    """While replays wait, Tune's ``Trial.generate_id`` returns the next one's id (peeked: a
    suggestion the concurrency limiter refuses keeps it), ``take`` hands the configuration over
    once; afterwards ids are Ray's own again."""
    from automl.resume.replay import replaying, take
    from automl.run.ray.ray_private import trial_class

    Trial = trial_class()
    with replaying([("old1", {"x": 1}), ("old2", {"x": 2})]):
        assert Trial.generate_id() == Trial.generate_id() == "old1"
        assert take("nope") is None
        assert take("old1") == {"x": 1} and take("old1") is None
        assert Trial.generate_id() == "old2"
        assert take("old2") == {"x": 2}
        fresh = Trial.generate_id()
        assert fresh not in ("old1", "old2") and len(fresh) == 8
    assert "generate_id" in Trial.__dict__ and Trial.generate_id() not in ("old1", "old2")
    with replaying([("z", {})]):
        pass
    assert take("z") is None  # the queue does not outlive the run
