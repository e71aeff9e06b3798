#!/usr/bin/env python3
"""Scale of ``automl run``: many trials × 9 epochs at 16 concurrent slots, zero-compute trainer.

For each trial count (default 30, 100, 300) it runs the real ``automl run`` path
(``benchmarks/overhead.py``'s ``automl`` child: MLflow, history.json, retention, Optuna random
search; trainer ``benchmarks/zero_trainer.py``) in its own process and measures:

* wall time and throughput (trials/s), first vs last 20 % of trials (does a trial get slower as
  the experiment grows?);
* peak RSS of the controller (the driver process: ``VmHWM``) and, sampled every 0.5 s from
  /proc, the peak RSS summed over Ray's own processes (gcs_server, raylet, dashboard agents…),
  over Ray workers (the slots) and over trainer processes;
* the workspace state at the end: ``history.json``, ``ray/`` (Tune's experiment state),
  ``mlflow.db`` and ``trials/``, and the largest files of Tune's state;
* the driver's per-call cost of Tune's experiment-state save and of history.json writes, early
  vs late in the run.

It then fits size = a + b·trials (least squares) for each quantity, reports how far the largest
run is from the line (linearity), and extrapolates to ``--target`` trials (default 1,000);
extrapolated figures are labelled as such in the output.

Usage::

    python benchmarks/scale.py                          # 30, 100, 300 trials (minutes on 2 cores)
    python benchmarks/scale.py --trials 100,300,1000    # the full issue size, where time allows

Results: ``benchmarks/results/scale.json`` and ``scale.md``. Workspaces under ``--work``
(default /tmp/automl-bench/scale), never in the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import overhead  # noqa: E402  (same folder)

RESULTS = HERE / "results"
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------------------------
# /proc sampling (no psutil needed)
# ---------------------------------------------------------------------------------------------
def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def classify(pid: int, root: int) -> str:
    if pid == root:
        return "driver"
    cmd = _cmdline(pid)
    if "zero_trainer.py" in cmd:
        return "trainers"
    if "automl.observers.tracking_worker" in cmd:
        return "mlflow_process"
    if cmd.startswith("ray::") or "default_worker.py" in cmd:
        return "ray_workers"
    return "ray_system"


class RssSampler(threading.Thread):
    """Peak RSS per group of the process tree under ``root`` (sampled)."""

    def __init__(self, root: int, period: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.period = period
        self.peak: dict[str, int] = {}
        self.peak_total = 0
        self.peak_processes: dict[str, int] = {}
        self._halt = threading.Event()
        self._kinds: dict[int, str] = {}

    def run(self) -> None:
        while not self._halt.is_set():
            kids = _children_map()
            tree, todo = [], [self.root]
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo.extend(kids.get(pid, []))
            sums: dict[str, int] = {}
            counts: dict[str, int] = {}
            for pid in tree:
                kind = self._kinds.get(pid) or classify(pid, self.root)
                if kind != "trainers":  # a trainer pid is short-lived; workers keep theirs
                    self._kinds[pid] = kind
                sums[kind] = sums.get(kind, 0) + _rss_bytes(pid)
                counts[kind] = counts.get(kind, 0) + 1
            for kind, value in sums.items():
                self.peak[kind] = max(self.peak.get(kind, 0), value)
                self.peak_processes[kind] = max(self.peak_processes.get(kind, 0), counts[kind])
            self.peak_total = max(self.peak_total, sum(sums.values()))
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


# ---------------------------------------------------------------------------------------------
# Workspace size
# ---------------------------------------------------------------------------------------------
def tree_size(path: Path) -> tuple[int, int]:
    total = files = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
                files += 1
            except OSError:
                pass
    return total, files


def workspace_sizes(workspace: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, path in (("history.json", workspace / "history.json"),
                        ("best_rec.json", workspace / "best_rec.json")):
        out[label] = path.stat().st_size if path.exists() else 0
    db = sum(p.stat().st_size for p in workspace.glob("mlflow.db*"))
    out["mlflow.db"] = db
    for label in ("ray", "trials", "mlruns", "mlartifacts"):
        size, files = tree_size(workspace / label)
        out[f"{label}/"] = size
        out[f"{label}/ files"] = files
    out["workspace total"], out["workspace files"] = tree_size(workspace)
    largest = sorted(((p.stat().st_size, str(p.relative_to(workspace)))
                      for p in (workspace / "ray").rglob("*") if p.is_file()), reverse=True)[:5]
    out["ray/ largest files"] = [{"path": name, "bytes": size} for size, name in largest]
    return out


# ---------------------------------------------------------------------------------------------
# Fit and extrapolation
# ---------------------------------------------------------------------------------------------
def linear_fit(xs: list[float], ys: list[float]) -> dict[str, float] | None:
    """y = a + b·x by least squares; ``worst_residual`` relative to y (linearity check)."""
    if len(xs) < 2:
        return None
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    worst = max((abs(y - (a + b * x)) / abs(y) for x, y in zip(xs, ys) if y), default=0.0)
    # quadratic term, when there are 3+ points: y = c0 + c1 x + c2 x^2 (through the exact solve
    # of the normal equations); c2·x² / y at the largest x says how far from linear it bends
    fit = {"a": a, "b": b, "worst_relative_residual": worst}
    if n >= 3:
        try:
            fit["quadratic_share_at_max"] = _quad_share(xs, ys)
        except ZeroDivisionError:
            pass
    return fit


def _quad_share(xs: list[float], ys: list[float]) -> float:
    # normal equations for [1, x, x^2]
    s = [sum(x ** k for x in xs) for k in range(5)]
    t = [sum(y * x ** k for x, y in zip(xs, ys)) for k in range(3)]
    m = [[s[0], s[1], s[2], t[0]], [s[1], s[2], s[3], t[1]], [s[2], s[3], s[4], t[2]]]
    for i in range(3):  # Gauss-Jordan
        pivot = m[i][i]
        m[i] = [v / pivot for v in m[i]]
        for j in range(3):
            if j != i:
                factor = m[j][i]
                m[j] = [vj - factor * vi for vj, vi in zip(m[j], m[i])]
    c2 = m[2][3]
    x, y = max(xs), ys[xs.index(max(xs))]
    return c2 * x * x / y if y else 0.0


def quadratic_extrapolation(xs: list[float], ys: list[float], x: float) -> float | None:
    if len(xs) < 3:
        return None
    s = [sum(v ** k for v in xs) for k in range(5)]
    t = [sum(y * v ** k for v, y in zip(xs, ys)) for k in range(3)]
    m = [[s[0], s[1], s[2], t[0]], [s[1], s[2], s[3], t[1]], [s[2], s[3], s[4], t[2]]]
    for i in range(3):
        pivot = m[i][i]
        m[i] = [v / pivot for v in m[i]]
        for j in range(3):
            if j != i:
                factor = m[j][i]
                m[j] = [vj - factor * vi for vj, vi in zip(m[j], m[i])]
    return m[0][3] + m[1][3] * x + m[2][3] * x * x


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------
def run_one(trials: int, args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.work) / f"n{trials}"
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    result_file = folder / "result.json"
    argv = [sys.executable, str(HERE / "overhead.py"), "--child", args.mode, "--slots",
            str(args.slots), "--trials", str(trials), "--epochs", str(args.epochs),
            "--epoch-s", "0", "--cpus", str(args.cpus), "--work", str(folder),
            "--result", str(result_file)]
    log = folder / "child.log"
    for attempt in range(1, 7):
        load0 = os.getloadavg()[0]
        t0 = time.time()
        with log.open("w") as handle:
            child = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)
            sampler = RssSampler(child.pid)
            sampler.start()
            try:
                code = child.wait(timeout=args.child_timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                code = child.wait()
            sampler.stop()
        if code == 0 or overhead.RAY_START_TIMEOUT not in log.read_text():
            break
        print(f"(Ray did not start: retry {attempt})", end=" ", flush=True)
    if code != 0 or not result_file.exists():
        return {"trials": trials, "error": f"exit {code}", "log_tail": log.read_text()[-3000:]}
    result = json.loads(result_file.read_text())
    workspace = Path(result["workspace"])
    return {
        "trials": trials, "epochs": args.epochs, "slots": args.slots,
        "wall_s": result["wall_s"], "cli_total_s": result["cli_total_s"],
        "process_s": time.time() - t0, "loadavg_1min": [load0, os.getloadavg()[0]],
        "trials_per_s": trials / result["wall_s"],
        "throughput_early_late": result.get("throughput_early_late"),
        "statuses": result.get("statuses"), "results_seen": result.get("results_seen"),
        "driver_peak_rss_mb": result.get("driver_peak_rss_mb"),
        "driver_cpu_s": result.get("driver_cpu_s"),
        "mlflow_process_cpu_s": result.get("mlflow_process_cpu_s"),
        "sampled_peak_rss_mb": {k: v / 2**20 for k, v in sampler.peak.items()},
        "sampled_peak_total_mb": sampler.peak_total / 2**20,
        "peak_processes": sampler.peak_processes,
        "gap_mean_s": result["trainer_view"]["gap_s"]["mean"],
        "latency_p50_s": result["latency_s"]["p50"],
        "idle_fraction_trainer": result["trainer_view"]["idle_fraction"],
        "idle_fraction_scheduler": result["scheduler_view"]["idle_fraction"],
        "idle_fraction_steady_scheduler": result["scheduler_view"]["idle_fraction_steady"],
        "driver_timers": result.get("driver_timers"),
        "sizes": workspace_sizes(workspace),
        "workspace": str(workspace),
    }


GROWTH_KEYS = ("history.json", "ray/", "mlflow.db", "trials/", "workspace total")


def analyse(runs: list[dict[str, Any]], target: int) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    xs = [float(r["trials"]) for r in ok]
    series: dict[str, list[float]] = {f"size {k} (bytes)": [float(r["sizes"][k]) for r in ok]
                                      for k in GROWTH_KEYS}
    series["wall (s)"] = [r["wall_s"] for r in ok]
    series["driver peak RSS (MB)"] = [float(r["driver_peak_rss_mb"] or 0) for r in ok]
    series["driver CPU (s)"] = [float(r["driver_cpu_s"] or 0) for r in ok]
    for group in ("ray_system", "ray_workers"):
        series[f"{group} peak RSS (MB, all processes)"] = [
            float(r["sampled_peak_rss_mb"].get(group, 0)) for r in ok]
    for label in ("tune.TuneController.save_to_dir", "automl.Recorder.save"):
        series[f"{label} total (s)"] = [float((r["driver_timers"] or {}).get(label, {})
                                              .get("total_s", 0)) for r in ok]
    out: dict[str, Any] = {}
    for label, ys in series.items():
        fit = linear_fit(xs, ys)
        entry: dict[str, Any] = {"measured": dict(zip((int(x) for x in xs), ys)), "fit": fit}
        if fit and target not in entry["measured"]:
            entry[f"EXTRAPOLATED linear @ {target}"] = fit["a"] + fit["b"] * target
            quad = quadratic_extrapolation(xs, ys, target)
            if quad is not None:
                entry[f"EXTRAPOLATED quadratic @ {target}"] = quad
        if len(xs) >= 2:
            entry["per_trial_first_to_last"] = [ys[0] / xs[0], ys[-1] / xs[-1]]
        out[label] = entry
    return out


def mb(value: Any) -> str:
    return "-" if value is None else f"{value / 2**20:.2f}"


def markdown(doc: dict[str, Any]) -> str:
    target = doc["config"]["target"]
    runs = [r for r in doc["runs"] if "error" not in r]
    lines = [f"# Scale: trials × {doc['config']['epochs']} epochs at {doc['config']['slots']} slots",
             "", f"{doc['machine']}; {doc['date']}; mode `{doc['config']['mode']}` (the real "
             f"`automl run` path, zero-compute trainer). This machine is shared: load = 1-min load "
             f"average before/after.", "",
             "| trials | wall s | trials/s | trials/s first 20 % / last 20 % | driver peak RSS MB | "
             "Ray system peak MB | Ray workers peak MB | driver CPU s | history.json MB | ray/ MB | "
             "mlflow.db MB | trials/ MB | load |", "|" + "---|" * 13]
    for r in runs:
        s, p = r["sizes"], r["sampled_peak_rss_mb"]
        el = r.get("throughput_early_late") or {}
        lines.append(
            f"| {r['trials']} | {r['wall_s']:.1f} | {r['trials_per_s']:.2f} | "
            f"{overhead.fmt(el.get('first'), 2)} / {overhead.fmt(el.get('last'), 2)} | "
            f"{overhead.fmt(r['driver_peak_rss_mb'], 0)} | {p.get('ray_system', 0):.0f} | "
            f"{p.get('ray_workers', 0):.0f} | {overhead.fmt(r['driver_cpu_s'], 1)} | "
            f"{mb(s['history.json'])} | {mb(s['ray/'])} | {mb(s['mlflow.db'])} | {mb(s['trials/'])} "
            f"| {r['loadavg_1min'][0]:.1f}/{r['loadavg_1min'][1]:.1f} |")
    for r in doc["runs"]:
        if "error" in r:
            lines.append(f"| {r['trials']} | error: {r['error']} |" + "|" * 11)
    lines += ["", f"## Growth (fit y = a + b·trials over the measured points; **values at {target} "
                  f"trials are EXTRAPOLATED** unless measured)", "",
              "| quantity | per trial, smallest → largest run (RSS: measured MB) | slope b per trial | worst residual | "
              f"quadratic share at max | EXTRAPOLATED linear @ {target} | EXTRAPOLATED quadratic "
              f"@ {target} |", "|" + "---|" * 7]
    for label, entry in doc["growth"].items():
        fit = entry.get("fit") or {}
        per = entry.get("per_trial_first_to_last") or [None, None]
        if "RSS" in label:  # a level, not a per-trial cost: show the measured values
            values = list(entry["measured"].values())
            per = [values[0], values[-1]]
        is_bytes = "bytes" in label
        conv = (lambda v: mb(v) + " MB") if is_bytes else (lambda v: overhead.fmt(v, 2))
        conv_small = (lambda v: "-" if v is None else f"{v / 1024:.1f} KiB") if is_bytes else \
            (lambda v: overhead.fmt(v, 4))
        lines.append(
            f"| {label} | {conv_small(per[0])} → {conv_small(per[1])} | {conv_small(fit.get('b'))} | "
            f"{overhead.fmt(fit.get('worst_relative_residual'), 3)} | "
            f"{overhead.fmt(fit.get('quadratic_share_at_max'), 3)} | "
            f"{conv(entry.get(f'EXTRAPOLATED linear @ {target}'))} | "
            f"{conv(entry.get(f'EXTRAPOLATED quadratic @ {target}'))} |")
    if runs:
        last = runs[-1]
        lines += ["", f"## Driver time by component, {last['trials']} trials (per call: all calls, "
                      f"first 10 % of calls, last 10 %)", "",
                  "| component | calls | total s | per call ms | first 10 % ms | last 10 % ms |",
                  "|---|---|---|---|---|---|"]
        for key, t in (last.get("driver_timers") or {}).items():
            lines.append(f"| `{key}` | {t['calls']} | {t['total_s']:.2f} | {t['per_call_ms']:.1f} | "
                         f"{overhead.fmt(t.get('first_decile_ms'), 1)} | "
                         f"{overhead.fmt(t.get('last_decile_ms'), 1)} |")
        lines += ["", f"Largest files of Tune's state ({last['trials']} trials): " + ", ".join(
            f"`{f['path']}` {f['bytes'] / 1024:.0f} KiB" for f in last["sizes"]["ray/ largest files"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", default="30,100,300", help="comma-separated trial counts")
    p.add_argument("--epochs", type=int, default=9)
    p.add_argument("--slots", type=int, default=16)
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    p.add_argument("--target", type=int, default=1000, help="extrapolate to this many trials")
    p.add_argument("--mode", default="automl",
                   help="automl, automl_before, automl_nomlflow, or automl with options such as "
                        "+everystep (see overhead.py)")
    p.add_argument("--work", default="/tmp/automl-bench/scale")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--name", default="scale")
    p.add_argument("--child-timeout", type=float, default=3600)
    p.add_argument("--render", action="store_true",
                   help="only re-render OUT/NAME.md (and the growth fit) from OUT/NAME.json")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.render:
        doc = json.loads((out / f"{args.name}.json").read_text())
        doc["growth"] = analyse(doc["runs"], doc["config"]["target"])
        (out / f"{args.name}.json").write_text(json.dumps(doc, indent=1, default=str))
        (out / f"{args.name}.md").write_text(markdown(doc))
        print(markdown(doc))
        return 0
    doc: dict[str, Any] = {
        "name": args.name, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": overhead.machine(),
        "config": {"epochs": args.epochs, "slots": args.slots, "cpus": args.cpus,
                   "target": args.target, "mode": args.mode},
        "runs": [],
    }
    if "notemplate" not in overhead.mode_options(args.mode)[1]:
        Path(args.work).mkdir(parents=True, exist_ok=True)
        print(f"MLflow store template: {overhead.warm_store_template(Path(args.work))}", flush=True)
    for trials in (int(t) for t in args.trials.split(",")):
        print(f"{trials} trials × {args.epochs} epochs at {args.slots} slots ...", end=" ", flush=True)
        r = run_one(trials, args)
        doc["runs"].append(r)
        if "error" in r:
            print(f"ERROR {r['error']}\n{r['log_tail']}", flush=True)
            continue
        print(f"wall {r['wall_s']:.1f}s, driver peak RSS {overhead.fmt(r['driver_peak_rss_mb'], 0)} MB,"
              f" history {mb(r['sizes']['history.json'])} MB, ray/ {mb(r['sizes']['ray/'])} MB, "
              f"mlflow.db {mb(r['sizes']['mlflow.db'])} MB", flush=True)
    doc["growth"] = analyse(doc["runs"], args.target)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(doc, indent=1, default=str))
    (out / f"{args.name}.md").write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
