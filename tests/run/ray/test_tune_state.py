"""Tune's experiment state is saved when something a resume restores changed, and only then."""

from __future__ import annotations

import time

from automl.run.ray.tune_state import checkpoint_gate, save_state_on_change


class FakeTrial:
    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id
        self.status = "PENDING"
        self.config = {"x": 1.0}
        self.checkpoint = None


class FakeController:
    def __init__(self) -> None:
        self.trials: list[FakeTrial] = []
        self.saves: list[bool] = []

    def get_trials(self):
        return self.trials

    def get_live_trials(self):
        return {t for t in self.trials if t.status not in ("TERMINATED", "ERROR")}

    def checkpoint(self, force: bool = False, wait: bool = False) -> None:
        self.saves.append(force)


def test_saves_only_on_change_or_force():
    checkpoint = checkpoint_gate(FakeController.checkpoint, defer=False)
    ctl = FakeController()

    def step() -> int:
        before = len(ctl.saves)
        checkpoint(ctl)
        return len(ctl.saves) - before

    assert step() == 1  # the first step always saves
    assert step() == 0  # nothing changed
    trial = FakeTrial("a")
    ctl.trials.append(trial)
    assert step() == 1  # a trial was added
    assert step() == 0
    trial.status = "RUNNING"  # started: Tune restores an unfinished trial as PENDING anyway
    assert step() == 0
    for _ in range(5):  # results alone: no save
        assert step() == 0
    trial.status = "PAUSED"  # paused / promoted: likewise (the checkpoint is what matters)
    assert step() == 0
    trial.status = "RUNNING"
    trial.checkpoint = object()  # a registered checkpoint
    assert step() == 1
    trial.config = {"x": 2.0}  # an exploit / promotion sets a new config
    assert step() == 1
    trial.config["x"] = 3.0  # changed in place: still seen
    assert step() == 1
    checkpoint(ctl, force=True)  # Tune's forced saves (end, stop request) always go through
    assert ctl.saves[-1] is True
    trial.status = "TERMINATED"
    assert step() == 1
    other = FakeTrial("b")
    ctl.trials.append(other)
    other.status = "PAUSED"
    assert step() == 1
    assert step() == 0
    other.status = "ERROR"  # ended with an error
    assert step() == 1


def test_gate_is_scoped_to_the_experiment():
    from ray.tune.execution.tune_controller import TuneController

    original = TuneController.__dict__["checkpoint"]
    with save_state_on_change() as active:
        assert active
        assert TuneController.__dict__["checkpoint"] is not original
        with save_state_on_change() as nested:  # never wrapped twice
            assert not nested
    assert TuneController.__dict__["checkpoint"] is original


class SlowController(FakeController):
    SAVE_S = 0.05  # the pause after it: ≥ 0.95 s

    def checkpoint(self, force: bool = False, wait: bool = False) -> None:
        time.sleep(self.SAVE_S)
        self.saves.append(force)


def test_fifo_defers_saves_whose_only_news_is_trials_added_or_ended():
    """``defer`` (FIFO algorithms): a trial added or ended waits DEFER_FACTOR × the last save's
    duration; a new config or checkpoint, and a forced save, go through at once."""
    checkpoint = checkpoint_gate(SlowController.checkpoint, defer=True)
    ctl = SlowController()
    a, b = FakeTrial("a"), FakeTrial("b")
    ctl.trials += [a, b]

    def step() -> int:
        before = len(ctl.saves)
        checkpoint(ctl)
        return len(ctl.saves) - before

    assert step() == 1  # the first save is never deferred
    b.status = "TERMINATED"
    assert step() == 0  # only an end, right after a save: deferred
    ctl.trials.append(FakeTrial("c"))
    assert step() == 0  # an added trial too (resume creates it again: automl.resume.replay)
    a.status = "TERMINATED"
    assert step() == 0
    waited = time.monotonic()
    while step() == 0:  # saved once the pause has passed
        assert time.monotonic() - waited < 60
        time.sleep(0.05)
    assert time.monotonic() - waited >= 0.5
    ctl.trials[2].status = "TERMINATED"
    checkpoint(ctl, force=True)  # forced saves (end of the run, a stop request) go through
    assert ctl.saves[-1] is True
    d = FakeTrial("d")
    ctl.trials.append(d)
    assert step() == 0
    d.config = {"x": 5.0}  # a new config is never deferred: it is not a replayable change...
    assert step() == 0  # ...unless the trial is new since the last save (its config is its own)
    checkpoint(ctl, force=True)
    d.config = {"x": 6.0}
    assert step() == 1
    d.checkpoint = object()  # nor is a registered checkpoint
    assert step() == 1


def test_min_interval_holds_deferrable_saves(monkeypatch):
    """``AUTOML_TUNE_SAVE_MIN_S`` lengthens the pause (slow storage; the resume tests use it to
    leave trials unsaved), never a forced save or a first one."""
    from automl.run.ray.tune_state import MIN_INTERVAL_ENV

    monkeypatch.setenv(MIN_INTERVAL_ENV, "3600")
    checkpoint = checkpoint_gate(FakeController.checkpoint, defer=True)
    ctl = FakeController()
    assert (checkpoint(ctl), len(ctl.saves)) == (None, 1)
    for name in "abc":
        ctl.trials.append(FakeTrial(name))
        time.sleep(0.01)
        checkpoint(ctl)
    assert len(ctl.saves) == 1
    checkpoint(ctl, force=True)
    assert len(ctl.saves) == 2
