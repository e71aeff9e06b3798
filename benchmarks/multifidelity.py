#!/usr/bin/env python3
"""Search efficiency on multi-fidelity test functions: automl's algorithms vs stock Ray Tune / Optuna.

Problems (f to minimize; fidelity ``s = epoch / R``; regret = ``f(x_inc, 1) - f*``):

* ``hartmann6``: ``botorch.test_functions.multi_fidelity.AugmentedHartmann`` (6-D + fidelity;
  BoTorch's multi-fidelity variant of Hartmann-6, as used in its MFKG tutorial), ``f*`` =
  ``optimal_value`` (-3.32237);
* ``branin2``: ``botorch.test_functions.multi_fidelity.AugmentedBranin`` (2-D + fidelity, the
  augmented Branin of Wu et al. 2019, "Practical Multi-fidelity Bayesian Optimization for
  Hyperparameter Tuning"), ``f*`` = ``optimal_value`` (0.397887).

Both come from the package (no hand-typed function). One evaluation server per problem imports
botorch once and answers ``f(x, s)`` over a Unix socket (``multiprocessing.connection``, authkey)
in the benchmark's temporary folder: importing torch costs ~3 s per process, more than the
thousands of short trial processes of a run would otherwise spend on everything else. Every
method - automl's trainer processes, the Ray function trainables, the Optuna objective, random
search - asks that server, so all evaluate the same code.

Methods (same R = 27, eta = 3, 4 trials in flight, budget ``B`` epochs per experiment):

* ``automl:<algo>`` for random, bayesian, asha, hyperband, bohb, dehb, pbt: the real
  ``automl run`` path (``automl.cli.main`` in-process, one shared Ray session), trainer =
  ``mf_trainer.py`` (one process per trial segment, TAO contract, promotion = resume from the rung
  checkpoint), ``--metric objective --direction min``. MLflow is replaced by a no-op observer
  (as ``overhead.py``'s ``automl_nomlflow``): this measures search, not tracking.
* ``ray:asha``: ``ASHAScheduler`` (max_t R, grace 1, eta 3) + Tune's random search;
  ``ray:bohb``: ``HyperBandForBOHB`` + ``TuneBOHB`` (hpbandster/ConfigSpace);
  ``ray:pbt``: ``PopulationBasedTraining`` (same population and perturbation interval as
  automl's pbt); function trainables that report one epoch per ``tune.report`` with a checkpoint
  and resume from ``tune.get_checkpoint()`` (Ray's documented pattern), ``max_concurrent_trials=4``.
* ``optuna:tpe_hb``: ``TPESampler`` + ``HyperbandPruner(1, R, 3)``, ``study.optimize(n_jobs=4)``
  (4 threads in flight; pruned trials are not resumed - Optuna cannot).
* ``random``: plain random search, every configuration at full budget R, 4 in flight (threads).

Budget accounting: every epoch a method computes is one unit: a status line with an epoch
(automl: promotions resume, so resumed epochs are not re-counted; a retried or restarted trial's
epochs are), one ``tune.report`` (Ray), one objective step (Optuna/random). The events of an
experiment are ordered by the wall time at which each epoch's result was produced (the epoch
line's ``written_at`` in the trainer's ``timing.jsonl`` sidecar, report time); trials sleep ``--epoch-s`` per epoch so that concurrent trials'
epochs interleave roughly in proportion to their length. After the k-th event the **incumbent**
is the configuration with the best reported ``f(x, s)`` at the largest fidelity reached so far
(what automl's best_rec.json picks: largest budget observed, then best score); its regret is
``f(x_inc, 1) - f*``. The same rule is applied to every method.

Reported per (problem, method), over seeds: regret after B epochs (median, IQR); epochs to reach
the target regret (median, IQR; a run that never reaches it within B counts as > B); ratios of
the best automl multi-fidelity method to ``ray:bohb`` and ``random``, measured in the same run.
For random search the expected epochs to target is also computed exactly
(``R / P(regret(x) <= target)``, P estimated on 2^18 uniform points).

Usage::

    python benchmarks/multifidelity.py                 # full run: 10 seeds, 2 problems, all methods
    python benchmarks/multifidelity.py --quick         # 2 seeds (smoke)
    python benchmarks/multifidelity.py --render        # tables/plot from the saved JSON lines
    python benchmarks/multifidelity.py --methods automl:bohb,ray:bohb --seeds 3 --name try

Results (``--name``, default ``multifidelity``): ``results/<name>.jsonl`` (one line per finished
experiment; a rerun skips what is there, so an interrupted run resumes), ``<name>.json``
(summary), ``<name>.md`` (tables), ``<name>.png`` (regret vs budget). Workspaces: ``--work``
(default /tmp/automl-bench/multifidelity), never in the repository.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Client, Listener
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from skill_folder import write_skill  # noqa: E402

TRAINER = HERE / "mf_trainer.py"
RESULTS = HERE / "results"
R = 27
ETA = 3
SLOTS = 4  # --slots
METRIC = "objective"

# name -> (botorch class, search-space bounds of x (fidelity excluded), target regret)
PROBLEMS: dict[str, dict[str, Any]] = {
    "hartmann6": {"cls": "AugmentedHartmann", "bounds": [(0.0, 1.0)] * 6, "target": 1.0},
    "branin2": {"cls": "AugmentedBranin", "bounds": [(-5.0, 10.0), (0.0, 15.0)], "target": 0.5},
    # 3 design variables + 2 fidelity columns (both set to s), on Rosenbrock's usual [-2, 2]^3.
    "rosenbrock3": {"cls": "AugmentedRosenbrock", "kwargs": {"dim": 5}, "fidelities": 2,
                    "bounds": [(-2.0, 2.0)] * 3, "target": 1.0},
}
OURS = ("random", "bayesian", "asha", "hyperband", "bohb", "async_bohb", "dehb", "pbt")
OURS_MF = ("asha", "hyperband", "bohb", "async_bohb", "dehb", "pbt")
# The prior (schema defaults) of the benchmark's skill is the centre of the box (neutral);
# "<algo>@good" / "@bad" move it next to the optimum / to the worst corner, "@none" is --no-prior.
PRIORS = ("none", "good", "bad")
CORE = ("automl:asha", "automl:hyperband", "automl:bohb", "automl:async_bohb", "automl:dehb",
        "ray:bohb", "optuna:tpe_hb", "random")
METHODS = tuple(f"automl:{a}" for a in OURS) + tuple(
    f"automl:{a}@{p}" for a in ("bohb", "async_bohb") for p in PRIORS) + (
    "ray:asha", "ray:bohb", "ray:pbt", "optuna:tpe_hb", "random")


# ---------------------------------------------------------------------------------------------
# Evaluation server (one process per problem; the only place that imports botorch)
# ---------------------------------------------------------------------------------------------
def serve(problem: str, address: str, authkey_file: str) -> None:
    import torch
    from botorch.test_functions import multi_fidelity

    torch.set_num_threads(1)
    spec = PROBLEMS[problem]
    fn = getattr(multi_fidelity, spec["cls"])(**spec.get("kwargs", {}))
    extra = spec.get("fidelities", 1) - 1  # more fidelity columns: all follow s

    def full(points: list[list[float]]) -> list[list[float]]:
        return [[*p, *[p[-1]] * extra] for p in points]

    listener = Listener(address, family="AF_UNIX", authkey=Path(authkey_file).read_bytes())
    lock = threading.Lock()

    def handle(conn: Any) -> None:
        with conn:
            while True:
                try:
                    request = conn.recv()
                except (EOFError, OSError):
                    return
                if request == "optimizer":  # design variables of the first optimizer at s = 1
                    conn.send([float(v) for v in fn._optimizers[0][:len(spec["bounds"])]])
                    continue
                if request == "optimum":
                    optimizers = [list(map(float, o)) for o in getattr(fn, "_optimizers", [])]
                    at_full = [o for o in optimizers if o[-1] == 1.0]
                    with lock, torch.no_grad():
                        vals = fn.evaluate_true(torch.tensor(at_full, dtype=torch.double)).tolist() \
                            if at_full else []
                    conn.send(min([float(fn.optimal_value), *vals]))
                    continue
                try:
                    with lock, torch.no_grad():
                        X = torch.tensor(full(request), dtype=torch.double)
                        reply: Any = fn.evaluate_true(X).tolist()
                except Exception as exc:  # noqa: BLE001 - answered, so the client can raise it
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                conn.send(reply)

    print("ready", flush=True)
    while True:
        try:
            conn = listener.accept()
        except Exception:  # noqa: BLE001 - a client that failed authentication
            continue
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


class Evaluator:
    """Client side of the server (thread-safe: one connection per thread)."""

    def __init__(self, address: str, authkey: bytes) -> None:
        self.address, self.authkey = address, authkey
        self.local = threading.local()

    def __getstate__(self) -> dict[str, Any]:  # Ray ships it to the trainables' workers
        return {"address": self.address, "authkey": self.authkey}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["address"], state["authkey"])

    def __call__(self, points: list[list[float]]) -> list[float]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = Client(self.address, authkey=self.authkey)
        conn.send(points)
        reply = conn.recv()
        if isinstance(reply, dict):
            raise ValueError(f"evaluation server: {reply['error']} for {points[:1]}")
        return reply

    def optimizer(self) -> list[float]:
        with Client(self.address, authkey=self.authkey) as conn:
            conn.send("optimizer")
            return list(conn.recv())

    def optimum(self) -> float:
        with Client(self.address, authkey=self.authkey) as conn:
            conn.send("optimum")
            return float(conn.recv())


def start_servers(work: Path, problems: list[str]) -> tuple[dict[str, dict[str, str]], list[Any]]:
    work.mkdir(parents=True, exist_ok=True)
    keyfile = work / "authkey"
    keyfile.write_bytes(secrets.token_bytes(32))
    keyfile.chmod(0o600)
    info, procs = {}, []
    for problem in problems:
        address = str(work / f"{problem}.sock")
        Path(address).unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, __file__, "--serve", problem, "--address", address,
                                 "--authkey-file", str(keyfile)], stdout=subprocess.PIPE, text=True)
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"evaluation server for {problem} did not start")
        procs.append(proc)
        info[problem] = {"address": address, "authkey_file": str(keyfile)}
    return info, procs


# ---------------------------------------------------------------------------------------------
# The benchmark trainer's skill folder
# ---------------------------------------------------------------------------------------------
def prior_point(problem: str, kind: str, server: dict[str, str]) -> list[float]:
    """The benchmark skill's schema defaults: the centre (neutral), next to the optimum
    (``good``: the optimizer moved by 5 % of each range) or the worst corner of the box
    (``bad``: the largest f(x, 1) over the 2^d corners)."""
    import itertools

    bounds = PROBLEMS[problem]["bounds"]
    if kind in ("", "none"):
        return [(lo + hi) / 2 for lo, hi in bounds]
    evaluator = Evaluator(server["address"], Path(server["authkey_file"]).read_bytes())
    if kind == "good":
        best = evaluator.optimizer()
        return [min(max(x + 0.05 * (hi - lo), lo), hi) for x, (lo, hi) in zip(best, bounds)]
    corners = [list(c) for c in itertools.product(*bounds)]
    values = evaluator([[*c, 1.0] for c in corners])
    return corners[max(range(len(corners)), key=values.__getitem__)]


def make_skill(folder: Path, problem: str, server: dict[str, str], epoch_s: float,
               prior: str = "") -> Path:
    bounds = PROBLEMS[problem]["bounds"]
    names = [f"x{i}" for i in range(1, len(bounds) + 1)]
    centre = prior_point(problem, prior, server)
    schema = {
        "automl_default_parameters": [f"x.{n}" for n in names],
        "automl_disabled_parameters": [],
        "default": {},
        "type": "object",
        "properties": {
            "results_dir": {"type": "string", "default": ""},
            "x": {"type": "collection", "properties": {
                n: {"type": "float", "default": c, "minimum": lo, "maximum": hi,
                    "automl_enabled": True} for n, c, (lo, hi) in zip(names, centre, bounds)}},
            "train": {"type": "collection", "properties": {
                "num_epochs": {"type": "int", "default": R, "minimum": 1, "maximum": float("inf")},
                "checkpoint_interval": {"type": "int", "default": 1, "minimum": 1},
                "validation_interval": {"type": "int", "default": 1, "minimum": 1},
                "resume_training_checkpoint_path": {"type": "string", "default": ""},
                "results_dir": {"type": "string", "default": ""},
            }},
            "mf": {"type": "collection", "properties": {
                "address": {"type": "string", "default": ""},
                "authkey_file": {"type": "string", "default": ""},
                "max_epochs": {"type": "int", "default": R, "minimum": 1},
                "epoch_s": {"type": "float", "default": 0.0, "minimum": 0.0},
            }},
        },
    }
    template = {
        "results_dir": "",
        "x": dict(zip(names, centre)),
        "train": {"num_epochs": R, "checkpoint_interval": 1, "validation_interval": 1,
                  "resume_training_checkpoint_path": "", "results_dir": ""},
        "mf": {"address": server["address"], "authkey_file": server["authkey_file"],
               "max_epochs": R, "epoch_s": epoch_s},
    }
    return write_skill(folder, f"mf-{problem}-skill", schema, template,
                       f"{sys.executable} {TRAINER} train -e {{config_path}}")


# ---------------------------------------------------------------------------------------------
# Budgets: how many configurations each of automl's algorithms needs to spend B epochs
# ---------------------------------------------------------------------------------------------
def automl_settings(algo: str, budget: int) -> dict[str, int]:
    from automl.brackets import epochs_of, hyperband_brackets, rung_ladder

    if algo in ("random", "bayesian"):
        return {"max_recommendations": math.ceil(budget / R)}
    if algo == "pbt":
        return {"population_size": math.ceil(budget / R)}
    if algo in ("asha", "async_bohb"):  # ~3 epochs per configuration at R=27, eta=3;
        return {"max_recommendations": math.ceil(budget / 1.5)}  # generous: BudgetStop ends it
    rungs = rung_ladder(R, 1, ETA)
    n = 1
    while epochs_of(hyperband_brackets(len(rungs), ETA, n), rungs) < budget:
        n += 1
    return {"max_recommendations": n}


# ---------------------------------------------------------------------------------------------
# Runners: each returns events [(time, trial key, epoch, f(x, s), f(x, 1))] and a few counters
# ---------------------------------------------------------------------------------------------
class NullTracker:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


class BudgetStop:
    """automl observer: once the trainers computed ``budget`` epochs (status lines in the
    workspace), cancel the experiment the way Ctrl-C does (SIGINT -> the engine stops the trials
    gracefully). Only saves compute: what ran past the budget is cut off by the analysis anyway.
    Also counts the results the engine reported (``seen``): with sped-up epochs a trainer can
    run past the point where the scheduler pauses or replaces it (PBT) before it is stopped."""

    def __init__(self, budget: int, workspace: Path) -> None:
        self.budget, self.workspace, self.seen, self.fired = budget, workspace, 0, False

    def computed(self) -> int:
        total = 0
        for status in self.workspace.glob("trials/*/results/train/status.json"):
            total += status.read_bytes().count(b'"message": "Training loop in progress"')
        return total

    def trial_result(self, record: Any, result: dict[str, Any]) -> None:
        self.seen += 1
        if not self.fired and (self.seen >= self.budget or self.computed() >= self.budget):
            import signal

            self.fired = True
            os.kill(os.getpid(), signal.SIGINT)

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def run_automl(algo: str, problem: str, seed: int, budget: int, skill: Path, work: Path,
               no_prior: bool = False) -> dict[str, Any]:
    from automl import cli
    from automl.run import engine
    from automl.observers import tracking

    tracking.MlflowTracker = NullTracker  # cli._execute imports it from automl.observers.tracking at call time
    workspace = work / f"automl-{algo}-{problem}-{seed}{'-noprior' if no_prior else ''}"
    stop = BudgetStop(budget, workspace)
    real_execute = getattr(engine.execute, "__wrapped__", engine.execute)

    def execute(prepared: Any, observers: list[Any] | None = None, restore: bool = False) -> Any:
        return real_execute(prepared, observers=[*(observers or []), stop], restore=restore)

    execute.__wrapped__ = real_execute
    engine.execute = execute
    extra = automl_settings(algo, budget)
    argv = ["run", "--skill-dir", str(skill), "--algo", algo, "--metric", METRIC,
            "--direction", "min", "--max-epochs", str(R), "--reduction-factor", str(ETA),
            "--max-concurrent", str(SLOTS), "--cpus-per-trial", "1", "--progress", "none",
            "--workspace", str(workspace), "--seed", str(seed), "--stop-after-failures", "1000"]
    argv += ["--no-prior"] if no_prior else []
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    import contextlib
    import io

    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        code = cli.main(argv)
    if code != 0 and not (code == 130 and stop.fired):
        raise RuntimeError(f"automl run {algo} exited {code}: {log.getvalue()[-2000:]}")
    from automl.tao.lines import read_status
    from automl.tao.progress import runs
    from tao_status import timed_results

    events, segments, trials = [], 0, 0
    for status in sorted(workspace.glob("trials/*/results/train/status.json")):
        trials += 1
        segments += len(runs(read_status(status)))  # trainer processes (promotions resume)
        events += trial_events(status.parent, status.parent.parent.parent.name, timed_results)
    return {"events": events, "trials": trials, "segments": segments, "settings": extra,
            "stopped_at_budget": stop.fired, "results_reported": stop.seen}


def trial_events(train_dir: Path, key: str, timed_results) -> list[tuple]:
    """One event per epoch the trainer computed, read as the engine reads status.json
    (``automl.tao``: epochs completed) and timed by the trainer's sidecar (``tao_status``): a
    validated epoch gives ``(written_at, key, epochs, f(x, s), f(x, 1))``; an epoch that did not
    validate (``train.validation_interval`` > 1) still costs one unit but reports nothing, as
    ``(written_at, key, -1, inf, inf)``, which never becomes the incumbent."""
    out, scored = [], None
    for written_at, result in timed_results(train_dir):
        if result.validation and result.metric(METRIC) is not None:
            scored = (written_at, key, result.epochs, result.metric(METRIC),
                      result.metric("f_full"))
        elif not result.validation:  # "Train metrics generated.": one per completed epoch
            if scored is not None and scored[2] == result.epochs:
                out.append(scored)
            else:
                out.append((written_at, key, -1, math.inf, math.inf))
            scored = None
    return out + ([scored] if scored is not None else [])


def _ray_trainable(evaluator: Evaluator, bounds: list[tuple[float, float]], epoch_s: float,
                   checkpoint_at: set[int]):
    def trainable(config: dict[str, Any]) -> None:
        import tempfile

        from ray import tune

        start = 0
        checkpoint = tune.get_checkpoint()
        if checkpoint:
            with checkpoint.as_directory() as folder:
                start = json.loads((Path(folder) / "state.json").read_text())["epoch"]
        # PBT's explore multiplies values by 0.8 / 1.2 without clipping: clip to the domain.
        x = [min(max(config[f"x{i}"], lo), hi) for i, (lo, hi) in enumerate(bounds, 1)]
        for epoch in range(start + 1, R + 1):
            time.sleep(epoch_s)
            value, full = evaluator([[*x, epoch / R], [*x, 1.0]])
            metrics = {METRIC: value, "f_full": full, "epoch": epoch, "t": time.time()}
            if epoch not in checkpoint_at:  # where the scheduler can pause (rungs, PBT steps)
                tune.report(metrics)
                continue
            with tempfile.TemporaryDirectory() as folder:
                (Path(folder) / "state.json").write_text(json.dumps({"epoch": epoch}))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
    return trainable


def run_ray(kind: str, problem: str, seed: int, budget: int, server: dict[str, str], work: Path,
            epoch_s: float) -> dict[str, Any]:
    from ray import tune
    from ray.tune import Callback, Stopper

    bounds = PROBLEMS[problem]["bounds"]
    evaluator = Evaluator(server["address"], Path(server["authkey_file"]).read_bytes())
    space = {f"x{i}": tune.uniform(lo, hi) for i, (lo, hi) in enumerate(bounds, 1)}
    events: list[tuple] = []

    class Collect(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            events.append((result["t"], trial.trial_id, int(result["epoch"]), result[METRIC],
                           result["f_full"]))

    class Budget(Stopper):
        def __init__(self) -> None:
            self.seen = 0

        def __call__(self, trial_id, result) -> bool:
            self.seen += 1
            return int(result["epoch"]) >= R

        def stop_all(self) -> bool:
            return self.seen >= budget

    search_alg, scheduler, num_samples = None, None, budget  # every trial runs >= 1 epoch
    interval = R
    if kind == "asha":
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.basic_variant import BasicVariantGenerator

        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=R, grace_period=1,
                                  reduction_factor=ETA)
        search_alg = BasicVariantGenerator(random_state=seed)
    elif kind == "bohb":
        from ray.tune.schedulers import HyperBandForBOHB
        from ray.tune.search.bohb import TuneBOHB

        scheduler = HyperBandForBOHB(time_attr="training_iteration", max_t=R, reduction_factor=ETA)
        search_alg = TuneBOHB(seed=seed)
    elif kind == "pbt":
        from ray.tune.schedulers import PopulationBasedTraining
        from ray.tune.search.basic_variant import BasicVariantGenerator

        from automl.algorithms.pbt import QUANTILE, RESAMPLE_PROBABILITY

        num_samples = math.ceil(budget / R)
        interval = max(1, math.ceil(R / 9))  # automl's pbt.perturbation_interval
        scheduler = PopulationBasedTraining(
            time_attr="training_iteration", perturbation_interval=interval,
            hyperparam_mutations=dict(space), quantile_fraction=QUANTILE,
            resample_probability=RESAMPLE_PROBABILITY, log_config=False)
        search_alg = BasicVariantGenerator(random_state=seed)
    else:
        raise ValueError(kind)
    from automl.brackets import rung_ladder

    checkpoint_at = set(rung_ladder(R, 1, ETA)) | set(range(interval, R + 1, interval))
    trainable = tune.with_resources(_ray_trainable(evaluator, bounds, epoch_s, checkpoint_at),
                                    {"cpu": 1})
    tuner = tune.Tuner(
        trainable, param_space=space,
        tune_config=tune.TuneConfig(metric=METRIC, mode="min", search_alg=search_alg,
                                    scheduler=scheduler, num_samples=num_samples,
                                    max_concurrent_trials=SLOTS, reuse_actors=True),
        run_config=tune.RunConfig(name=f"ray-{kind}-{problem}-{seed}", storage_path=str(work),
                                  stop=Budget(), callbacks=[Collect()], verbose=0,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
    )
    grid = tuner.fit()
    return {"events": events, "trials": len(grid), "segments": None, "settings": {}}


def _thread_pool_search(problem: str, seed: int, budget: int, server: dict[str, str],
                        epoch_s: float, optuna_hb: bool) -> dict[str, Any]:
    """optuna:tpe_hb (TPESampler + HyperbandPruner) or random (every trial at R), 4 threads."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bounds = PROBLEMS[problem]["bounds"]
    evaluator = Evaluator(server["address"], Path(server["authkey_file"]).read_bytes())
    events: list[tuple] = []
    lock = threading.Lock()
    if optuna_hb:
        sampler = optuna.samplers.TPESampler(seed=seed)
        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=R, reduction_factor=ETA)
    else:
        sampler, pruner = optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner()
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)

    def objective(trial: Any) -> float:
        x = [trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds, 1)]
        value = math.inf
        for epoch in range(1, R + 1):
            with lock:
                if len(events) >= budget:
                    study.stop()
                    raise optuna.TrialPruned()
            time.sleep(epoch_s)
            value, full = evaluator([[*x, epoch / R], [*x, 1.0]])
            with lock:
                events.append((time.time(), trial.number, epoch, value, full))
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study.optimize(objective, n_trials=10_000, n_jobs=SLOTS,
                   callbacks=[lambda s, t: s.stop() if len(events) >= budget else None])
    return {"events": events, "trials": len(study.trials), "segments": None, "settings": {}}


# ---------------------------------------------------------------------------------------------
# Trajectories
# ---------------------------------------------------------------------------------------------
def trajectory(events: list[tuple], optimum: float) -> list[tuple[int, float]]:
    """[(epochs spent, regret of the incumbent)] at every change (see the module doc)."""
    out: list[tuple[int, float]] = []
    best_epoch, best_value, regret = -1, math.inf, None
    for k, (_, _, epoch, value, full) in enumerate(sorted(events, key=lambda e: e[0]), 1):
        if epoch > best_epoch or (epoch == best_epoch and value < best_value):
            best_epoch, best_value = epoch, value
            new = max(0.0, full - optimum)
            if new != regret:
                regret = new
                out.append((k, regret))
    return out


def regret_at(traj: list[tuple[int, float]], budget: int) -> float | None:
    value = None
    for k, regret in traj:
        if k > budget:
            break
        value = regret
    return value


def epochs_to(traj: list[tuple[int, float]], target: float) -> int | None:
    return next((k for k, regret in traj if regret <= target), None)


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------
def init_ray() -> None:
    from automl.run.engine import set_ray_env

    # Tune's experiment-state save period: automl sets 0 (save at every change, for crash
    # resume); this benchmark never resumes a Tune run, so Tune's own default throttle (10 s)
    # saves driver CPU on this 2-core box. It does not change what any searcher sees.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "10")
    set_ray_env()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    ray.init(address="local", num_cpus=SLOTS, include_dashboard=False, log_to_driver=False,
             logging_level="WARNING", configure_logging=True)


def claim(folder: Path, problem: str, method: str, seed: int) -> bool:
    """Several benchmark processes can share one results file: each experiment is claimed by
    creating its file (O_EXCL) first. A claim left by a killed process is removed by hand."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        (folder / f"{problem}.{method.replace(':', '_')}.{seed}").open("x").close()
        return True
    except FileExistsError:
        return False


def run_all(args: argparse.Namespace) -> None:
    work = Path(args.work)
    out = RESULTS / f"{args.name}.jsonl"
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            row = json.loads(line)
            done.add((row["problem"], row["method"], row["seed"]))
    problems, methods = args.problems.split(","), args.methods.split(",")
    # The methods the targets compare (automl's bracket family, Ray's BOHB, random search) get all
    # their seeds first, so a run cut short by the clock still has complete rows for those.
    core = [m for m in methods if m in CORE]
    rest = [m for m in methods if m not in CORE]
    todo = [(p, m, s) for group in (core, rest) for s in range(args.seeds) for p in problems
            for m in group if (p, m, s) not in done]
    print(f"{len(todo)} experiments to run ({len(done)} already in {out})", flush=True)
    if not todo:
        return
    servers, procs = start_servers(work / "servers", problems)
    try:
        init_ray()
        optima = {p: Evaluator(servers[p]["address"], Path(servers[p]["authkey_file"]).read_bytes())
                  .optimum() for p in problems}
        skills = {p: make_skill(work / "skills" / p, p, servers[p], args.epoch_s) for p in problems}
        t_start = time.time()
        for i, (problem, method, seed) in enumerate(todo, 1):
            if args.claims and not claim(Path(args.claims), problem, method, seed):
                continue  # another benchmark process runs (or ran) this one
            budget = args.budget_r * R
            t0 = time.time()
            family, _, name = method.partition(":")
            exp_work = work / "runs"
            if family == "automl":
                algo, _, prior = name.partition("@")
                skill = skills[problem] if prior in ("", "none") else make_skill(
                    work / "skills" / f"{problem}-{prior}", problem, servers[problem],
                    args.epoch_s, prior)
                res = run_automl(algo, problem, seed, budget, skill, exp_work,
                                 no_prior=prior == "none")
            elif family == "ray":
                res = run_ray(name, problem, seed, budget, servers[problem], exp_work, args.epoch_s)
            elif method == "optuna:tpe_hb":
                res = _thread_pool_search(problem, seed, budget, servers[problem], args.epoch_s, True)
            elif method == "random":
                res = _thread_pool_search(problem, seed, budget, servers[problem], args.epoch_s, False)
            else:
                raise SystemExit(f"unknown method {method}")
            wall = time.time() - t0
            traj = trajectory(res["events"], optima[problem])
            row = {"problem": problem, "method": method, "seed": seed, "budget": budget, "R": R,
                   "slots": SLOTS,
                   "results_reported": res.get("results_reported"),
                   "epoch_s": args.epoch_s, "stopped_at_budget": res.get("stopped_at_budget"),
                   "optimum": optima[problem], "epochs": len(res["events"]),
                   "trials": res["trials"], "segments": res["segments"],
                   "settings": res["settings"], "wall_s": round(wall, 2), "trajectory": traj,
                   "load1": os.getloadavg()[0]}
            RESULTS.mkdir(parents=True, exist_ok=True)
            with out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(f"[{i}/{len(todo)} {time.time() - t_start:6.0f}s] {problem:9s} {method:16s} "
                  f"seed {seed}: {len(res['events'])} epochs, {res['trials']} trials, "
                  f"regret@B {regret_at(traj, budget):.4g}, wall {wall:.1f}s", flush=True)
            if not args.keep:
                import shutil

                shutil.rmtree(exp_work, ignore_errors=True)
    finally:
        for proc in procs:
            proc.terminate()


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------
def quantiles(values: list[float]) -> tuple[float, float, float]:
    """Median, Q1, Q3 (linear interpolation; inf = censored, and a quantile that touches it is inf)."""
    values = sorted(values)

    def q(p: float) -> float:
        pos = p * (len(values) - 1)
        lo, frac = int(pos), pos - int(pos)
        if frac == 0:
            return values[lo]
        a, b = values[lo], values[lo + 1]
        return math.inf if math.isinf(b) else a + frac * (b - a)

    return q(0.5), q(0.25), q(0.75)


def random_regrets(problem: str, optimum: float, server: Evaluator, n: int = 2 ** 18) -> list[float]:
    """Sorted regrets f(x, 1) - f* of ``n`` uniform configurations (seeded): random search's law."""
    import random as _random

    rng = _random.Random(0)
    bounds = PROBLEMS[problem]["bounds"]
    out: list[float] = []
    for _ in range(n // 4096):
        points = [[rng.uniform(lo, hi) for lo, hi in bounds] + [1.0] for _ in range(4096)]
        out += [v - optimum for v in server(points)]
    return sorted(out)


def target_for(regrets: list[float], median_epochs: int) -> float:
    """The regret that random search (full budget R per configuration) reaches with probability
    1/2 within ``median_epochs``: the ``1 - 0.5**(R / median_epochs)`` quantile (2 digits)."""
    p = 1 - 0.5 ** (R / median_epochs)
    value = regrets[min(len(regrets) - 1, int(p * len(regrets)))]
    return float(f"{value:.2g}")


def random_exact(regrets: list[float], target: float) -> dict[str, Any]:
    """Random search's epochs to ``target``: expected R / p and median R * ceil(ln .5 / ln(1-p))."""
    import bisect

    p = bisect.bisect_right(regrets, target) / len(regrets)
    if p == 0:
        return {"p": 0.0, "expected_epochs": None, "median_epochs": None}
    median = math.ceil(math.log(0.5) / math.log1p(-p)) if p < 1 else 1
    return {"p": p, "expected_epochs": R / p, "median_epochs": R * median}


def ratio(a: float, b: float, budget: int) -> dict[str, Any]:
    """a / b for epochs-to-target medians; a median that is > B (censored) gives a bound."""
    if math.isfinite(a) and math.isfinite(b):
        return {"ratio": a / b, "bound": "="}
    if math.isfinite(a):
        return {"ratio": a / budget, "bound": "<"}
    if math.isfinite(b):
        return {"ratio": budget / b, "bound": ">"}
    return {"ratio": None, "bound": "n/a"}


TARGETS = {"target": 1, "hard_target": 10}
REFERENCES = ("ray:bohb", "optuna:tpe_hb", "random")  # random search's median epochs = 1 x B, 10 x B


def render(args: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in (RESULTS / f"{args.name}.jsonl").read_text().splitlines()]
    global R, SLOTS
    R, SLOTS = rows[0]["R"], rows[0].get("slots", 4)
    problems = [p for p in PROBLEMS if any(r["problem"] == p for r in rows)]
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    servers, procs = start_servers(Path(args.work) / "servers-render", problems)
    summary: dict[str, Any] = {"R": R, "eta": ETA, "slots": SLOTS, "problems": {}}
    try:
        for p in problems:
            mine = [r for r in rows if r["problem"] == p]
            budget = min(r["budget"] for r in mine)
            optimum = mine[0]["optimum"]
            server = Evaluator(servers[p]["address"], Path(servers[p]["authkey_file"]).read_bytes())
            regrets = random_regrets(p, optimum, server)
            targets = {name: target_for(regrets, k * budget) for name, k in TARGETS.items()}
            per: dict[str, Any] = {}
            for m in methods:
                runs = [r for r in mine if r["method"] == m]
                if not runs:
                    continue
                regrets_b = [regret_at(r["trajectory"], budget) for r in runs]
                med, q1, q3 = quantiles([math.inf if v is None else v for v in regrets_b])
                entry = {"seeds": len(runs), "regret_at_B": {"median": med, "q1": q1, "q3": q3},
                         "epochs_used": statistics.median(r["epochs"] for r in runs),
                         "trials": statistics.median(r["trials"] for r in runs),
                         "segments": (statistics.median(r["segments"] for r in runs)
                                      if runs[0]["segments"] is not None else None),
                         "results_reported": (statistics.median(r["results_reported"] for r in runs)
                                              if runs[0].get("results_reported") is not None else None),
                         "wall_s": statistics.median(r["wall_s"] for r in runs)}
                for name, target in targets.items():
                    reach = [epochs_to([t for t in r["trajectory"] if t[0] <= budget], target)
                             for r in runs]
                    rmed, rq1, rq3 = quantiles([math.inf if v is None else v for v in reach])
                    entry[f"epochs_to_{name}"] = {"median": rmed, "q1": rq1, "q3": rq3,
                                                  "reached": sum(v is not None for v in reach)}
                per[m] = entry
            ours = [m for m in per if m.startswith("automl:") and m.split(":")[1] in OURS_MF]
            best = min(ours, key=lambda m: (per[m]["epochs_to_target"]["median"],
                                            per[m]["regret_at_B"]["median"])) if ours else None
            randoms = {name: random_exact(regrets, t) for name, t in targets.items()}
            # Every automl multi-fidelity method (prior variants included) against the references,
            # medians over the seeds both have run (paired: a cell may have fewer seeds).
            def paired(m: str, ref: str, value) -> tuple[float, float, int]:
                seeds = ({r["seed"] for r in mine if r["method"] == m}
                         & {r["seed"] for r in mine if r["method"] == ref})
                if not seeds:
                    return math.nan, math.nan, 0
                a = [value(r) for r in mine if r["method"] == m and r["seed"] in seeds]
                b = [value(r) for r in mine if r["method"] == ref and r["seed"] in seeds]
                return quantiles(a)[0], quantiles(b)[0], len(seeds)

            def reach(name: str):
                return lambda r: epochs_to([t for t in r["trajectory"] if t[0] <= budget],
                                           targets[name]) or math.inf

            def final(r: dict[str, Any]) -> float:
                value = regret_at(r["trajectory"], budget)
                return math.inf if value is None else value

            comparisons: dict[str, Any] = {}
            for m in per:
                if not m.startswith("automl:") or m.split(":")[1].split("@")[0] not in OURS_MF:
                    continue
                mine_c = comparisons[m] = {}
                # prior variants (and the neutral default) also against --no-prior
                no_prior = f"automl:{m.split(':')[1].split('@')[0]}@none"
                refs = REFERENCES + ((no_prior,) if no_prior in per and no_prior != m else ())
                for name in targets:
                    for ref in refs:
                        a, b, n = paired(m, ref, reach(name))
                        if n:
                            mine_c[f"epochs_to_{name} vs {ref}"] = {**ratio(a, b, budget), "seeds": n}
                    if randoms[name]["median_epochs"]:
                        mine_c[f"epochs_to_{name} vs random (exact median)"] = ratio(
                            per[m][f"epochs_to_{name}"]["median"], randoms[name]["median_epochs"],
                            budget)
                for ref in refs:
                    a, b, n = paired(m, ref, final)
                    if n:
                        mine_c[f"regret_at_B vs {ref}"] = {
                            "ratio": a / b if b > 0 else None, "bound": "=", "seeds": n}
            summary["problems"][p] = {"budget": budget, "optimum": optimum, "targets": targets,
                                      "random_search_exact": randoms, "methods": per,
                                      "best_automl_multifidelity": best, "comparisons": comparisons}
    finally:
        for proc in procs:
            proc.terminate()

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    (RESULTS / f"{args.name}.json").write_text(json.dumps(clean(summary), indent=1) + "\n")
    md = write_markdown(summary)
    (RESULTS / f"{args.name}.md").write_text(md)
    plot(rows, summary, RESULTS / f"{args.name}.png")
    print(md)


def _fmt(v: Any, budget: int | None = None) -> str:
    if v is None or (isinstance(v, float) and math.isinf(v)):
        return f"> {budget}" if budget else "–"
    return f"{v:.3g}" if isinstance(v, float) and v < 1000 else f"{v:.0f}"


def _ratio_text(v: dict[str, Any]) -> str:
    if v["ratio"] is None:
        return "n/a (both > B)"
    seeds = f" ({v['seeds']} paired seeds)" if "seeds" in v else ""
    return f"{'' if v['bound'] == '=' else v['bound'] + ' '}{v['ratio']:.2f}×{seeds}"


def write_markdown(summary: dict[str, Any]) -> str:
    lines = [f"# Multi-fidelity search efficiency (R = {R} epochs, eta = {ETA}, {SLOTS} trials in flight)",
             "", "Generated by `benchmarks/multifidelity.py` (see its docstring and benchmarks/README.md).",
             "Regret = f(x_inc, 1) - f*; epochs = epochs computed (status lines / reports), in the "
             "order they were produced. `> B`: not reached within the budget (censored).", ""]
    for p, data in summary["problems"].items():
        B, t = data["budget"], data["targets"]
        seeds = max(v["seeds"] for v in data["methods"].values())
        lines += [f"## {p}: budget B = {B} epochs ({B // R} × R), up to {seeds} seeds", "",
                  f"Targets: regret ≤ **{t['target']}** (random search's exact median budget = B) "
                  f"and ≤ **{t['hard_target']}** (= 10 B).", "",
                  f"| method | seeds | regret after B: median [IQR] | epochs to {t['target']}: median [IQR] "
                  f"| reached | epochs to {t['hard_target']}: median | reached | trials | trainer starts | wall s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for m, v in data["methods"].items():
            r, e, h = v["regret_at_B"], v["epochs_to_target"], v["epochs_to_hard_target"]
            lines.append(f"| {m} | {v['seeds']} | {_fmt(r['median'])} [{_fmt(r['q1'])}, {_fmt(r['q3'])}] "
                         f"| {_fmt(e['median'], B)} [{_fmt(e['q1'], B)}, {_fmt(e['q3'], B)}] "
                         f"| {e['reached']}/{v['seeds']} | {_fmt(h['median'], B)} | {h['reached']}/{v['seeds']} "
                         f"| {v['trials']:.0f} | {_fmt(v['segments']) if v['segments'] is not None else '–'} "
                         f"| {v['wall_s']:.1f} |")
        lines.append("")
        for name, rnd in data["random_search_exact"].items():
            lines.append(f"* random search, exact: P(regret ≤ {t[name]}) = {rnd['p']:.2e} per configuration "
                         f"→ expected {_fmt(rnd['expected_epochs'])} epochs, median "
                         f"{_fmt(rnd['median_epochs'])}.")
        best = data.get("best_automl_multifidelity")
        if best:
            lines.append(f"* best automl multi-fidelity method (fewest median epochs to {t['target']}, "
                         f"then lowest median regret after B): **{best}**.")
        for method, comparisons in data["comparisons"].items():
            lines.append(f"* **{method}** as a ratio of the reference (medians, measured in this run; "
                         f"`<`/`>`: bound from a median that is > B):")
            for key, v in comparisons.items():
                label = (key.replace("epochs_to_hard_target", f"epochs to regret {t['hard_target']}")
                         .replace("epochs_to_target", f"epochs to regret {t['target']}")
                         .replace("regret_at_B", "regret after B"))
                lines.append(f"  * {label}: {_ratio_text(v)}")
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(summary["problems"])
    fig, axes = plt.subplots(1, len(problems), figsize=(7 * len(problems), 5), squeeze=False)
    for ax, p in zip(axes[0], problems):
        B = summary["problems"][p]["budget"]
        grid = list(range(R, B + 1, max(1, R // 3)))
        for m in summary["problems"][p]["methods"]:
            runs = [r for r in rows if r["problem"] == p and r["method"] == m]
            curves = [[regret_at(r["trajectory"], b) for b in grid] for r in runs]
            med, lo, hi = [], [], []
            for i in range(len(grid)):
                col = [c[i] for c in curves if c[i] is not None]
                if len(col) < len(curves) / 2 or not col:
                    med.append(math.nan); lo.append(math.nan); hi.append(math.nan)  # noqa: E702
                    continue
                col += [math.inf] * (len(curves) - len(col))
                a, b, c = quantiles(col)
                med.append(a); lo.append(b); hi.append(c)  # noqa: E702
            style = "-" if m.startswith("automl:") else "--"
            line, = ax.plot(grid, med, style, label=m)
            ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.1)
        for target in summary["problems"][p]["targets"].values():
            ax.axhline(target, color="k", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_xlabel("epochs computed (budget)")
        ax.set_ylabel("regret of the incumbent, median (IQR shaded)")
        ax.set_title(f"{p} ({len({r['seed'] for r in rows if r['problem'] == p})} seeds)")
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds (smoke run)")
    parser.add_argument("--render", action="store_true", help="only re-render from the JSON lines")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--max-epochs", type=int, default=9, help="R, the full budget of one trial")
    parser.add_argument("--budget-r", type=int, default=8, help="budget per experiment, in units of R")
    parser.add_argument("--epoch-s", type=float, default=0.02, help="simulated seconds per epoch")
    parser.add_argument("--slots", type=int, default=4, help="trials in flight")
    parser.add_argument("--claims", help="folder of claim files shared by processes that "
                        "append to the same results file side by side")
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--name", default="multifidelity")
    parser.add_argument("--work", default="/tmp/automl-bench/multifidelity")
    parser.add_argument("--keep", action="store_true", help="keep the experiment workspaces")
    parser.add_argument("--jobs", type=int, default=1, help="problems run side by side (processes)")
    parser.add_argument("--no-render", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--authkey-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global R, SLOTS
    R, SLOTS = args.max_epochs, args.slots
    if args.serve:
        serve(args.serve, args.address, args.authkey_file)
        return
    if args.quick:
        args.seeds = min(args.seeds, 2)
        if args.name == "multifidelity":
            args.name = "multifidelity-quick"
    if not args.render:
        problems = args.problems.split(",")
        if args.jobs > 1 and len(problems) > 1:
            # One process (own Ray session, own evaluation server) per problem, side by side.
            children = []
            for problem in problems:
                argv = [sys.executable, __file__, "--problems", problem, "--no-render",
                        "--work", str(Path(args.work) / problem), "--name", args.name,
                        "--seeds", str(args.seeds), "--max-epochs", str(R),
                        "--budget-r", str(args.budget_r), "--epoch-s", str(args.epoch_s),
                        "--slots", str(SLOTS),
                        "--methods", args.methods] + (["--keep"] if args.keep else [])
                children.append(subprocess.Popen(argv))
            codes = [child.wait() for child in children]
            if any(codes):
                print(f"a problem's run failed: exit codes {codes}", file=sys.stderr)
        else:
            run_all(args)
    if not args.no_render:
        render(args)


if __name__ == "__main__":
    main()
