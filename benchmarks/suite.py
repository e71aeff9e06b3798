#!/usr/bin/env python3
"""Search-efficiency suite: automl's ``bohb``/``async_bohb`` (with a good, neutral, bad or no
prior) against Optuna TPE + Hyperband and Syne Tune's MOBSTER, Hyper-Tune, ASHA and BOHB, on the
problems of :mod:`suite_problems` (documented in benchmarks/README.md, "Suite").

Same budget accounting for every method (the simulator here, one for all): R = 27 epochs,
eta = 3, B = 30 R = 810 epochs per run, 2 trials in flight, every epoch a trial trains costs one
unit (a resumed trial continues from its pause; Optuna's pruned trials cannot be resumed), one
time unit per epoch, so the two workers' epochs interleave. After each epoch the **incumbent**
is the configuration with the best reported value at the largest epoch reached so far (what
automl's best_rec.json picks); its regret is ``f(x_inc, R) - f*`` without noise.

* ``automl:<algo>[+gp]@<prior>``: the real plan (:func:`automl.algorithms.build_plan`: the
  bracket scheduler and searcher Ray Tune would drive), with the TPE model
  (``--surrogate tpe``, the cells without a suffix, measured first) or ``+gp`` the GP over
  (configuration, budget) (``--surrogate gp``, the default since), ``prior`` = the schema defaults set ``good``
  (the optimum, floats moved 10 % of their range towards the centre), ``neutral`` (the middle
  of every range), ``bad`` (the worst of 4,096 random configurations) or ``none``
  (``--no-prior``).
* ``optuna:tpe_hb``: ``TPESampler`` + ``HyperbandPruner(1, R, 3)`` through ask/tell over the same
  define-by-run space.
* ``syne:<mobster|hypertune|asha|bohb>``: Syne Tune's schedulers (``type="promotion"``, pause
  and resume, their defaults otherwise) driven by this simulator through their
  ``suggest``/``on_trial_result``/``on_trial_complete`` API, in the Syne Tune 0.13 virtual
  environment given by ``--syne-python`` (0.13 is the last release with MOBSTER and Hyper-Tune;
  it needs numpy < 1.27, hence its own venv; see benchmarks/README.md).
* ``random``: every configuration at R.

Reported per problem x method (medians over the seeds run): final regret after B, area under
the regret-vs-epochs curve (mean regret over the B epochs; lower = better anytime), and the
regret after 25 %, 50 %, 100 % of B.

Resumable: every (problem, method, seed) cell is one file,
``results/suite/cells/<problem>/<method>/seed<k>.json``; a rerun skips the cells that exist.
Run it niced: ``nice -n 10 python benchmarks/suite.py --seeds 5``; ``--render`` rewrites
``results/suite/suite.md`` and ``suite.json`` from the cells.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from suite_problems import PROBLEMS, R, Problem, centre, choices, from_unit, sample, to_unit  # noqa: E402

ETA = 3
BUDGET = 30 * R
SLOTS = 2
OUT = HERE / "results" / "suite"
PRIORS = ("good", "neutral", "bad", "none")
AUTOML = tuple(f"automl:bohb@{p}" for p in PRIORS) + ("automl:async_bohb@neutral",
                                                      "automl:async_bohb@none")
# The GP over (configuration, budget) (automl.algorithms.mf_gp; "+gp" picks the surrogate).
AUTOML_GP = tuple(f"automl:async_bohb+gp@{p}" for p in PRIORS) + ("automl:bohb+gp@neutral",
                                                               "automl:bohb+gp@none")
SYNE = ("syne:mobster", "syne:hypertune", "syne:asha", "syne:bohb")
METHODS = AUTOML + AUTOML_GP + ("optuna:tpe_hb",) + SYNE + ("random",)
SYNE_PYTHON = os.environ.get("SYNE_TUNE_PYTHON", "/tmp/st13-venv/bin/python")


# ---------------------------------------------------------------------------------------------
# The simulator: 2 workers, one time unit per epoch, the budget in epochs


class Adapter:
    """One method, seen by :func:`simulate`."""

    def next(self) -> tuple[Any, dict[str, Any], int, int] | None:
        """(key, config, first epoch to train, last epoch of this segment) or None (wait)."""
        raise NotImplementedError

    def report(self, key: Any, epoch: int, value: float) -> bool:
        """Tell the method; False: the segment ends here (paused or stopped)."""
        raise NotImplementedError

    def ended(self, key: Any, epoch: int, value: float) -> None:
        """The segment reached its last epoch."""


def simulate(adapter: Adapter, problem: Problem, seed: int, budget: int = BUDGET) -> dict[str, Any]:
    rng = np.random.default_rng(seed + 1_000)
    running: list[list[Any]] = []  # [key, config, epoch done, last epoch]
    spent = 0
    best: tuple[int, float] | None = None  # (largest epoch seen, best value there)
    incumbent_true = math.inf
    curve: list[tuple[int, float]] = []  # (epochs spent, f(x_inc, R)) at every change
    idle = 0
    while spent < budget:
        while len(running) < SLOTS:
            job = adapter.next()
            if job is None:
                break
            key, config, start, stop = job
            running.append([key, config, start, stop])
        if not running:
            idle += 1
            if idle > 3:
                break  # the method has nothing more to run
            continue
        idle = 0
        for job in list(running):
            if spent >= budget:
                break
            key, config, done, stop = job
            epoch = done + 1
            job[2] = epoch
            spent += 1
            value = problem.value(config, epoch, rng)
            if best is None or epoch > best[0] or epoch == best[0] and value < best[1]:
                best = (max(epoch, best[0] if best else 0), value)
                if best[0] == epoch:
                    true = problem.value(config, R)
                    if true != incumbent_true:
                        incumbent_true = true
                        curve.append((spent, true))
            go_on = adapter.report(key, epoch, value)
            if epoch >= stop:
                adapter.ended(key, epoch, value)
                running.remove(job)
            elif not go_on:
                running.remove(job)
    return {"curve": curve, "spent": spent}


# ---------------------------------------------------------------------------------------------
# automl (main environment)


def automl_space(problem: Problem, prior: str, defaults: dict[str, Any]):
    from automl.space.params import Param, SearchSpace

    params = []
    for p in problem.params:
        default = defaults.get(p["name"]) if prior not in ("none",) else None
        kind = p["kind"]
        if kind == "float":
            params.append(Param(p["name"], "float", p["low"], p["high"], log=bool(p.get("log")),
                                default=default))
        elif kind == "int":
            params.append(Param(p["name"], "int", p["low"], p["high"], default=default))
        elif kind == "pow2":
            params.append(Param(p["name"], "int", p["low"], p["high"], math_cond="^ 2",
                                default=default))
        else:
            params.append(Param(p["name"], "categorical", choices=tuple(p["choices"]),
                                default=default))
    return SearchSpace(params=tuple(params))


class FakeTrial:
    """What a bracket scheduler reads of a Ray Tune trial."""

    def __init__(self, trial_id: str, config: dict[str, Any]) -> None:
        from ray.tune.experiment import Trial

        self.trial_id, self.config, self.status = trial_id, config, Trial.PENDING
        self.checkpoint = 0

    def set_config(self, config: dict[str, Any]) -> None:
        self.config = config

    def set_status(self, status: str) -> None:
        self.status = status


class PlanAdapter(Adapter):
    """An automl plan (bracket scheduler + searcher) driven as Ray Tune's controller drives it:
    the controller side the scheduler calls, and the results it hands on. Shared by this suite
    and ``multiobjective.py``."""

    def __init__(self, plan: Any, names: list[str]) -> None:
        self.scheduler, self.searcher = plan.scheduler, plan.search_alg
        self.names = names
        self.trials: dict[str, FakeTrial] = {}
        self.finished = False

    # the controller side the scheduler calls
    def get_trials(self) -> list[FakeTrial]:
        return list(self.trials.values())

    def stop_trial(self, trial: FakeTrial) -> None:
        from ray.tune.experiment import Trial

        self.scheduler.on_trial_remove(self, trial)
        trial.status = Trial.TERMINATED

    def next(self) -> tuple[Any, dict[str, Any], int, int] | None:
        from ray.tune.experiment import Trial
        from ray.tune.search import Searcher

        from automl.contract import EPOCHS_KEY

        while not self.finished:
            trial_id = f"t{len(self.trials):04d}"
            config = self.searcher.suggest(trial_id)
            if config == Searcher.FINISHED:
                self.finished = True
            if not isinstance(config, dict):
                break
            trial = self.trials[trial_id] = FakeTrial(trial_id, config)
            self.scheduler.on_trial_add(self, trial)
        trial = self.scheduler.choose_trial_to_run(self)
        if trial is None:
            return None
        trial.status = Trial.RUNNING
        values = {n: trial.config[n] for n in self.names}
        return trial.trial_id, values, trial.checkpoint, int(trial.config[EPOCHS_KEY])

    def report_result(self, key: Any, epoch: int, result: dict[str, float]) -> bool:
        """One result to the scheduler; False when it pauses the trial."""
        from ray.tune.experiment import Trial

        trial = self.trials[key]
        trial.checkpoint = epoch
        decision = self.scheduler.on_trial_result(self, trial, {"epoch": epoch, **result})
        if decision == "PAUSE":
            trial.status = Trial.PAUSED
            return False
        return True

    def end(self, key: Any, epoch: int, result: dict[str, float]) -> None:
        from ray.tune.experiment import Trial

        trial = self.trials[key]
        if trial.status == Trial.RUNNING:
            trial.status = Trial.TERMINATED
            self.scheduler.on_trial_complete(self, trial, {"epoch": epoch, **result})


class AutomlAdapter(PlanAdapter):
    """automl's bohb / async_bohb on one problem, with a good, neutral, bad or no prior."""

    def __init__(self, problem: Problem, algo: str, prior: str, defaults: dict[str, Any],
                 seed: int) -> None:
        from automl.algorithms import AlgoContext, Budget, build_plan

        space = automl_space(problem, prior, defaults)
        algo, _, surrogate = algo.partition("+")  # "async_bohb+gp": the GP model
        ctx = AlgoContext(space=space, metric="objective", mode="min", seed=seed,
                          budget=Budget(R, 1, ETA), max_recommendations=2_000,
                          max_concurrent=SLOTS, population_size=4, fixed_budget=False,
                          prior=prior != "none", surrogate=surrogate or "tpe")
        super().__init__(build_plan(algo, ctx), [p["name"] for p in problem.params])

    def report(self, key: Any, epoch: int, value: float) -> bool:
        return self.report_result(key, epoch, {"objective": value})

    def ended(self, key: Any, epoch: int, value: float) -> None:
        self.end(key, epoch, {"objective": value})


class OptunaAdapter(Adapter):
    """Optuna TPE + HyperbandPruner, ask/tell (pruned trials end; Optuna cannot resume them)."""

    def __init__(self, problem: Problem, seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = automl_space(problem, "none", {})
        # A fixed study name: HyperbandPruner assigns brackets by a hash of the study's name,
        # and an unnamed study gets a random one (the cell would not reproduce from its seed).
        self.study = optuna.create_study(
            study_name=f"suite-{problem.name}-{seed}",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=R,
                                                  reduction_factor=ETA))
        self.live: dict[int, Any] = {}

    def next(self) -> tuple[Any, dict[str, Any], int, int] | None:
        trial = self.study.ask()
        self.live[trial.number] = trial
        return trial.number, self.space.suggest(trial), 0, R

    def report(self, key: Any, epoch: int, value: float) -> bool:
        import optuna

        trial = self.live[key]
        trial.report(value, epoch)
        if epoch < R and trial.should_prune():
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return False
        return True

    def ended(self, key: Any, epoch: int, value: float) -> None:
        self.study.tell(self.live.pop(key), value)


class RandomAdapter(Adapter):
    def __init__(self, problem: Problem, seed: int) -> None:
        self.params, self.rng, self.count = problem.params, np.random.default_rng(seed), 0

    def next(self) -> tuple[Any, dict[str, Any], int, int] | None:
        self.count += 1
        return self.count, sample(self.params, self.rng), 0, R

    def report(self, key: Any, epoch: int, value: float) -> bool:
        return True


# ---------------------------------------------------------------------------------------------
# Syne Tune (its own venv; imported only there)


class SyneAdapter(Adapter):
    def __init__(self, problem: Problem, name: str, seed: int) -> None:
        from datetime import datetime

        from syne_tune import config_space as cs
        from syne_tune.optimizer import baselines

        space: dict[str, Any] = {"epochs": R}
        for p in problem.params:
            if p["kind"] == "float":
                space[p["name"]] = (cs.loguniform if p.get("log") else cs.uniform)(p["low"], p["high"])
            elif p["kind"] == "int":
                space[p["name"]] = cs.randint(p["low"], p["high"])
            else:
                space[p["name"]] = cs.choice(choices(p))
        cls = {"mobster": baselines.MOBSTER, "hypertune": baselines.HyperTune,
               "asha": baselines.ASHA, "bohb": baselines.BOHB}[name]
        self.scheduler = cls(space, metric="objective", mode="min", resource_attr="epoch",
                             max_resource_attr="epochs", type="promotion", grace_period=1,
                             reduction_factor=ETA, random_seed=seed)
        self.names = [p["name"] for p in problem.params]
        self.trials: dict[int, Any] = {}
        self.done: dict[int, int] = {}
        self.now = datetime.now

    def next(self) -> tuple[Any, dict[str, Any], int, int] | None:
        from syne_tune.backend.trial_status import Trial

        trial_id = len(self.trials)
        suggestion = self.scheduler.suggest(trial_id)
        if suggestion is None:
            return None
        if suggestion.spawn_new_trial_id:
            trial = self.trials[trial_id] = Trial(trial_id, suggestion.config, self.now())
            self.scheduler.on_trial_add(trial)
            self.done[trial_id] = 0
        else:
            trial_id = suggestion.checkpoint_trial_id
            trial = self.trials[trial_id]
            if suggestion.config is not None:
                trial.config = suggestion.config
        config = trial.config
        return trial_id, {n: config[n] for n in self.names}, self.done[trial_id], int(config["epochs"])

    def report(self, key: Any, epoch: int, value: float) -> bool:
        self.done[key] = epoch
        decision = self.scheduler.on_trial_result(
            self.trials[key], {"epoch": epoch, "objective": value})
        return decision == "CONTINUE"

    def ended(self, key: Any, epoch: int, value: float) -> None:
        self.scheduler.on_trial_complete(self.trials[key], {"epoch": epoch, "objective": value})


# ---------------------------------------------------------------------------------------------
# Optima and defaults


def optimum(problem: Problem, cache: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """``f*`` and a minimiser: the source's where known, else the best of 20,000 random
    configurations refined by Nelder-Mead over the floats (discrete values held)."""
    if problem.name in cache:
        entry = cache[problem.name]
        return entry["f_star"], entry["x_star"]
    if problem.f_star is not None:
        x_star = problem.optimum
        f_star = problem.f_star
    else:
        from scipy.optimize import minimize

        rng = np.random.default_rng(0)
        points = sorted((sample(problem.params, rng) for _ in range(20_000)),
                        key=lambda c: problem.value(c, R))[:20]
        floats = [p for p in problem.params if p["kind"] == "float"]
        f_star, x_star = math.inf, {}
        for point in points:
            def f(u: np.ndarray, point: dict[str, Any] = point) -> float:
                c = {**point, **{p["name"]: from_unit(p, float(v)) for p, v in zip(floats, u)}}
                return problem.value(c, R)
            res = minimize(f, [to_unit(p, point[p["name"]]) for p in floats], method="Nelder-Mead",
                           options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 4000})
            if res.fun < f_star:
                f_star = float(res.fun)
                x_star = {**point, **{p["name"]: from_unit(p, float(v))
                                      for p, v in zip(floats, res.x)}}
    cache[problem.name] = {"f_star": f_star, "x_star": x_star}
    return f_star, x_star


def defaults(problem: Problem, prior: str, x_star: dict[str, Any]) -> dict[str, Any]:
    if prior == "neutral":
        return {p["name"]: centre(p) for p in problem.params}
    if prior == "good":
        out = dict(x_star)
        for p in problem.params:
            if p["kind"] == "float":
                u = to_unit(p, x_star[p["name"]])
                out[p["name"]] = from_unit(p, u + 0.1 * (1 if u < 0.5 else -1))
        return out
    rng = np.random.default_rng(12_345)
    return max((sample(problem.params, rng) for _ in range(4_096)), key=lambda c: problem.value(c, R))


# ---------------------------------------------------------------------------------------------
# Cells


def cell_path(problem: str, method: str, seed: int) -> Path:
    return OUT / "cells" / problem / method.replace(":", "_").replace("@", "-") / f"seed{seed}.json"


def run_cell(problem_name: str, method: str, seed: int, x_star: dict[str, Any],
             budget: int = BUDGET) -> dict[str, Any]:
    problem = PROBLEMS[problem_name]
    family, _, rest = method.partition(":")
    started = time.process_time()
    if family == "automl":
        algo, _, prior = rest.partition("@")
        adapter: Adapter = AutomlAdapter(problem, algo, prior, defaults(problem, prior, x_star), seed)
    elif family == "optuna":
        adapter = OptunaAdapter(problem, seed)
    elif family == "syne":
        adapter = SyneAdapter(problem, rest, seed)
    else:
        adapter = RandomAdapter(problem, seed)
    result = simulate(adapter, problem, seed, budget)
    return {"problem": problem_name, "method": method, "seed": seed,
            "cpu_s": round(time.process_time() - started, 2), **result}


def run(problems: list[str], methods: list[str], seeds: list[int], cache: dict[str, Any]) -> None:
    for seed in seeds:
        for problem in problems:
            _, x_star = optimum(problem=PROBLEMS[problem], cache=cache)
            for method in methods:
                path = cell_path(problem, method, seed)
                if path.exists():
                    continue
                if method.startswith("syne:"):
                    out = subprocess.run(
                        [SYNE_PYTHON, "-W", "ignore", __file__, "--cell", problem, method,
                         str(seed)], input=json.dumps(x_star), capture_output=True, text=True)
                    if out.returncode != 0:
                        print(f"{problem} {method} seed {seed}: failed\n{out.stderr[-2000:]}")
                        continue
                    cell = json.loads(out.stdout.strip().splitlines()[-1])
                else:
                    cell = run_cell(problem, method, seed, x_star)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(cell))
                print(f"{problem} {method} seed {seed}: f_inc {cell['curve'][-1][1]:.4g} "
                      f"({cell['cpu_s']} cpu s)", flush=True)


# ---------------------------------------------------------------------------------------------
# Summary


def regrets(cell: dict[str, Any], f_star: float) -> Callable[[int], float]:
    curve = cell["curve"]

    def at(epochs: int) -> float:
        value = math.inf
        for spent, f in curve:
            if spent > epochs:
                break
            value = f
        return value - f_star if math.isfinite(value) else math.nan
    return at


def summary(cells: list[dict[str, Any]], optima: dict[str, Any]) -> dict[str, Any]:
    table: dict[str, dict[str, dict[str, Any]]] = {}
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in cells:
        grouped.setdefault((cell["problem"], cell["method"]), []).append(cell)
    for (problem, method), runs in sorted(grouped.items()):
        f_star = optima[problem]["f_star"]
        stats: dict[str, list[float]] = {"final": [], "auc": [], "25%": [], "50%": []}
        for cell in runs:
            at = regrets(cell, f_star)
            first = cell["curve"][0][0] if cell["curve"] else BUDGET
            series = [at(e) for e in range(first, BUDGET + 1)]
            worst = series[0] if series else math.nan
            stats["auc"].append((worst * (first - 1) + sum(series)) / BUDGET)
            stats["final"].append(at(BUDGET))
            stats["25%"].append(at(BUDGET // 4))
            stats["50%"].append(at(BUDGET // 2))
        table.setdefault(problem, {})[method] = {
            "seeds": sorted(c["seed"] for c in runs),
            **{k: statistics.median(v) for k, v in stats.items()}}
    return table


def render(table: dict[str, Any]) -> str:
    lines = [
        "# Search-efficiency suite (R = 27, eta = 3, B = 810 epochs, 2 in flight)", "",
        "Generated by `benchmarks/suite.py --render` from the cells in `results/suite/cells/`. "
        "Medians over the seeds named; regret = f(x_inc, R) - f*; AUC = mean regret over the "
        "B epochs (anytime); 25 % / 50 % = regret after that share of B. **bold**: the lowest "
        "final regret and AUC of the problem's row set. A method with fewer seeds than the "
        "others is partial.", ""]
    lines += overview(table) + [""] + targets(table) + [""]
    for problem, methods in table.items():
        lines += [f"## {problem}", "",
                  "| method | seeds | final regret | AUC | after 25 % | after 50 % |",
                  "|---|---|---|---|---|---|"]
        best_final = min(m["final"] for m in methods.values())
        best_auc = min(m["auc"] for m in methods.values())
        for method, m in methods.items():
            final = f"{m['final']:.3g}"
            auc = f"{m['auc']:.3g}"
            lines.append(f"| {method} | {len(m['seeds'])} | "
                         f"{'**' + final + '**' if m['final'] == best_final else final} | "
                         f"{'**' + auc + '**' if m['auc'] == best_auc else auc} | "
                         f"{m['25%']:.3g} | {m['50%']:.3g} |")
        lines.append("")
    return "\n".join(lines)


def peers(row: dict[str, Any]) -> dict[str, Any]:
    """A problem's peer methods (Optuna's and Syne Tune's): not automl's, not random search."""
    return {m: cell for m, cell in row.items() if not m.startswith("automl:") and m != "random"}


def overview(table: dict[str, Any]) -> list[str]:
    """One row per problem: every method's final regret · AUC, the best peer, and the prior's
    ratios to ``bohb@none`` (bad, good: targets <= 1.2 and <= 0.5)."""
    methods = [m for m in METHODS if any(m in row for row in table.values())]
    lines = ["## Overview: final regret · AUC (medians; `–`: not run)", "",
             "| problem | " + " | ".join(methods) + " | best peer (final) | bohb@bad / @none |"
             " bohb@good / @none |", "|---" * (len(methods) + 4) + "|"]
    for problem, row in table.items():
        cells = [f"{row[m]['final']:.3g} · {row[m]['auc']:.3g}" + (
            f" ({len(row[m]['seeds'])} seed{'s' if len(row[m]['seeds']) != 1 else ''})"
            if m == methods[0] else "") if m in row else "–" for m in methods]
        finals = {m: cell["final"] for m, cell in peers(row).items()}
        best = min(finals, key=finals.get) if finals else "–"
        none = row.get("automl:bohb@none", {}).get("final")

        def ratio(prior: str) -> str:
            value = row.get(f"automl:bohb@{prior}", {}).get("final")
            if value is None or none is None:
                return "–"
            return f"{value / none:.2f}×" if none > 0 else "–"
        lines.append(f"| {problem} | " + " | ".join(cells) +
                     f" | {best} {finals.get(best, math.nan):.3g} | {ratio('bad')} | {ratio('good')} |")
    return lines


# The families whose targets are reported: (label, method prefix up to the prior).
FAMILIES = (("async_bohb, GP (the default model)", "automl:async_bohb+gp"),
            ("bohb, GP (the default model; neutral and no prior only)", "automl:bohb+gp"),
            ("bohb, TPE (the previous default model)", "automl:bohb"))


def targets(table: dict[str, Any]) -> list[str]:
    """Issue 29's targets per problem, as ratios of medians: final regret and AUC against the
    best peer's (each the lowest among the peers; targets <= 1 and, for AUC, on 3/4 of the
    problems), and the prior's bad and good defaults against the family's own no-prior
    result (targets <= 1.2 and <= 0.5)."""
    lines = ["## Targets (ratios of medians; ✓ met, ✗ missed)", "",
             "Ours = the family with the neutral default (the box's centre: a schema whose "
             "defaults say nothing); `@none` = without a prior, as the peers search. Best "
             "peer = the lowest median among Optuna TPE+HB and Syne Tune's four, per column.",
             ""]
    for label, prefix in FAMILIES:
        lines += [f"### {label}: `{prefix}@…`", "",
                  "| problem | final / best peer (≤ 1) | AUC / best peer (≤ 1) | @none final / "
                  "best peer | @bad / @none final (≤ 1.2) | @good / @none final (≤ 0.5) |",
                  "|---|---|---|---|---|---|"]
        met = {"final": 0, "auc": 0, "none": 0, "bad": 0, "good": 0}
        judged = dict.fromkeys(met, 0)  # rows where the ratio exists
        rows = 0
        for problem, row in table.items():
            others = peers(row)
            ours, none = row.get(f"{prefix}@neutral"), row.get(f"{prefix}@none")
            if not others or ours is None or none is None:
                continue
            rows += 1
            best_final = min(p["final"] for p in others.values())
            cells = []
            for key, bound, value, reference in (
                    ("final", 1.0, ours["final"], best_final),
                    ("auc", 1.0, ours["auc"], min(p["auc"] for p in others.values())),
                    ("none", 1.0, none["final"], best_final),
                    ("bad", 1.2, row.get(f"{prefix}@bad", {}).get("final"), none["final"]),
                    ("good", 0.5, row.get(f"{prefix}@good", {}).get("final"), none["final"])):
                if value is None or not reference > 0:
                    cells.append("–")
                    continue
                ratio = value / reference
                met[key] += ratio <= bound
                judged[key] += 1
                cells.append(f"{ratio:.2f}× {'✓' if ratio <= bound else '✗'}")
            lines.append(f"| {problem} | " + " | ".join(cells) + " |")
        if rows:
            lines.append("| **met** | " + " | ".join(
                f"{met[key]}/{judged[key]}" if judged[key] else "–" for key in met) + " |")
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--seed-list", help="comma-separated seeds (instead of --seeds)")
    parser.add_argument("--render", action="store_true", help="only rewrite the summary (with "
                        "--seed-list: of those seeds' cells only)")
    parser.add_argument("--cell", nargs=3, metavar=("PROBLEM", "METHOD", "SEED"),
                        help=argparse.SUPPRESS)  # one cell, x* on stdin (the Syne Tune venv)
    args = parser.parse_args()
    if args.cell:
        problem, method, seed = args.cell
        print(json.dumps(run_cell(problem, method, int(seed), json.loads(sys.stdin.read()))))
        return
    problems = args.problems.split(",")
    methods = args.methods.split(",")
    for name, known in (("problem", PROBLEMS), ("method", METHODS)):
        unknown = [x for x in (problems if name == "problem" else methods) if x not in known]
        if unknown:
            parser.error(f"unknown {name} {unknown[0]!r}: pick from {', '.join(known)}")
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    cache_path = OUT / "optima.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    if not args.render:
        try:
            run(problems, methods, seeds, cache)
        finally:
            OUT.mkdir(parents=True, exist_ok=True)
            cache_path.write_text(json.dumps(cache, indent=1, default=str))
    cells = [json.loads(p.read_text()) for p in sorted((OUT / "cells").glob("*/*/*.json"))]
    if args.render and args.seed_list:  # a summary over the same seeds for every method
        cells = [cell for cell in cells if cell["seed"] in seeds]
    for name in {cell["problem"] for cell in cells}:
        optimum(PROBLEMS[name], cache)
    table = summary(cells, cache)
    (OUT / "suite.json").write_text(json.dumps(table, indent=1))
    (OUT / "suite.md").write_text(render(table))
    print(render(table))


if __name__ == "__main__":
    main()
