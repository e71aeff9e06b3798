"""pbt / pb2: schema-true perturbations, durable inherited checkpoints, lineage, end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from automl.tao.checkpoints import checkpoint_name
from automl.tao.lines import read_status
from automl.tao.progress import read_results, runs
from automl.algorithms import AlgoContext, Budget, build_plan
from automl.algorithms.pb2 import ModelSpace, _engine_pb2_class
from automl.algorithms.pbt import (ClipToSpace, initial_population, mutations,
                                  perturbation_interval, resource_slots)
from automl.cli import main
from automl.errors import UserError
from automl.results.records import read_history
from automl.results.best import read_best_rec
from automl.space.params import Param, SearchSpace
from automl.contract import LINEAGE, PARENT_KEY, STOP_EVERY_KEY, hyperparameters
from automl.run.trial import inherit

RICH = SearchSpace(
    params=(
        Param("lr", "float", 1e-6, 1e-3, log=True, default=1e-4),
        Param("momentum", "float", 0.0, 1.0, default=0.9),
        Param("batch", "int", 1, 64, math_cond="^ 2", default=8),  # powers of 2
        Param("width", "int", 8, 512, math_cond="/ 8", default=64),  # multiples of 8
        Param("steps", "int", 1, 5000, default=100),  # large: sampled, not listed
        Param("depth", "int", 1, 5, default=2),
        Param("max_size", "int", 16, 64, default=32),
        Param("min_size", "int", 1, 63, depends_on="max_size", math_cond="< depends_on", default=8),
        Param("opt", "categorical", choices=("adam", "sgd", "adamw"), weights=(0.5, 0.25, 0.25),
              default="adam"),
        Param("flip", "categorical", choices=(True, False), default=True),
    ),
    pinned={"seed": 3},
)


def _ctx(space: SearchSpace = RICH, seed: int = 7, mode: str = "max", population: int = 4) -> AlgoContext:
    return AlgoContext(space=space, metric="val_miou", mode=mode, seed=seed,
                       budget=Budget(9, 1, 3), max_recommendations=10, max_concurrent=4,
                       population_size=population, fixed_budget=False)


def _assert_types(config: dict) -> None:
    for param in RICH.params:
        value = config[param.name]
        if param.kind == "int":
            assert type(value) is int, (param.name, value)
        elif param.kind == "float":
            assert type(value) is float, (param.name, value)


@pytest.mark.parametrize("resample", [0.0, 0.25, 1.0])
def test_pbt_explore_stays_in_schema_bounds_and_types(resample):
    from ray.tune.schedulers.pbt import _explore

    random.seed(11)
    space_mutations = mutations(RICH, seed=5)
    clip = ClipToSpace(RICH)
    assert space_mutations["batch"] == [1, 2, 4, 8, 16, 32, 64]
    assert space_mutations["depth"] == [1, 2, 3, 4, 5]
    assert callable(space_mutations["width"])  # 64 multiples of 8: sampled, then snapped
    assert callable(space_mutations["steps"]) and callable(space_mutations["lr"])
    configs = initial_population(RICH, 8, seed=1)
    seen: dict[str, set] = {name: set() for name in RICH.names()}
    for _ in range(60):
        parent = random.choice(configs)
        child, _ = _explore(parent, space_mutations, resample, (1.2, 0.8), clip)
        RICH.validate({k: v for k, v in child.items()})
        _assert_types(child)
        assert child["min_size"] < child["max_size"]
        for name in seen:
            seen[name].add(child[name])
        configs.append(child)
    # exploration does move things
    assert len(seen["lr"]) > 5 and len(seen["batch"]) > 1


def test_clip_handles_out_of_range_and_wrong_types():
    clip = ClipToSpace(RICH)
    config = {"lr": 5.0, "momentum": -3, "batch": 50, "width": 13.7, "steps": 10**9, "depth": 0.2,
              "max_size": 20, "min_size": 40, "opt": "adam", "flip": False, "seed": 99}
    out = clip(config)
    RICH.validate(out)
    _assert_types(out)
    assert out["lr"] == 1e-3 and out["momentum"] == 0.0 and out["batch"] == 64
    assert out["width"] == 16 and out["steps"] == 5000 and out["depth"] == 1
    assert out["min_size"] == 19 and out["seed"] == 3


@pytest.mark.parametrize("algo", ["pbt", "pb2"])
def test_same_seed_same_initial_population(algo):
    first = build_plan(algo, _ctx(seed=7)).search_alg._points_to_evaluate
    second = build_plan(algo, _ctx(seed=7)).search_alg._points_to_evaluate
    other = build_plan(algo, _ctx(seed=8)).search_alg._points_to_evaluate
    assert first == second and first != other
    assert len(first) == 4
    for config in first:
        # trainers stop at every perturbation boundary (train.num_epochs = next boundary)
        assert config[STOP_EVERY_KEY] == perturbation_interval(_ctx(seed=7))
        config = hyperparameters(config)
        RICH.validate(config)
        _assert_types(config)


def test_plans_describe_population_and_interval():
    plan = build_plan("pbt", _ctx())
    assert plan.checkpoints and plan.interval == 1 and plan.num_samples == 4
    assert plan.scheduler._perturbation_interval == 1 and plan.scheduler._time_attr == "epoch"
    assert plan.scheduler.multiplex is None  # decided from the cluster at the first result


def test_resource_slots():
    assert resource_slots({"CPU": 0.5}, {"CPU": 2.0, "memory": 1e9}) == 4
    assert resource_slots({"CPU": 1, "GPU": 1}, {"CPU": 16.0, "GPU": 2.0}) == 2
    assert resource_slots({"CPU": 1, "GPU": 1}, {"CPU": 16.0}) == 0
    assert resource_slots({"CPU": 1 / 3}, {"CPU": 1.0}) == 3


class _Member:
    def __init__(self, name: str) -> None:
        from ray.tune.experiment import Trial

        self.experiment_tag, self.status = name, Trial.PAUSED


def test_waiting_parent_runs_before_its_fresh_copy():
    """A copy shares its parent's train time; if it always ran first it would copy the same
    stale checkpoint over and over (livelock seen with 8 members on 4 slots)."""
    from ray.tune.experiment import Trial
    from ray.tune.schedulers.pbt import _PBTTrialState

    scheduler = build_plan("pbt", _ctx()).scheduler
    child, parent, behind, running = (_Member(n) for n in ("child", "parent", "behind", "running"))
    running.status = Trial.RUNNING
    for trial, (time, score) in zip((child, parent, behind, running),
                                    ((18, None), (18, 0.9), (15, 0.5), (3, 0.1))):
        scheduler._trial_state[trial] = state = _PBTTrialState(trial)
        state.last_train_time, state.last_score = time, score
    controller = SimpleNamespace(get_trials=lambda: [child, parent, behind, running])
    assert scheduler.choose_trial_to_run(controller) is behind  # least trained first (Ray's)
    behind.status = Trial.RUNNING
    assert scheduler.choose_trial_to_run(controller) is parent  # then the parent, not its copy


def test_pb2_refuses_categorical_only_space():
    space = SearchSpace(params=(Param("opt", "categorical", choices=("a", "b"), default="a"),))
    with pytest.raises(UserError, match="pbt"):
        build_plan("pb2", _ctx(space=space))


def test_pb2_model_space_round_trip():
    model = ModelSpace(RICH)
    assert "opt" not in model.names and "lr" in model.names
    assert model.bounds()["lr"] == pytest.approx([-6, -3])
    assert model.bounds()["batch"] == pytest.approx([0, 6])
    for name, value in (("lr", 3e-5), ("batch", 16), ("steps", 250), ("momentum", 0.5)):
        back = model.from_model(name, model.to_model(name, value))
        assert back == pytest.approx(value) and type(back) is type(value)


class _StubTrial:
    def __init__(self, trial_id: str, config: dict) -> None:
        self.trial_id, self.config = trial_id, dict(config)

    def __str__(self) -> str:
        return self.trial_id


@pytest.mark.parametrize("better", ["high", "low"])
@pytest.mark.parametrize("population_seed", [0, 4])  # members spread over [0.02, 0.87]
def test_pb2_explore_is_gp_driven_and_in_schema(better, population_seed):
    """The reward grows fastest for large (or small) momentum and ignores everything else: PB2's
    GP-UCB must propose a momentum beyond the whole population's, on the better side, where
    PBT's x0.8/x1.2 perturbation or a random draw would land anywhere."""
    from ray.tune.schedulers.pbt import _PBTTrialState

    scheduler = _engine_pb2_class()(space=RICH, seed=3, max_epochs=9, population=4,
                                    time_attr="epoch", metric="val_miou", mode="max",
                                    perturbation_interval=1, quantile_fraction=0.25,
                                    log_config=False)
    members = initial_population(RICH, 4, seed=population_seed)
    trials = [_StubTrial(f"t{i}", c) for i, c in enumerate(members)]

    def rate(trial) -> float:
        momentum = trial.config["momentum"]
        return momentum if better == "high" else 1.0 - momentum

    for trial in trials:
        trial.experiment_tag = trial.trial_id
        state = _PBTTrialState(SimpleNamespace(experiment_tag=trial.trial_id))
        for epoch in range(1, 4):
            scheduler._save_trial_state(state, epoch, {"val_miou": epoch * rate(trial),
                                                       "epoch": epoch}, trial)
    assert set(scheduler.data.columns) >= {"lr", "batch", "Reward"}
    assert scheduler.data["lr"].between(-6, -3).all()  # stored in log10
    best = max(trials, key=rate)
    worst = min(trials, key=rate)
    momenta = [t.config["momentum"] for t in trials]
    for _ in range(2):  # the second one is spread away from the first (same round)
        config, _ = scheduler._get_new_config(worst, best)
        assert config[PARENT_KEY] == best.trial_id
        RICH.validate({k: v for k, v in config.items() if not k.startswith("__")})
        _assert_types(config)
        if better == "high":
            assert config["momentum"] > max(momenta) and config["momentum"] >= 0.9, momenta
        else:
            assert config["momentum"] < min(momenta) and config["momentum"] <= 0.1, momenta


def test_inherit_copies_the_parent_file_and_records_lineage(tmp_path):
    parent_file = tmp_path / "trials" / "p" / "results" / "train" / "model_epoch_003_step_00040.pth"
    parent_file.parent.mkdir(parents=True)
    parent_file.write_text("weights@4")
    child = tmp_path / "trials" / "c"
    child.mkdir(parents=True)
    pointer = {"path": str(parent_file), "epoch": 4, "step": 40, "rec_id": "p"}
    own = inherit(child, "c", {**pointer, "rec_id": "c"}, {})
    assert own["path"] == str(parent_file)  # its own checkpoint: nothing to do
    resumed = inherit(child, "c", pointer, {"x": 0.5})
    copy = Path(resumed["path"])
    assert copy == child / "inherited" / parent_file.name and copy.read_text() == "weights@4"
    parent_file.write_text("overwritten by the parent later")
    assert copy.read_text() == "weights@4"
    lineage = json.loads((child / LINEAGE).read_text())
    assert [(e["parent"], e["epoch"], e["params"]) for e in lineage] == [("p", 4, {"x": 0.5})]
    # restarted (paused) before reporting: the same inheritance, no new copy or entry
    assert inherit(child, "c", pointer, {"x": 0.5})["path"] == str(copy)
    assert copy.read_text() == "weights@4" and len(json.loads((child / LINEAGE).read_text())) == 1
    # a later exploit of another parent: new copy, earlier copy dropped, lineage appended
    other = tmp_path / "trials" / "q" / "results" / "train" / "model_epoch_005_step_00060.pth"
    other.parent.mkdir(parents=True)
    other.write_text("weights@6")
    inherit(child, "c", {"path": str(other), "epoch": 6, "step": 60, "rec_id": "q"}, {"x": 0.6})
    assert sorted(p.name for p in (child / "inherited").iterdir()) == [other.name]
    assert [e["parent"] for e in json.loads((child / LINEAGE).read_text())] == ["p", "q"]
    with pytest.raises(FileNotFoundError):
        inherit(child, "c", {"path": str(tmp_path / "gone.pth"), "epoch": 1, "rec_id": "p"}, {})


# -- end to end with the fake trainer -----------------------------------------------------------

R = 5  # epochs: perturbation steps at 1..4 (interval 1), none at R

def _run(fake_skill: Path, tmp_path: Path, *extra: str, epochs: int = R) -> Path:
    workspace = tmp_path / "ws"
    code = main(["run", "--skill-dir", str(fake_skill), "--workspace", str(workspace),
                 "--progress", "none", "--seed", "7", "--max-epochs", str(epochs), "--population-size", "4",
                 "--cpus-per-trial", "0.5", "--set", "fake.epoch_s=0.3", *extra])
    assert code == 0
    return workspace


def _status_segments(trial: Path) -> list[list[int]]:
    """Epochs completed at each validation of each trainer process (TAO's dialect)."""
    lines = read_status(trial / "results" / "train" / "status.json")
    return [[r.epochs for r in read_results(run) if "val_miou" in r.kpi] for run in runs(lines)]


def _specs(trial: Path) -> list[Path]:
    return sorted(trial.glob("spec_segment_*.yaml"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))


def _xs_at_epoch(trial: Path, epoch: int) -> set[float]:
    """hp.x of every trainer start of ``trial`` that trained ``epoch``."""
    specs, segments = _specs(trial), _status_segments(trial)
    return {yaml.safe_load(spec.read_text())["hp"]["x"]
            for spec, segment in zip(specs, segments) if epoch in segment}


def _check_population_run(workspace: Path, epochs: int = R) -> dict[str, int]:
    """Every assertion common to pbt and pb2; returns epoch counts."""
    experiment = yaml.safe_load((workspace / "experiment.yaml").read_text())
    space = SearchSpace.from_json(experiment["space"])
    _, records = read_history(workspace / "history.json")
    assert len(records) == 4
    assert all(r.status == "completed" and r.observed_budget == epochs for r in records), \
        [(r.rec_id, r.status, r.failure_class, r.failure_message, r.observed_budget) for r in records]
    by_id = {r.rec_id: r for r in records}
    exploits = trained = 0
    for record in records:
        folder = Path(record.folder)
        space.validate(record.params)
        specs = _specs(folder)
        segments = _status_segments(folder)
        trained += sum(len(s) for s in segments)
        interval = max(1, -(-epochs // 9))  # pbt.perturbation_interval
        for spec_path, segment in zip(specs, segments):
            spec = yaml.safe_load(spec_path.read_text())
            if segment:  # each trainer run stops at the next perturbation boundary: no overshoot
                boundary = min(epochs, ((segment[0] - 1) // interval + 1) * interval)
                assert spec["train"]["num_epochs"] == boundary and segment[-1] <= boundary
            values = {name: spec["hp"][name.split(".", 1)[1]] for name in space.names()}
            space.validate(values)  # every segment's (perturbed) values inside the schema
            assert type(values["hp.y"]) is int and type(values["hp.x"]) is float
        lineage_path = folder / LINEAGE
        if not lineage_path.exists():
            assert record.parent is None
            continue
        lineage = json.loads(lineage_path.read_text())
        exploits += len(lineage)
        assert record.parent == lineage[-1]["parent"] and record.parent in by_id
        latest = lineage[-1]
        copy = Path(latest["path"])
        assert copy.parent == folder / "inherited" and copy.exists()
        parent_file = Path(latest["source"])
        assert parent_file.parent == Path(by_id[latest["parent"]].folder) / "results" / "train"
        # The pointer speaks epochs completed; TAO's file name the 0-based epoch.
        assert parent_file.name == copy.name == checkpoint_name(latest["epoch"], latest["step"])
        # The copy is the parent's model at that epoch (the fake trainer writes {epoch (0-based),
        # step, x}), even where the parent's own file was since retrained or pruned by retention.
        saved = json.loads(copy.read_text())
        assert (saved["epoch"] + 1, saved["step"]) == (latest["epoch"], latest["step"])
        parent_folder = Path(by_id[latest["parent"]].folder)
        assert saved["x"] in _xs_at_epoch(parent_folder, latest["epoch"])
        if parent_file.exists() and parent_file.stat().st_mtime <= latest["time"]:
            assert copy.read_bytes() == parent_file.read_bytes()
        resumed = [i for i, p in enumerate(specs)
                   if yaml.safe_load(p.read_text())["train"]["resume_training_checkpoint_path"] == str(copy)]
        assert resumed, "the child resumed from the copy in its own folder"
        first = resumed[-1]  # the latest exploit: an earlier one may have used the same file name
        assert segments[first] and segments[first][0] == latest["epoch"] + 1
        resumed_spec = yaml.safe_load(specs[first].read_text())
        assert resumed_spec["hp"]["x"] == latest["params"]["hp.x"]
    assert exploits >= 1, "a 4-member population exploits in 4 perturbation steps"
    return {"epochs_trained": trained, "full_budget_epochs": 4 * epochs, "exploits": exploits}


@pytest.mark.usefixtures("ray_session")
def test_pbt_end_to_end(fake_skill, tmp_path):
    workspace = _run(fake_skill, tmp_path, "--algo", "pbt")
    counts = _check_population_run(workspace)
    print(f"pbt epochs: {counts}")
    doc = read_best_rec(workspace / "best_rec.json")
    _, records = read_history(workspace / "history.json")
    assert doc["best"]["observed_budget"] == R
    assert doc["best"]["score"] == max(r.score("val_miou") for r in records)
    assert Path(doc["best"]["checkpoint_uri"]).name.startswith(f"model_epoch_{R - 1:03d}_")


@pytest.mark.slow  # 22 s: pb2 shares pbt's exploit path (the default run keeps pbt's end to end)
@pytest.mark.usefixtures("ray_session")
def test_pb2_end_to_end_minimizing(fake_skill, tmp_path):
    # The same perturbation steps as the pbt run: at least one exploit, whose lineage, copy
    # and resumed segment are checked like pbt's (EngineSchedulerMixin).
    workspace = _run(fake_skill, tmp_path, "--algo", "pb2", "--metric", "val_loss",
                     "--direction", "min")
    counts = _check_population_run(workspace)
    print(f"pb2 epochs: {counts}")
    doc = read_best_rec(workspace / "best_rec.json")
    _, records = read_history(workspace / "history.json")
    assert doc["direction"] == "min" and doc["best"]["observed_budget"] == R
    assert doc["best"]["score"] == min(r.score("val_loss") for r in records)


@pytest.mark.usefixtures("ray_session")
def test_pbt_population_larger_than_the_slots_takes_turns(fake_skill, tmp_path):
    # 3 members, 2 slots (1 CPU each on the tests' 2-CPU Ray): members pause at their
    # perturbation steps and resume from their own checkpoints; no livelock.
    workspace = tmp_path / "ws"
    code = main(["run", "--skill-dir", str(fake_skill), "--workspace", str(workspace),
                 "--progress", "none", "--seed", "7", "--algo", "pbt", "--max-epochs", "4",
                 "--population-size", "3", "--cpus-per-trial", "1", "--set", "fake.epoch_s=0.3"])
    assert code == 0
    _, records = read_history(workspace / "history.json")
    assert len(records) == 3 and all(r.status == "completed" and r.observed_budget == 4
                                      for r in records)
    own = trained = 0
    for record in records:
        folder = Path(record.folder)
        trained += sum(len(s) for s in _status_segments(folder))
        for spec in _specs(folder):
            path = yaml.safe_load(spec.read_text())["train"]["resume_training_checkpoint_path"]
            own += bool(path) and Path(path).parent == folder / "results" / "train"
    assert own >= 1, "a paused member resumed from its own checkpoint"
    assert trained <= 2 * 3 * 4
    print(f"pbt 3 members on 2 slots: {trained} epochs for {3 * 4}")
