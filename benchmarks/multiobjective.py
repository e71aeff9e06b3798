#!/usr/bin/env python3
"""Multi-objective search at the same epoch budget: MO-ASHA / MO-Hyperband (+ multi-objective
TPE) against full-budget Optuna MOTPE, NSGA-II and a TAO-style weighted-sum search.

Problem (``accuracy_latency``, synthetic, documented in benchmarks/README.md): a segmentation-like
trade-off of validation accuracy (max) against inference latency (min) over 5 parameters, one of
them an architecture categorical:

* ``arch`` in b0..b5 (capacity ``c`` = 0..5), ``img_size`` in {256, 384, 512}, ``lr`` in
  [1e-4, 1e-1] (log), ``weight_decay`` in [1e-6, 1e-2] (log), ``dropout`` in [0, 0.5];
* ``latency_ms = [2, 3.5, 6, 10, 16, 25][c] * (img_size / 256)^2`` (does not depend on training);
* accuracy after the full budget R: ``0.55 + 0.3 (1 - exp(-0.6 (c + 1))) + 0.03 log2(img/256)``
  minus ``0.1 (log10 lr - (-2.3 - 0.25 c))^2`` (larger models want smaller steps), minus
  ``0.01 (log10 wd + 4)^2``, minus ``0.4 (dropout - 0.05 c)^2``;
* after ``e`` of R epochs: ``acc_R * (1 - exp(-e / tau)) / (1 - exp(-R / tau))`` with
  ``tau = 2 (1 + 0.1 c) (img/256)^0.3 (1e-2 / lr)^0.1``: bigger models, larger images and small
  learning rates converge later, so a low-fidelity ranking is informative but biased against
  the accurate, slow configurations (Spearman correlation with the accuracy at R over uniform
  configurations: 0.37 after 1 epoch, 0.71 after 3); each reported accuracy has Gaussian noise
  (sd 0.005).

Budget and accounting (as ``suite.py``): R = 9 epochs, eta = 3, B = 20 R = 180 epochs per run
(20 full-budget trials, TAO's default number of recommendations), 2 trials in flight, one time
unit per epoch; a promoted trial resumes from its pause. After B the **front** is chosen as
automl's best_rec.json does: among the trials observed at the largest budget any trial reached,
the non-dominated ones by their reported values; its **hypervolume** is computed from those
trials' noise-free values at R (accuracy) and their latency, against the reference point
(accuracy 0.6, latency 40 ms), accuracy maximized, latency minimized (the area between the
front and that point).

Methods:

* ``automl:asha``, ``automl:async_bohb``, ``automl:bohb``: the real plans
  (:func:`automl.algorithms.build_plan` with two objectives: the MO-ASHA / MO-Hyperband
  scheduler and the searcher Ray Tune would drive), driven by this simulator; ``asha`` proposes
  at random, ``async_bohb``/``bohb`` with the multi-objective TPE (the template's configuration,
  the middle of every range, first);
* ``optuna:motpe``: ``TPESampler(multivariate, group, constant_liar, 10 start-up)`` on a
  two-objective study (what ``--algo bayesian`` builds), every trial at R;
* ``optuna:nsga2``: ``NSGAIISampler(population_size = nsga2.population_size(20) = 5)`` (what
  ``--algo nsga2`` builds), every trial at R;
* ``optuna:weighted``: TPE as ``optuna:motpe`` on TAO's weighted sum
  ``accuracy - latency_ms / 100`` (weights 1, latency scale 100 ms), every trial at R;
* ``random``: every configuration at R.

Usage: ``nice -n 10 python benchmarks/multiobjective.py --seeds 5`` (resumable: one JSON line
per (method, seed) in ``results/multiobjective.jsonl``; ``--render`` rewrites
``results/multiobjective.md``/``.json`` from it).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from suite import PlanAdapter, automl_space  # noqa: E402
from suite_problems import centre, sample  # noqa: E402

R = 9
ETA = 3
SLOTS = 2
BUDGET = 20 * R
NOISE = 0.005
REFERENCE = (0.6, 40.0)
OUT = HERE / "results"
AUTOML = ("automl:asha", "automl:async_bohb", "automl:bohb")
FULL = ("optuna:motpe", "optuna:nsga2", "optuna:weighted", "random")
METHODS = AUTOML + FULL
BASE_LATENCY = (2.0, 3.5, 6.0, 10.0, 16.0, 25.0)

PARAMS: list[dict[str, Any]] = [
    {"name": "arch", "kind": "cat", "choices": ["b0", "b1", "b2", "b3", "b4", "b5"]},
    {"name": "img_size", "kind": "cat", "choices": [256, 384, 512]},
    {"name": "lr", "kind": "float", "low": 1e-4, "high": 1e-1, "log": True},
    {"name": "weight_decay", "kind": "float", "low": 1e-6, "high": 1e-2, "log": True},
    {"name": "dropout", "kind": "float", "low": 0.0, "high": 0.5},
]


class Problem:
    """What ``suite.automl_space`` reads (``params``) and the two objectives."""

    params = PARAMS

    @staticmethod
    def latency(config: dict[str, Any]) -> float:
        c = int(str(config["arch"])[1:])
        return BASE_LATENCY[c] * (int(config["img_size"]) / 256) ** 2

    @staticmethod
    def accuracy(config: dict[str, Any], epoch: int) -> float:
        c, img = int(str(config["arch"])[1:]), int(config["img_size"])
        lr, wd, dropout = float(config["lr"]), float(config["weight_decay"]), float(config["dropout"])
        final = (0.55 + 0.3 * (1 - math.exp(-0.6 * (c + 1))) + 0.03 * math.log2(img / 256)
                 - 0.1 * (math.log10(lr) - (-2.3 - 0.25 * c)) ** 2
                 - 0.01 * (math.log10(wd) + 4) ** 2 - 0.4 * (dropout - 0.05 * c) ** 2)
        tau = 2.0 * (1 + 0.1 * c) * (img / 256) ** 0.3 * (1e-2 / lr) ** 0.1
        return final * (1 - math.exp(-epoch / tau)) / (1 - math.exp(-R / tau))


def hypervolume(points: list[tuple[float, float]]) -> float:
    """2-D hypervolume of (accuracy max, latency min) points against :data:`REFERENCE`."""
    acc_ref, lat_ref = REFERENCE
    inside = sorted((lat, acc) for acc, lat in points if acc > acc_ref and lat < lat_ref)
    volume, best_acc = 0.0, acc_ref
    for i, (lat, acc) in enumerate(inside):
        best_acc = max(best_acc, acc)
        right = inside[i + 1][0] if i + 1 < len(inside) else lat_ref
        volume += (right - lat) * (best_acc - acc_ref)
    return volume


def front_hypervolume(last: dict[Any, tuple[int, dict[str, Any], float]]) -> float:
    """The front at the largest budget observed (reported values), scored noise-free at R."""
    if not last:
        return 0.0
    top = max(epoch for epoch, _, _ in last.values())
    at_top = [(config, acc) for epoch, config, acc in last.values() if epoch == top]
    members = [config for config, acc in at_top
               if not any(a >= acc and Problem.latency(c) <= Problem.latency(config)
                          and (a > acc or Problem.latency(c) < Problem.latency(config))
                          for c, a in at_top)]
    return hypervolume([(Problem.accuracy(c, R), Problem.latency(c)) for c in members])


def simulate(adapter: Any, seed: int) -> dict[str, Any]:
    """Two workers, one epoch per time unit each, until :data:`BUDGET` epochs are spent."""
    rng = np.random.default_rng(seed + 1_000)
    running: list[list[Any]] = []  # [key, config, epoch done, last epoch]
    last: dict[Any, tuple[int, dict[str, Any], float]] = {}  # key -> (epoch, config, acc)
    spent, idle, curve = 0, 0, []
    while spent < BUDGET:
        while len(running) < SLOTS:
            job = adapter.next()
            if job is None:
                break
            running.append(list(job))
        if not running:
            idle += 1
            if idle > 3:
                break
            continue
        idle = 0
        for job in list(running):
            if spent >= BUDGET:
                break
            key, config, done, stop = job
            epoch = job[2] = done + 1
            spent += 1
            acc = Problem.accuracy(config, epoch) + float(rng.normal(0.0, NOISE))
            last[key] = (epoch, config, acc)
            go_on = adapter.report(key, epoch, {"acc": acc, "latency_ms": Problem.latency(config)})
            if epoch >= stop:
                adapter.ended(key, epoch)
                running.remove(job)
            elif not go_on:
                running.remove(job)
        if spent in (BUDGET // 4, BUDGET // 2):
            curve.append((spent, front_hypervolume(last)))
    curve.append((spent, front_hypervolume(last)))
    return {"hv": curve[-1][1], "curve": curve, "spent": spent, "configs": len(last)}


class AutomlAdapter(PlanAdapter):
    """An automl plan (bracket scheduler + searcher) on the two objectives."""

    def __init__(self, algo: str, seed: int) -> None:
        from automl.algorithms import AlgoContext, Budget, build_plan
        from automl.objective import Objective, Objectives

        defaults = {p["name"]: centre(p) for p in PARAMS}
        objectives = Objectives((Objective("acc", "max"), Objective("latency_ms", "min")))
        ctx = AlgoContext(space=automl_space(Problem, "neutral", defaults), metric="acc",
                          mode="max", seed=seed, budget=Budget(R, 1, ETA),
                          max_recommendations=2_000, max_concurrent=SLOTS, population_size=4,
                          fixed_budget=False, prior=True, objectives=objectives)
        super().__init__(build_plan(algo, ctx), [p["name"] for p in PARAMS])

    def report(self, key: Any, epoch: int, result: dict[str, float]) -> bool:
        return self.report_result(key, epoch, result)

    def ended(self, key: Any, epoch: int) -> None:
        self.end(key, epoch, {})


class FullBudgetAdapter:
    """An Optuna sampler (ask/tell) or random search, every configuration trained to R."""

    def __init__(self, method: str, seed: int) -> None:
        import optuna

        from automl.algorithms.nsga2 import population_size

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = automl_space(Problem, "none", {})
        self.method, self.rng, self.count = method, np.random.default_rng(seed), 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if method == "optuna:nsga2":
                sampler: Any = optuna.samplers.NSGAIISampler(
                    population_size=population_size(BUDGET // R), seed=seed)
            else:
                sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                                     n_startup_trials=10, constant_liar=True)
        directions = ["maximize"] if method == "optuna:weighted" else ["maximize", "minimize"]
        self.study = optuna.create_study(directions=directions, sampler=sampler)
        self.live: dict[Any, Any] = {}
        self.final: dict[Any, dict[str, float]] = {}

    def next(self) -> tuple[Any, dict[str, Any], int, int] | None:
        self.count += 1
        if self.method == "random":
            return self.count, sample(PARAMS, self.rng), 0, R
        trial = self.study.ask()
        self.live[trial.number] = trial
        return trial.number, self.space.suggest(trial), 0, R

    def report(self, key: Any, epoch: int, result: dict[str, float]) -> bool:
        self.final[key] = result
        return True

    def ended(self, key: Any, epoch: int) -> None:
        if self.method == "random":
            return
        result = self.final[key]
        values: Any = result["acc"] - result["latency_ms"] / 100 \
            if self.method == "optuna:weighted" else [result["acc"], result["latency_ms"]]
        self.study.tell(self.live.pop(key), values)


def run(method: str, seed: int) -> dict[str, Any]:
    adapter = AutomlAdapter(method.split(":")[1], seed) if method in AUTOML \
        else FullBudgetAdapter(method, seed)
    return {"method": method, "seed": seed, **simulate(adapter, seed)}


def render(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by.setdefault(row["method"], []).append(row)
    summary: dict[str, Any] = {}
    for method in METHODS:
        if method not in by:
            continue
        hv = [r["hv"] for r in by[method]]
        half = [v for r in by[method] for s, v in r["curve"] if s == BUDGET // 2]
        summary[method] = {"seeds": len(hv), "hv_median": statistics.median(hv),
                           "hv_q1": float(np.percentile(hv, 25)),
                           "hv_q3": float(np.percentile(hv, 75)),
                           "hv_half_median": statistics.median(half) if half else None,
                           "configs_median": statistics.median(r["configs"] for r in by[method])}
    lines = [f"# Multi-objective search: hypervolume after B = {BUDGET} epochs "
             f"(R = {R}, eta = {ETA}, {SLOTS} in flight; `benchmarks/multiobjective.py`)", "",
             "| method | seeds | configurations (median) | HV after B/2: median | HV after B: median "
             "[IQR] | vs optuna:motpe | vs optuna:nsga2 | vs optuna:weighted |",
             "|---|---|---|---|---|---|---|---|"]
    for method, s in summary.items():
        ratios = []
        for other in ("optuna:motpe", "optuna:nsga2", "optuna:weighted"):
            base = summary.get(other, {}).get("hv_median")
            ratios.append(f"{s['hv_median'] / base:.2f}x" if base else "-")
        half = f"{s['hv_half_median']:.2f}" if s["hv_half_median"] is not None else "-"
        lines.append(f"| {method} | {s['seeds']} | {s['configs_median']:g} | {half} | "
                     f"{s['hv_median']:.2f} [{s['hv_q1']:.2f}, {s['hv_q3']:.2f}] | "
                     f"{' | '.join(ratios)} |")
    lines += ["", "Ratios: median hypervolume of the row over the column's median (higher is "
              "better). Hypervolume: accuracy above 0.6 times latency below 40 ms, of the front "
              "at the largest budget observed, noise-free values at R."]
    (OUT / "multiobjective.md").write_text("\n".join(lines) + "\n")
    (OUT / "multiobjective.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--render", action="store_true", help="tables from the saved lines only")
    args = parser.parse_args()
    lines = OUT / "multiobjective.jsonl"
    rows = [json.loads(x) for x in lines.read_text().splitlines()] if lines.exists() else []
    if not args.render:
        done = {(r["method"], r["seed"]) for r in rows}
        for seed in range(args.seeds):
            for method in args.methods.split(","):
                if (method, seed) in done:
                    continue
                row = run(method, seed)
                print(f"{method} seed {seed}: HV {row['hv']:.3f} ({row['configs']} configurations)",
                      flush=True)
                rows.append(row)
                with lines.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
    for method, s in render(rows).items():
        print(f"{method}: median HV {s['hv_median']:.3f} over {s['seeds']} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
