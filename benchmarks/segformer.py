#!/usr/bin/env python3
"""The real SegFormer: ``automl run`` on the bundled trainer and the generated dataset.

Issue 8 §3: ``automl run --algo bohb`` and ``--algo bayesian`` at the default sizes (no size
flags: the embedded default), their wall time on this machine, best ``val_miou`` and the epochs
they trained; and a random search with 10× the default budget as the reference the default runs
should come within 0.02 val_miou of.

Every run is the CLI as a user types it (``python -m automl.cli run ...`` in its own process, so
the wall includes Python and Ray start-up and MLflow), with only ``--workspace``, ``--seed`` and
``--progress plain`` added. Budget accounting reads the experiment's ``history.json``: a trial's
epochs are its largest reported epoch (a promoted multi-fidelity trial resumes from its rung
checkpoint, so its epochs are not counted twice; the trainer does not retrain them either).

Usage::

    python benchmarks/segformer.py                    # 3 seeds of bayesian and bohb + the reference
    python benchmarks/segformer.py --seeds 0 --reference-seeds 0
    python benchmarks/segformer.py --render           # re-render segformer.md from segformer.json

Results: ``benchmarks/results/segformer.json`` (appended run by run, so an interrupted
invocation keeps what finished) and ``segformer.md``. Workspaces under ``--work`` (default
/tmp/automl-bench/segformer), never in the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent / "src"))

from automl.results.records import read_history  # noqa: E402

DEFAULT_TRIALS = 6  # the embedded default's max_recommendations (studies/quickstart.yaml)
REFERENCE_FACTOR = 10


def _runs(seeds: list[int], reference_seeds: list[int]) -> list[dict[str, Any]]:
    runs = [{"label": f"{algo} (default)", "algo": algo, "seed": seed, "args": ["--algo", algo]}
            for algo in ("bayesian", "bohb") for seed in seeds]
    runs += [{"label": f"random ×{REFERENCE_FACTOR} budget (reference)", "algo": "random",
              "seed": seed, "args": ["--algo", "random", "--max-recommendations",
                                     str(DEFAULT_TRIALS * REFERENCE_FACTOR)]}
             for seed in reference_seeds]
    return runs


def _measure(run: dict[str, Any], work: Path) -> dict[str, Any]:
    workspace = work / f"{run['algo']}-{'ref-' if 'reference' in run['label'] else ''}s{run['seed']}"
    shutil.rmtree(workspace, ignore_errors=True)
    argv = [sys.executable, "-m", "automl.cli", "run", *run["args"], "--seed", str(run["seed"]),
            "--workspace", str(workspace), "--progress", "plain"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    load0 = os.getloadavg()[0]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - start
    (workspace / "benchmark-cli.log").write_text(proc.stdout + proc.stderr)
    _, records = read_history(workspace / "history.json")
    best_file = workspace / "best_rec.json"
    best = (json.loads(best_file.read_text()).get("best") or {}) if best_file.exists() else {}
    return {
        **{k: run[k] for k in ("label", "algo", "seed")},
        "argv": ["automl", *argv[3:]], "returncode": proc.returncode, "wall_s": wall,
        "load_1min": [load0, os.getloadavg()[0]],
        "trials": len(records),
        "completed": sum(r.status in ("completed", "recovered") for r in records),
        "epochs": sum(r.observed_budget for r in records),
        "best_val_miou": best.get("score"),
        "scores": _scores(records),
        "best_checkpoint": best.get("checkpoint_uri"),
        "workspace": str(workspace),
    }


def _scores(records: list) -> list[float | None]:
    """Each trial's val_miou at its largest epoch, in creation order (for the bootstrap)."""
    return [r.score("val_miou") for r in sorted(records, key=lambda r: r.index)]


def _bootstrap(scores: list[float], k: int, best: float, n: int = 20000) -> tuple[float, ...]:
    """Random search with k trials, estimated by drawing k of the reference's own random trials."""
    rng = random.Random(0)
    draws = [max(rng.sample(scores, k)) for _ in range(n)]
    return (statistics.mean(draws), statistics.median(draws),
            sum(d >= best - 0.02 for d in draws) / n)


def _summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_label: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    out = []
    for label, group in by_label.items():
        scores = [r["best_val_miou"] for r in group if r["best_val_miou"] is not None]
        out.append({
            "label": label, "runs": len(group), "seeds": [r["seed"] for r in group],
            "wall_s": [round(r["wall_s"], 1) for r in group],
            "epochs": [r["epochs"] for r in group], "trials": [r["trials"] for r in group],
            "best": [round(s, 4) for s in scores],
            "best_median": statistics.median(scores) if scores else None,
        })
    return out


def render(data: dict[str, Any]) -> str:
    rows = data["runs"]
    summary = _summary(rows)
    reference = next((s for s in summary if "reference" in s["label"]), None)
    ref_best = max(reference["best"]) if reference and reference["best"] else None
    lines = [
        "# Real SegFormer: default runs vs a 10× budget random reference (segformer)", "",
        f"Bundled SegFormer trainer (mit_nano, 64 px, generated dataset: 480 train / 64 val "
        f"images), `automl run` as typed by a user (own process: Python + Ray start-up + MLflow "
        f"included in the wall), 2 trials at once on {data['machine']}; {data['date']}. "
        "The load column is the 1-min load average before/after each run: this machine is "
        "shared, so walls are upper bounds.", "",
        "| run | seed | wall s | trials | epochs trained | best val_miou | Δ to reference best | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        delta = (f"{r['best_val_miou'] - ref_best:+.4f}"
                 if ref_best is not None and r["best_val_miou"] is not None else "-")
        best = f"{r['best_val_miou']:.4f}" if r["best_val_miou"] is not None else "failed"
        lines.append(f"| {r['label']} | {r['seed']} | {r['wall_s']:.0f} | {r['trials']} | "
                     f"{r['epochs']} | {best} | {delta} | "
                     f"{r['load_1min'][0]:.1f}/{r['load_1min'][1]:.1f} |")
    lines += ["", "| run | runs | wall s (median) | epochs (median) | best val_miou median "
              "(min–max) | median Δ to reference |", "|---|---|---|---|---|---|"]
    for s in summary:
        if not s["best"]:
            continue
        delta = f"{s['best_median'] - ref_best:+.4f}" if ref_best is not None else "-"
        lines.append(f"| {s['label']} | {s['runs']} | {statistics.median(s['wall_s']):.0f} | "
                     f"{statistics.median(s['epochs']):.0f} | {s['best_median']:.4f} "
                     f"({min(s['best']):.4f}–{max(s['best']):.4f}) | {delta} |")
    if reference and ref_best is not None:
        ref_row = next(r for r in rows if "reference" in r["label"])
        scores = [x for x in ref_row.get("scores", []) if x is not None]
        lines += ["", f"Random search at smaller budgets, estimated from the reference's own "
                  f"{len(scores)} random trials (k drawn without replacement, 20,000 resamples):",
                  "", "| random trials k | mean best | median best | P(best within 0.02 of the "
                  "reference best) |", "|---|---|---|---|"]
        for k in (6, 12, 18, 30):
            if k < len(scores):
                mean, median, p = _bootstrap(scores, k, ref_best)
                lines.append(f"| {k} | {mean:.4f} | {median:.4f} | {p:.2f} |")
    commands = sorted({" ".join("WS" if a.startswith("/") else a for a in r["argv"]) for r in rows})
    lines += ["", "Commands (WS: a fresh workspace under /tmp/automl-bench/segformer):", "",
              *[f"    {c}" for c in commands], "",
              "Reproduce: `python benchmarks/segformer.py` (all of the above, ~30 min on 2 idle "
              "cores, the reference being most of it).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the default bayesian/bohb runs")
    parser.add_argument("--reference-seeds", default="0", help="seeds of the reference run")
    parser.add_argument("--work", type=Path, default=Path("/tmp/automl-bench/segformer"))
    parser.add_argument("--name", default="segformer")
    parser.add_argument("--only", default="", help="labels' algorithms to run (e.g. bayesian); "
                        "their rows replace the same (label, seed) rows of an existing result")
    parser.add_argument("--render", action="store_true", help="only re-render the .md")
    args = parser.parse_args()
    out_json, out_md = RESULTS / f"{args.name}.json", RESULTS / f"{args.name}.md"
    if args.render:
        out_md.write_text(render(json.loads(out_json.read_text())))
        return
    data = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python "
                       f"{platform.python_version()}",
            "date": time.strftime("%Y-%m-%d %H:%M"), "runs": []}
    only = [a for a in args.only.split(",") if a]
    if only and out_json.exists():
        data["runs"] = json.loads(out_json.read_text())["runs"]
    args.work.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    reference_seeds = [int(s) for s in args.reference_seeds.split(",") if s]
    for run in _runs(seeds, reference_seeds):
        if only and run["algo"] not in only:
            continue
        row = _measure(run, args.work)
        data["runs"] = [r for r in data["runs"]
                        if (r["label"], r["seed"]) != (row["label"], row["seed"])] + [row]
        out_json.write_text(json.dumps(data, indent=1))
        out_md.write_text(render(data))
        print(f"{row['label']} seed {row['seed']}: rc {row['returncode']}, {row['wall_s']:.0f} s, "
              f"{row['trials']} trials, {row['epochs']} epochs, best {row['best_val_miou']}",
              flush=True)
    print(out_md.read_text())


if __name__ == "__main__":
    main()
