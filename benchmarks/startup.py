"""Start-up of ``automl run``: from the command to the first trial's process, against bare Ray.

Per repetition, in the same invocation and alternating:

* ``bare``: ``python -c "import ray; ray.init(...)"`` (the engine's own ``ray.init`` arguments):
  command start → ``ray.init`` returned;
* ``automl``: ``automl run`` (zero trainer, random search, 2 trials × 1 epoch, MLflow on, a warm
  store template as for a user's second experiment in a workspace root): command start → the
  first trial's trainer process started (``t_exec`` in the zero trainer's ``timing.jsonl``);
  *after Ray* = automl − bare; *in the run* = first trial − the moment the run's own
  ``ray.init`` returned (``ray_ready`` in its state.json): the issue's "first trial ≤ 2 s after
  ``ray.init`` returns";
* ``refusal``: ``automl run --algo nosuch`` and ``--root-dir /nonexistent``: command → exit 2.

Conditions: ``idle`` (whatever else runs on this machine: the load column says how idle it
was) and ``loaded`` (plus 2 busy-loop processes per CPU started by this script). Writes
``results/startup.json`` and ``startup.md``.

    python benchmarks/startup.py                # 3 repetitions per condition
    python benchmarks/startup.py --repeat 5 --name startup-5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from overhead import RAY_START_TIMEOUT, make_zero_skill, warm_store_template  # noqa: E402
from tao_status import read_timing  # noqa: E402

RESULTS = HERE / "results"
RETRIES: list[str] = []  # commands run again because Ray did not start (reported)
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}

BARE = """
import time
import ray
ray.init(address="local", num_cpus={cpus}, include_dashboard=False, log_to_driver=False,
         logging_level="WARNING", configure_logging=True)
print("READY", time.time(), flush=True)
ray.shutdown()
"""


def _run(argv: list[str], timeout: float) -> tuple[float, subprocess.CompletedProcess]:
    """(command start, result); retried while Ray fails to start at all (``RAY_START_TIMEOUT``:
    its raylet gets a fixed 30 s, which a machine at load 50 can miss)."""
    for _ in range(6):
        t0 = time.time()
        out = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=timeout)
        if out.returncode == 0 or RAY_START_TIMEOUT not in out.stderr + out.stdout:
            break
        RETRIES.append(" ".join(argv[:4]))
    return t0, out


def bare(cpus: int) -> float:
    """Seconds from the command to ``ray.init`` returning (same arguments as the engine's)."""
    t0, out = _run([sys.executable, "-c", BARE.format(cpus=cpus)], 600)
    ready = [float(line.split()[1]) for line in out.stdout.splitlines()
             if line.startswith("READY")]
    if not ready:
        raise SystemExit(f"ray.init failed: {out.stderr[-2000:]}")
    return ready[0] - t0


def automl(work: Path, skill: Path, cpus: int, index: int) -> dict[str, float]:
    """Seconds from ``automl run`` to its first trial's trainer process, and to its exit."""
    workspace = work / f"ws{index}"
    shutil.rmtree(workspace, ignore_errors=True)
    t0, out = _run(
        [sys.executable, "-m", "automl.cli", "run", "--skill-dir", str(skill), "--algo",
         "random", "--max-recommendations", "2", "--max-epochs", "1", "--max-concurrent", "2",
         "--cpus-per-trial", f"{cpus / 2:g}", "--progress", "none", "--workspace", str(workspace),
         "--workspace-root", str(work), "--seed", str(index)], 900)
    total = time.time() - t0
    if out.returncode != 0:
        raise SystemExit(f"automl run exited {out.returncode}: {out.stderr[-2000:]}")
    starts = [line["t_exec"] for folder in (workspace / "trials").iterdir()
              for line in read_timing(folder / "results" / "train")[:1]]
    ray_ready = json.loads((workspace / "state.json").read_text())["ray_ready"]
    shutil.rmtree(workspace, ignore_errors=True)
    return {"first_trial_s": min(starts) - t0, "total_s": total,
            "in_run_after_ray_s": min(starts) - ray_ready}


def refusal(args: list[str]) -> float:
    t0 = time.time()
    out = subprocess.run([sys.executable, "-m", "automl.cli", "run", *args], capture_output=True,
                         text=True, env=ENV, timeout=120)
    elapsed = time.time() - t0
    if out.returncode != 2:
        raise SystemExit(f"expected exit 2 from automl run {args}: {out.returncode} {out.stderr}")
    return elapsed


def condition(name: str, repeat: int, work: Path, skill: Path, cpus: int) -> dict[str, Any]:
    hogs = []
    if name == "loaded":
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(2 * cpus)]
    try:
        load0 = os.getloadavg()[0]
        rows = []
        for i in range(repeat):
            b = bare(cpus)
            a = automl(work, skill, cpus, i)
            rows.append({"bare_ray_init_s": b, **a, "after_ray_s": a["first_trial_s"] - b,
                         "refusal_algo_s": refusal(["--algo", "nosuch"]),
                         "refusal_root_s": refusal(["--root-dir", "/nonexistent/data"])})
        return {"condition": name, "hogs": len(hogs), "load_1min": [load0, os.getloadavg()[0]],
                "runs": rows,
                "median": {k: statistics.median(r[k] for r in rows) for k in rows[0]}}
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def markdown(doc: dict[str, Any]) -> str:
    lines = [f"# Start-up of `automl run` ({doc['name']})", "",
             f"{doc['machine']}; {doc['date']}; {doc['repeat']} repetitions per condition, "
             f"medians (every run in the .json). *after Ray* = first trial − bare `ray.init`, "
             f"measured alternately in the same invocation; *in the run* = first trial − the "
             f"moment the run's own `ray.init` returned (`ray_ready` in its state.json). Load = 1-min load average "
             f"before/after (the machine is shared).", "",
             "| condition | bare `ray.init` s | `automl run` → first trial process s | "
             "after Ray s | in the run: after its `ray.init` s (target ≤ 2) | `automl run` total s (2 trials × 1 epoch) | "
             "refusal `--algo nosuch` s | refusal `--root-dir` missing s | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in doc["conditions"]:
        m = c["median"]
        label = c["condition"] + (f" (+{c['hogs']} busy loops)" if c["hogs"] else "")
        lines.append(f"| {label} | {m['bare_ray_init_s']:.2f} | {m['first_trial_s']:.2f} | "
                     f"{m['after_ray_s']:.2f} | {m['in_run_after_ray_s']:.2f} | {m['total_s']:.2f} | {m['refusal_algo_s']:.2f} | "
                     f"{m['refusal_root_s']:.2f} | "
                     f"{c['load_1min'][0]:.1f}/{c['load_1min'][1]:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--conditions", default="idle,loaded")
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    p.add_argument("--work", default="/tmp/automl-bench/startup")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--name", default="startup")
    args = p.parse_args(argv)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    skill = make_zero_skill(work / "skill")
    warm_store_template(work)
    doc = {"name": args.name, "repeat": args.repeat,
           "machine": f"{platform.machine()} {os.cpu_count()} cores, Python "
                      f"{platform.python_version()}",
           "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "conditions": [condition(c, args.repeat, work, skill, args.cpus)
                          for c in args.conditions.split(",")]}
    doc["ray_start_retries"] = RETRIES
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(doc, indent=1))
    (out / f"{args.name}.md").write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
