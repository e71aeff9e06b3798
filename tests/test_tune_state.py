"""Tune's experiment state is saved when something a resume restores changed, and only then."""

from __future__ import annotations

from automl.tune_state import _gate, save_state_on_change


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
    checkpoint = _gate(FakeController.checkpoint)
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
