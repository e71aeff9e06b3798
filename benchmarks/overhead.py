#!/usr/bin/env python3
"""Controller overhead of ``automl run`` versus plain Ray Tune, with a zero-compute trainer.

Runs the same trials (``--trials`` × ``--epochs``) at 1, 4 and 16 concurrent slots through:

* ``automl``          the real ``automl run`` path (``automl.cli.main``: prepare, MLflow tracker,
                      Recorder/history.json, retention, Optuna random search), trainer =
                      ``benchmarks/zero_trainer.py`` (one process per trial, TAO contract);
* ``automl_before``   the same with the controller as it was before the overhead cuts of issue 8
                      (``BEFORE``: Tune's state saved at every step, retention rescanning every
                      trial, MLflow's own store creation, sleep between polls), for an A/B;
* ``automl_nomlflow`` the same as ``automl`` with the MLflow tracker replaced by a no-op observer (what MLflow
                      costs the driver);
* ``tune_default``    plain Ray Tune, a function trainable that only calls ``tune.report``
                      N times, every Tune default (auto loggers, no actor reuse, auto
                      experiment-state period, chdir to the trial folder);
* ``tune_ours``       the same trainable with automl's Tune settings (``engine._RAY_ENV``: no auto
                      loggers, state saved every step; ``reuse_actors=True``);
* ``tune_proc``       ``tune_ours`` whose trainable runs ``zero_trainer.py`` to completion in a
                      subprocess and then reports its lines: what one process per trial costs
                      under plain Tune, without automl's tailing/recording.

Each configuration runs in its own Python process (fresh ``ray.init``, which is excluded from
the timings) and all ratios come from the same invocation. Per run it measures:

* wall: the experiment (``engine.execute`` / ``Tuner.fit``), Ray start-up excluded;
* gap: on the same slot, next trial start - previous trial end, seen from the trainer (trainer
  process start ``t_exec`` → its last status line; plain Tune: function entry → last report) and
  from the scheduler (Tune's on_trial_start → on_trial_complete). The slot is the Ray worker
  (actors are reused; without reuse, slots are assigned FIFO: a trial takes the earliest freed slot);
* latency: status line ``written_at`` (the epoch line that closes a result, from the trainer's
  ``timing.jsonl`` sidecar: status lines carry TAO's keys only) → the driver's callback seeing
  that result;
* idle-slot fraction: 1 - Σ trial busy time / (slots × wall), trainer and scheduler view;
* for ``automl``: a per-trial timeline from file timestamps and the driver time spent in Tune's
  experiment-state saves, history.json writes, retention, the searcher and MLflow.

Usage::

    python benchmarks/overhead.py                        # 32 trials x 3 epochs at 1/4/16 slots
    python benchmarks/overhead.py --slots 16 --trials 64 --modes automl,tune_ours
    python benchmarks/overhead.py --epoch-s 2 --slots 4,16   # trials of a realistic length

Results: ``benchmarks/results/overhead.json`` and ``overhead.md`` (``--name`` changes the stem).
Workspaces go under ``--work`` (default /tmp/automl-bench), never into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # tao_status, skill_folder: this folder, also when imported
from tao_status import read_timing, timed_results  # noqa: E402 - the zero trainer's sidecar

ZERO_TRAINER = HERE / "zero_trainer.py"
RESULTS = HERE / "results"
# Ray gives its raylet a fixed 30 s to register (ray/_private/node.py): on a machine at load 50
# that can fail before anything is measured; such a run is retried (and says so).
RAY_START_TIMEOUT = "timed out during startup"
MODES = ("automl", "automl_before", "automl_nomlflow", "tune_default", "tune_ours", "tune_proc")

# ---------------------------------------------------------------------------------------------
# The zero trainer's skill folder (like tests/helpers/skills.py make_fake_skill)
# ---------------------------------------------------------------------------------------------
ZERO_SCHEMA = {
    "automl_default_parameters": ["hp.x", "hp.y"],
    "automl_disabled_parameters": [],
    "default": {},
    "type": "object",
    "properties": {
        "results_dir": {"type": "string", "default": ""},
        "hp": {"type": "collection", "properties": {
            "x": {"type": "float", "default": 0.5, "minimum": 0.0, "maximum": 1.0,
                  "automl_enabled": True},
            "y": {"type": "int", "default": 1, "minimum": 1, "maximum": 5, "automl_enabled": True},
        }},
        "train": {"type": "collection", "properties": {
            "num_epochs": {"type": "int", "default": 3, "minimum": 1, "maximum": float("inf")},
            "checkpoint_interval": {"type": "int", "default": 1, "minimum": 1},
            "validation_interval": {"type": "int", "default": 1, "minimum": 1},
            "resume_training_checkpoint_path": {"type": "string", "default": ""},
            "results_dir": {"type": "string", "default": ""},
        }},
        "zero": {"type": "collection", "properties": {
            "epoch_s": {"type": "float", "default": 0.0, "minimum": 0.0},
        }},
    },
}
ZERO_TEMPLATE = {
    "results_dir": "",
    "hp": {"x": 0.5, "y": 1},
    "train": {"num_epochs": 3, "checkpoint_interval": 1, "validation_interval": 1,
              "resume_training_checkpoint_path": "", "results_dir": ""},
    "zero": {"epoch_s": 0.0},
}


def make_zero_skill(folder: Path) -> Path:
    """A TAO skill folder whose train command is ``python zero_trainer.py train -e SPEC``."""
    from skill_folder import write_skill  # same folder

    return write_skill(folder, "zero-skill", ZERO_SCHEMA, ZERO_TEMPLATE,
                       f"{sys.executable} {ZERO_TRAINER} train -e {{config_path}}")


# ---------------------------------------------------------------------------------------------
# Small statistics helpers
# ---------------------------------------------------------------------------------------------
def summary(values: list[float]) -> dict[str, float | int | None]:
    values = sorted(v for v in values if v is not None)
    if not values:
        return {"n": 0, "mean": None, "p50": None, "p95": None, "max": None}

    def pct(p: float) -> float:
        return values[min(len(values) - 1, max(0, round(p * (len(values) - 1))))]

    return {"n": len(values), "mean": statistics.fmean(values), "p50": pct(0.5),
            "p95": pct(0.95), "max": values[-1]}


def slot_gaps(intervals: list[dict[str, Any]], slots: int) -> tuple[list[float], str]:
    """Gaps between consecutive trials on one slot.

    ``intervals``: [{start, end, slot}] (slot: the Ray worker pid, or None). With actor reuse
    (at most ``slots`` distinct workers) a slot is a worker; otherwise trials are assigned FIFO:
    each trial takes the slot freed earliest before it starts.
    """
    done = [i for i in intervals if i.get("start") is not None and i.get("end") is not None]
    workers = {i.get("slot") for i in done}
    if None not in workers and len(workers) <= slots:
        gaps = []
        for worker in workers:
            mine = sorted((i for i in done if i["slot"] == worker), key=lambda i: i["start"])
            gaps += [b["start"] - a["end"] for a, b in zip(mine, mine[1:])]
        return gaps, "same Ray worker"
    import heapq

    free: list[float] = []
    gaps = []
    for interval in sorted(done, key=lambda i: i["start"]):
        if len(free) >= slots:
            gaps.append(interval["start"] - heapq.heappop(free))
        heapq.heappush(free, interval["end"])
    return gaps, "FIFO slot assignment"


def idle_fraction(intervals: list[dict[str, Any]], slots: int, t0: float, t1: float) -> float | None:
    busy = sum(max(0.0, min(i["end"], t1) - max(i["start"], t0)) for i in intervals
               if i.get("start") is not None and i.get("end") is not None)
    span = slots * (t1 - t0)
    return None if span <= 0 else 1.0 - busy / span


def analyse(intervals: dict[str, list[dict[str, Any]]], latency: list[float], slots: int,
            wall: tuple[float, float]) -> dict[str, Any]:
    """gap / idle statistics for the trainer view and the scheduler view."""
    out: dict[str, Any] = {"latency_s": summary(latency)}
    for view, rows in intervals.items():
        gaps, method = slot_gaps(rows, slots)
        starts = [r["start"] for r in rows if r.get("start") is not None]
        ends = [r["end"] for r in rows if r.get("end") is not None]
        busy = [r["end"] - r["start"] for r in rows if r.get("start") and r.get("end")]
        out[view] = {
            "gap_s": summary(gaps), "gap_method": method,
            "trial_busy_s": summary(busy),
            "idle_fraction": idle_fraction(rows, slots, *wall),
            # the window where all slots could be busy: first trial start .. last trial start
            "idle_fraction_steady": (idle_fraction(rows, slots, min(starts), max(starts))
                                     if len(starts) > slots else None),
            "first_start_after_s": (min(starts) - wall[0]) if starts else None,
            # first trial start .. last trial end: the experiment without Tune's start/stop
            "run_window_s": (max(ends) - min(starts)) if starts and ends else None,
            "last_end_before_s": (wall[1] - max(ends)) if ends else None,
        }
    return out


# ---------------------------------------------------------------------------------------------
# Driver-side instrumentation (wrapping functions at run time; src/ is not modified)
# ---------------------------------------------------------------------------------------------
class Timers:
    """Wraps functions (at run time) and keeps every call's duration."""

    def __init__(self) -> None:
        self.data: dict[str, list[float]] = {}

    def wrap(self, owner: Any, name: str, label: str | None = None) -> None:
        original = getattr(owner, name)
        label = label or f"{getattr(owner, '__name__', owner)}.{name}"
        durations = self.data.setdefault(label, [])

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                durations.append(time.perf_counter() - start)

        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(owner, name, wrapper)

    def as_dict(self) -> dict[str, dict[str, float]]:
        out = {}
        for label, values in sorted(self.data.items(), key=lambda kv: -sum(kv[1])):
            if not values:
                continue
            k = max(1, len(values) // 10)
            out[label] = {"calls": len(values), "total_s": sum(values),
                          "per_call_ms": 1000 * sum(values) / len(values),
                          "first_decile_ms": 1000 * sum(values[:k]) / k,
                          "last_decile_ms": 1000 * sum(values[-k:]) / k}
        return out


def wrap_tune(timers: Timers) -> None:
    """Time Tune's controller loop and the parts of its experiment-state save."""
    from ray.tune.callback import CallbackList
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.search.search_generator import SearchGenerator

    for name in ("step", "checkpoint", "save_to_dir", "_get_trial_checkpoints"):
        timers.wrap(TuneController, name, f"tune.TuneController.{name}")
    timers.wrap(SearchGenerator, "save_to_dir", "tune.SearchGenerator.save_to_dir (searcher pickle)")
    timers.wrap(CallbackList, "save_to_dir", "tune.CallbackList.save_to_dir (callbacks pickle)")


def peak_rss_mb() -> float | None:
    """This process's peak resident set size (VmHWM)."""
    for text in Path("/proc/self/status").read_text().splitlines():
        if text.startswith("VmHWM:"):
            return int(text.split()[1]) / 1024
    return None


def early_late(ends: list[float]) -> dict[str, float] | None:
    """Trials finished per second over the first and the last 20 % of completions."""
    k = max(2, len(ends) // 5)
    if len(ends) < 2 * k:
        return None
    first, last = ends[:k], ends[-k:]
    return {"first": (k - 1) / max(1e-9, first[-1] - first[0]),
            "last": (k - 1) / max(1e-9, last[-1] - last[0])}


def process_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def init_ray(cpus: int, ours: bool) -> None:
    """Environment + ray.init, before any timing (the same call the engine makes)."""
    if ours:
        from automl.run.engine import set_ray_env  # does not import ray

        set_ray_env()
    else:  # Tune defaults; only what this machine needs to start Ray at all
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
             logging_level="WARNING", configure_logging=True)


# ---------------------------------------------------------------------------------------------
# Child: the real `automl run` path
# ---------------------------------------------------------------------------------------------
class Probe:
    """An automl observer: records when the driver sees each event (time.time())."""

    def __init__(self) -> None:
        self.starts: dict[str, float] = {}
        self.ends: dict[str, float] = {}
        self.seen: list[tuple[str, int, float]] = []  # (rec_id, epochs completed, seen at)
        self.result_times: list[float] = []

    def experiment_started(self, payload: dict[str, Any]) -> None:
        pass

    def experiment_ended(self, doc: dict[str, Any]) -> None:
        pass

    def trial_started(self, record: Any) -> None:
        self.starts.setdefault(record.rec_id, time.time())

    def trial_result(self, record: Any, result: dict[str, Any]) -> None:
        now = time.time()
        self.result_times.append(now)
        self.seen.append((record.rec_id, int(result["epoch"]), now))

    def latency(self, workspace: Path) -> list[float]:
        """Status line -> driver, per result seen: the trainer's timing sidecar (read after the
        run, not in the driver's callback) gives when the line that made the result (the epoch
        line closing that epoch) was written."""
        written: dict[str, dict[int, float]] = {}
        out = []
        for rec_id, epochs, now in self.seen:
            if rec_id not in written:
                written[rec_id] = {
                    r.epochs: t for t, r in timed_results(workspace / "trials" / rec_id / "results"
                                                          / "train") if t is not None}
            if epochs in written[rec_id]:
                out.append(now - written[rec_id][epochs])
        return out

    def trial_ended(self, record: Any) -> None:
        self.ends[record.rec_id] = time.time()


class NullTracker:
    """Stands in for MlflowTracker (``automl_nomlflow``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def trial_timeline(workspace: Path, probe: Probe) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per trial: driver start → spec written → trainer exec → first/last line → outcome → end."""
    rows = []
    for folder in sorted((workspace / "trials").iterdir()):
        rec_id = folder.name
        lines = read_timing(folder / "results" / "train")  # one entry per status line
        if not lines:
            continue
        spec = folder / "spec_segment_0.yaml"
        log = folder / "train.log"  # opened (created) by the launcher just before Popen
        try:
            outcome_t = json.loads((folder / "outcome.json").read_text()).get("time")
        except (OSError, ValueError):
            outcome_t = None
        rows.append({
            "rec_id": rec_id,
            "slot": lines[0].get("ppid"),
            "driver_start": probe.starts.get(rec_id),
            "spec_written": spec.stat().st_mtime if spec.exists() else None,
            "log_opened": log.stat().st_mtime if log.exists() else None,
            "t_exec": lines[0].get("t_exec"),
            "first_line": lines[0].get("written_at"),
            "last_line": lines[-1].get("written_at"),
            "outcome": outcome_t,
            "driver_end": probe.ends.get(rec_id),
        })
    steps = [("driver_start", "spec_written", "dispatch to worker + spec built"),
             ("spec_written", "log_opened", "job built, launcher called"),
             ("log_opened", "t_exec", "trainer spawn + interpreter start"),
             ("t_exec", "first_line", "trainer imports + spec read"),
             ("first_line", "last_line", "trainer 'training' (zero)"),
             ("last_line", "outcome", "exit detected + outcome.json (worker)"),
             ("outcome", "driver_end", "trial end reaches driver")]
    breakdown = {}
    for a, b, label in steps:
        values = [r[b] - r[a] for r in rows if r.get(a) is not None and r.get(b) is not None]
        breakdown[f"{a}->{b}"] = {"what": label, **summary(values)}
    # the scheduler's part of the gap: a trial's end on the driver → the next start on its slot
    by_slot: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        by_slot.setdefault(row["slot"], []).append(row)
    nxt = []
    for mine in by_slot.values():
        mine.sort(key=lambda r: r["driver_start"] or 0)
        nxt += [b["driver_start"] - a["driver_end"] for a, b in zip(mine, mine[1:])
                if a["driver_end"] and b["driver_start"]]
    breakdown["driver_end->next driver_start"] = {"what": "controller schedules the next trial "
                                                          "on the slot", **summary(nxt)}
    return rows, breakdown


# What the controller did before the cuts of issue 8 §2 (each restorable on its own, for A/B
# measurements in one invocation): Tune saved its state at every controller step, retention
# rescanned every finished trial at every trial end, each new MLflow store ran MLflow's schema
# migrations, and the trial loop slept its poll interval instead of waiting on the trainer.
BEFORE = ("everystep", "rescan", "notemplate", "sleepwait")


def mode_options(mode: str) -> tuple[str, dict[str, str]]:
    """``automl+nomlflow+everystep+poll=0.02`` -> ("automl", {...}); ``automl_before`` = automl
    with every option of BEFORE."""
    base, *parts = mode.split("+")
    options = dict(part.split("=", 1) if "=" in part else (part, "1") for part in parts)
    if base == "automl_nomlflow":
        base, options["nomlflow"] = "automl", "1"
    if base == "automl_before":
        base = "automl"
        options.update({name: "1" for name in BEFORE})
    return base, options


def save_at_every_step() -> None:
    """Before: Tune saved its experiment state at every controller step (no automl.run.ray.tune_state
    gate; TUNE_GLOBAL_CHECKPOINT_S=0 still applies)."""
    import contextlib

    from automl.run.ray import tune_state

    tune_state.save_state_on_change = lambda: contextlib.nullcontext(False)


def full_rescan_retention(recorder_cls: Any) -> None:
    """Before: ``Recorder._retain`` pruned every finished trial at every trial end."""
    from automl.results.best import choose_best
    from automl.results.retention import prune

    def _retain(self: Any) -> None:
        if self.experiment.get("keep_checkpoints", "best") != "best":
            return
        records = list(self.records.values())
        best = choose_best(records, self.metric, self.experiment.get("direction", "max"))
        self.reclaimed += prune(self.workspace, records, best.record.rec_id if best else None,
                                keep_rec_ids=set(), needed_paths=set())

    recorder_cls._retain = _retain


def no_store_template() -> None:
    """Before: MLflow created every workspace store itself (its schema migrations: ~7 s)."""
    from automl.observers import tracking_store

    tracking_store.copy_store_template = lambda db, template: False
    tracking_store.save_store_template = lambda db, template: None


def sleep_between_polls() -> None:
    """Before: the trial loop slept its poll interval; now it waits on the trainer process."""
    from launchers.local import LocalHandle

    def wait(self: Any, timeout_s: float | None = None) -> int | None:
        time.sleep(timeout_s or 0)
        return None

    LocalHandle.wait = wait


def warm_store_template(root: Path) -> Path:
    """The MLflow store template in ``root/_cache`` (made once, as by a first experiment there).

    Every ``automl`` run then starts from it, as a user's second and later experiments in the
    same workspace root do; ``+notemplate`` measures the first one.
    """
    from automl.observers.tracking import MlflowTracker
    from automl.observers.tracking_store import store_template, workspace_tracking_uri

    cache = root / "_cache"
    template = store_template(cache)
    if not template.exists():
        ws = root / "template-warmup"
        shutil.rmtree(ws, ignore_errors=True)
        ws.mkdir(parents=True)
        tracker = MlflowTracker(workspace_tracking_uri(ws), "warmup", ws, template_dir=cache)
        tracker.experiment_started({"experiment_id": "warmup", "metric": "val_miou"})
        tracker.close(timeout=1800)  # MLflow creates the schema: minutes on a loaded box
        shutil.rmtree(ws, ignore_errors=True)
    return template


def measure_worker_cpu(cls: Any) -> dict[str, float]:
    """CPU seconds of the MLflow logging process (``automl.observers.tracking_worker``), read from /proc
    when it has exited but is not yet reaped (a zombie keeps its CPU times), and how long the
    driver's ``close`` waited for it to write what was queued after the run ended."""
    out: dict[str, float] = {}
    real_close = cls.close

    def close(self: Any, timeout: float = 120.0) -> None:
        t0 = time.time()
        if not self._closed:
            self._queue.put(None)  # what close() does first; then wait for the exit
            self._feeder.join(timeout)
            stat = Path(f"/proc/{self._proc.pid}/stat")
            while True:
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    break
                if fields[0] == "Z":
                    out["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                    break
                time.sleep(0.01)
        real_close(self, timeout)
        out["close_s"] = time.time() - t0

    cls.close = close
    return out


def child_automl(args: argparse.Namespace) -> dict[str, Any]:
    _, options = mode_options(args.mode)
    if "ckpt" in options:
        os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = options["ckpt"]
    init_ray(args.cpus, ours=True)
    from ray.tune.search.optuna import OptunaSearch

    from automl import cli
    from automl.run import engine, recorder
    from automl.observers import tracking_worker

    work = Path(args.work)
    skill = make_zero_skill(work / "skill")
    workspace = work / "workspace"
    shared = work.parent / "_cache"  # the MLflow store template (warm_store_template)
    if "notemplate" not in options and shared.is_dir():
        shutil.copytree(shared, work / "_cache", dirs_exist_ok=True)
    probe = Probe()
    timers = Timers()
    if "rescan" in options:
        full_rescan_retention(recorder.Recorder)
    if "everystep" in options:
        save_at_every_step()
    if "notemplate" in options:
        no_store_template()
    if "sleepwait" in options:
        sleep_between_polls()
    wrap_tune(timers)
    for name in ("save", "_retain", "on_trial_start", "on_trial_result", "_finish"):
        timers.wrap(recorder.Recorder, name, f"automl.Recorder.{name}")
    for name in ("suggest", "on_trial_complete"):
        timers.wrap(OptunaSearch, name, f"tune.OptunaSearch.{name}")
    if "poll" in options:
        import functools

        from automl.run import trial

        trial.TrialContext = functools.partial(trial.TrialContext, poll_s=float(options["poll"]))
    worker_cpu: dict[str, float] = {}
    if "nomlflow" in options:
        tracking_worker.TrackingProcess = NullTracker
    else:
        worker_cpu = measure_worker_cpu(tracking_worker.TrackingProcess)
        for name in ("trial_started", "trial_result", "trial_ended", "close"):
            timers.wrap(tracking_worker.TrackingProcess, name, f"automl.TrackingProcess.{name}")
    wall: dict[str, float] = {}
    real_execute = engine.execute

    def execute(prepared: Any, observers: list[Any] | None = None, restore: bool = False) -> Any:
        cpu0, wall["start"] = process_cpu_s(), time.time()
        try:
            return real_execute(prepared, observers=[*(observers or []), probe], restore=restore)
        finally:
            wall["end"] = time.time()
            wall["driver_cpu_s"] = process_cpu_s() - cpu0

    engine.execute = execute
    argv = ["run", "--skill-dir", str(skill), "--algo", "random",
            "--max-recommendations", str(args.trials), "--max-epochs", str(args.epochs),
            "--max-concurrent", str(args.slots), "--cpus-per-trial", f"{args.cpus / args.slots:g}",
            "--progress", "none", "--workspace", str(workspace), "--seed", "0",
            "--set", f"zero.epoch_s={args.epoch_s}"]
    t0 = time.time()
    code = cli.main(argv)
    wall["cli_total_s"] = time.time() - t0
    if code != 0:
        raise SystemExit(f"automl run exited {code}")
    rows, breakdown = trial_timeline(workspace, probe)
    intervals = {
        "trainer_view": [{"start": r["t_exec"], "end": r["last_line"], "slot": r["slot"]} for r in rows],
        "scheduler_view": [{"start": r["driver_start"], "end": r["driver_end"], "slot": r["slot"]}
                           for r in rows],
    }
    history = json.loads((workspace / "history.json").read_text())
    statuses: dict[str, int] = {}
    for trial in history["trials"]:
        statuses[trial["status"]] = statuses.get(trial["status"], 0) + 1
    return {
        "wall_s": wall["end"] - wall["start"], "cli_total_s": wall["cli_total_s"],
        "driver_cpu_s": wall["driver_cpu_s"], "mlflow_process_cpu_s": worker_cpu.get("cpu_s"),
        "mlflow_close_s": worker_cpu.get("close_s"),
        "results_seen": len(probe.result_times), "trials_seen": len(rows), "statuses": statuses,
        **analyse(intervals, probe.latency(workspace), args.slots, (wall["start"], wall["end"])),
        "timeline": breakdown, "driver_timers": timers.as_dict(),
        "options": options,
        "driver_peak_rss_mb": peak_rss_mb(),
        "throughput_early_late": early_late(sorted(probe.ends.values())),
        "workspace": str(workspace),
    }


# ---------------------------------------------------------------------------------------------
# Child: plain Ray Tune
# ---------------------------------------------------------------------------------------------
def child_tune(args: argparse.Namespace) -> dict[str, Any]:
    ours = args.mode in ("tune_ours", "tune_proc")
    init_ray(args.cpus, ours=ours)
    from ray import tune

    timers = Timers()
    wrap_tune(timers)
    epochs, epoch_s = args.epochs, args.epoch_s
    work = Path(args.work)

    def nothing(config: dict[str, Any]) -> None:
        t0, pid = time.time(), os.getpid()
        for epoch in range(1, epochs + 1):
            if epoch_s:
                time.sleep(epoch_s)
            score = (1.0 - (config["x"] - 0.7) ** 2) * (1.0 - 0.5 / (1 + epoch))
            tune.report({"val_miou": score, "epoch": epoch, "written_at": time.time(),
                         "t_start": t0, "pid": pid})

    def process(config: dict[str, Any]) -> None:
        import yaml

        if str(HERE) not in sys.path:  # a Ray worker
            sys.path.insert(0, str(HERE))
        from tao_status import read_timing, timed_results

        trial_id = tune.get_context().get_trial_id()
        folder = work / "trials" / trial_id
        folder.mkdir(parents=True, exist_ok=True)
        spec = dict(ZERO_TEMPLATE, results_dir=str(folder / "results"),
                    hp={"x": config["x"], "y": 1}, zero={"epoch_s": epoch_s},
                    train={**ZERO_TEMPLATE["train"], "num_epochs": epochs})
        (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
        subprocess.run([sys.executable, str(ZERO_TRAINER), "train", "-e", str(folder / "spec.yaml")],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        train_dir = folder / "results" / "train"
        timing = read_timing(train_dir)  # the trainer's sidecar: one entry per status line
        for written_at, result in timed_results(train_dir):  # automl.tao's reading
            if result.validation and result.metric("val_miou") is not None:
                tune.report({"val_miou": result.metric("val_miou"), "epoch": result.epochs,
                             "written_at": written_at, "t_start": timing[0]["t_exec"],
                             "pid": timing[0]["ppid"], "t_last": timing[-1]["written_at"]})

    class TuneProbe(tune.Callback):
        def __init__(self) -> None:
            self.starts: dict[str, float] = {}
            self.ends: dict[str, float] = {}
            self.latency: list[float] = []
            self.trainer: dict[str, dict[str, Any]] = {}

        def on_trial_start(self, iteration, trials, trial, **info):
            self.starts.setdefault(trial.trial_id, time.time())

        def on_trial_result(self, iteration, trials, trial, result, **info):
            now = time.time()
            if isinstance(result.get("written_at"), (int, float)):
                self.latency.append(now - result["written_at"])
                self.trainer[trial.trial_id] = {
                    "start": result["t_start"], "end": result.get("t_last", result["written_at"]),
                    "slot": result["pid"]}

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.ends[trial.trial_id] = time.time()

        on_trial_error = on_trial_complete

    probe = TuneProbe()
    trainable = process if args.mode == "tune_proc" else nothing
    trainable = tune.with_resources(trainable, {"cpu": args.cpus / args.slots})
    tune_config = dict(num_samples=args.trials, max_concurrent_trials=args.slots,
                       metric="val_miou", mode="max")
    run_config = dict(name="tune", storage_path=str(work / "ray"), verbose=0, callbacks=[probe])
    if ours:
        tune_config["reuse_actors"] = True
        run_config.update(failure_config=tune.FailureConfig(max_failures=0),
                          checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
                          log_to_file=False)
    tuner = tune.Tuner(trainable, param_space={"x": tune.uniform(0.0, 1.0)},
                       tune_config=tune.TuneConfig(**tune_config),
                       run_config=tune.RunConfig(**run_config))
    cpu0, start = process_cpu_s(), time.time()
    grid = tuner.fit()
    end = time.time()
    cpu = process_cpu_s() - cpu0
    errors = sum(1 for r in grid if r.error)
    latency = [] if args.mode == "tune_proc" else probe.latency  # reported after the process ended
    trainer_rows = [dict(v) for v in probe.trainer.values()]
    slot_of = {k: v["slot"] for k, v in probe.trainer.items()}
    scheduler_rows = [{"start": probe.starts.get(k), "end": probe.ends.get(k), "slot": slot_of.get(k)}
                      for k in probe.starts]
    return {
        "wall_s": end - start, "driver_cpu_s": cpu, "errors": errors,
        "results_seen": len(probe.latency), "trials_seen": len(probe.starts),
        **analyse({"trainer_view": trainer_rows, "scheduler_view": scheduler_rows}, latency,
                  args.slots, (start, end)),
        "driver_timers": timers.as_dict(),
    }


# ---------------------------------------------------------------------------------------------
# Orchestrator
# ---------------------------------------------------------------------------------------------
def trainer_process_cost(work: Path, runs: int = 10) -> dict[str, Any]:
    """Wall time of one zero_trainer.py process (spawn → exit), and of a bare `python -c pass`."""
    import yaml

    folder = work / "standalone"
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "spec.yaml"
    out = {}
    for label, argv in (("python -c pass", [sys.executable, "-c", "pass"]),
                        ("python -S -c pass", [sys.executable, "-S", "-c", "pass"]),
                        ("zero_trainer.py (3 epochs)", [sys.executable, str(ZERO_TRAINER), "train",
                                                        "-e", str(spec)])):
        times = []
        for i in range(runs):
            spec.write_text(yaml.safe_dump({**ZERO_TEMPLATE, "results_dir": str(folder / f"r{i}")}))
            t0 = time.perf_counter()
            subprocess.run(argv, check=True)
            times.append(time.perf_counter() - t0)
        out[label] = summary(times)
    shutil.rmtree(folder, ignore_errors=True)
    return out


def run_child(mode: str, slots: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    folder = work / f"{mode}-s{slots}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    result_file = folder / "result.json"
    argv = [sys.executable, __file__, "--child", mode, "--slots", str(slots),
            "--trials", str(args.trials), "--epochs", str(args.epochs),
            "--epoch-s", str(args.epoch_s), "--cpus", str(args.cpus), "--work", str(folder),
            "--result", str(result_file)]
    if args.cprofile and mode == "automl":
        argv += ["--cprofile"]
    log = folder / "child.log"
    for attempt in range(1, 7):
        load0 = os.getloadavg()[0]
        t0 = time.time()
        with log.open("w") as handle:
            code = subprocess.run(argv, stdout=handle, stderr=subprocess.STDOUT,
                                  timeout=args.child_timeout).returncode
        if code == 0 or RAY_START_TIMEOUT not in log.read_text():
            break
        print(f"(Ray did not start: retry {attempt})", end=" ", flush=True)
    if code != 0 or not result_file.exists():
        tail = log.read_text()[-3000:]
        return {"mode": mode, "slots": slots, "error": f"exit {code}", "log_tail": tail}
    result = json.loads(result_file.read_text())
    result.update(mode=mode, slots=slots, process_s=time.time() - t0, log=str(log),
                  loadavg_1min=[load0, os.getloadavg()[0]])
    return result


def fmt(value: Any, digits: int = 3, scale: float = 1.0, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value * scale:.{digits}f}{suffix}"


def ratio(a: Any, b: Any) -> float | None:
    return a / b if a and b else None


def automl_tables(doc: dict[str, Any], label: str) -> list[str]:
    """Timeline and driver-component tables of one automl mode, one column per slot count."""
    lines: list[str] = []
    automl_runs = [(s, runs[label]) for s, runs in doc["runs"].items()
                   if label in runs and "error" not in runs[label]]
    if automl_runs:
        lines += ["", f"## {label}: where a trial's time goes (mean seconds per trial, file timestamps)",
                  "", "| step | " + " | ".join(f"{s} slots" for s, _ in automl_runs) + " |",
                  "|---|" + "---|" * len(automl_runs)]
        for key, item in automl_runs[0][1]["timeline"].items():
            cells = [fmt(r["timeline"][key]["mean"]) for _, r in automl_runs]
            lines.append(f"| {item['what']} (`{key}`) | " + " | ".join(cells) + " |")
        lines += ["", f"## {label}: driver time by component (seconds, whole run)", "",
                  "| component | " + " | ".join(f"{s} slots (calls)" for s, _ in automl_runs) + " |",
                  "|---|" + "---|" * len(automl_runs)]
        keys = list(automl_runs[-1][1]["driver_timers"])
        for key in keys:
            cells = []
            for _, r in automl_runs:
                t = r["driver_timers"].get(key)
                cells.append(f"{t['total_s']:.3f} ({t['calls']})" if t else "-")
            lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
        lines.append("| MLflow logging process CPU s | " + " | ".join(
            fmt(r.get("mlflow_process_cpu_s"), 3) for _, r in automl_runs) + " |")
    return lines


def markdown(doc: dict[str, Any]) -> str:
    cfg = doc["config"]
    lines = [f"# Controller overhead ({doc['name']})", "",
             f"{cfg['trials']} trials × {cfg['epochs']} epochs (epoch_s = {cfg['epoch_s']}), "
             f"{cfg['cpus']} CPUs, `--cpus-per-trial` = CPUs/slots; {doc['machine']}; "
             f"{doc['date']}. Ratios are to runs of the same invocation.", "",
             "gap = next trial start − previous trial end on the same slot; trainer view = trainer "
             "process (plain Tune: the function) start → last status line; scheduler view = Tune's "
             "on_trial_start → on_trial_complete. latency = status line written → driver callback. "
             "idle = 1 − Σ busy / (slots × wall).", "",
             "startup = experiment start → first trial start (Ray actors starting); run window = "
             "first trial start → last trial end (trainer view): the part that scales with trials. "
             "load = 1-min load average before/after the run (this machine is shared).", "",
             "| slots | mode | wall s | startup s | run window s | × tune_ours wall / window | "
             "× tune_default wall / window | gap mean s (trainer) | gap p95 s | gap mean s "
             "(scheduler) | latency p50 s | latency p95 s | idle % (trainer) | idle % (scheduler) "
             "| idle % steady (scheduler) | driver CPU s | load |",
             "|" + "---|" * 17]
    for slots, runs in doc["runs"].items():
        base = runs.get("tune_ours", {})
        default = runs.get("tune_default", {})

        def window(r: dict[str, Any]) -> Any:
            return r.get("trainer_view", {}).get("run_window_s")

        for mode, r in runs.items():
            if "error" in r:
                lines.append(f"| {slots} | {mode} | error: {r['error']} |" + "|" * 14)
                continue
            tv, sv = r["trainer_view"], r["scheduler_view"]
            load = r.get("loadavg_1min") or [None, None]
            lines.append(
                f"| {slots} | {mode} | {fmt(r['wall_s'], 2)} | {fmt(tv['first_start_after_s'], 2)} | "
                f"{fmt(window(r), 2)} | {fmt(ratio(r['wall_s'], base.get('wall_s')), 2)} / "
                f"{fmt(ratio(window(r), window(base)), 2)} | "
                f"{fmt(ratio(r['wall_s'], default.get('wall_s')), 2)} / "
                f"{fmt(ratio(window(r), window(default)), 2)} | {fmt(tv['gap_s']['mean'])} | "
                f"{fmt(tv['gap_s']['p95'])} | {fmt(sv['gap_s']['mean'])} | "
                f"{fmt(r['latency_s']['p50'])} | {fmt(r['latency_s']['p95'])} | "
                f"{fmt(tv['idle_fraction'], 1, 100)} | {fmt(sv['idle_fraction'], 1, 100)} | "
                f"{fmt(sv['idle_fraction_steady'], 1, 100)} | "
                f"{fmt(r.get('driver_cpu_s'), 2)} | {fmt(load[0], 1)}/{fmt(load[1], 1)} |")
    for label in [m for m in doc["config"]["modes"] if mode_options(m)[0] == "automl"]:
        lines += automl_tables(doc, label)
    if doc.get("trainer_process"):
        lines += ["", "## One trainer process on its own (spawn → exit, seconds)", "",
                  "| command | mean | p95 |", "|---|---|---|"]
        for label, s in doc["trainer_process"].items():
            lines.append(f"| `{label}` | {fmt(s['mean'])} | {fmt(s['p95'])} |")
    return "\n".join(lines) + "\n"


def machine() -> str:
    import platform

    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--epoch-s", type=float, default=0.0, help="seconds per epoch (0: zero compute)")
    p.add_argument("--slots", default="1,4,16", help="comma-separated concurrent slot counts")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    p.add_argument("--work", default="/tmp/automl-bench/overhead")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--name", default="overhead", help="results file stem")
    p.add_argument("--cprofile", action="store_true", help="cProfile the automl driver")
    p.add_argument("--child-timeout", type=float, default=1800)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.mode, args.slots = args.child, int(args.slots)
        fn = child_automl if mode_options(args.mode)[0] == "automl" else child_tune
        if args.cprofile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            result = profiler.runcall(fn, args)
            stats_path = Path(args.work) / "driver.pstats"
            profiler.dump_stats(stats_path)
            with (Path(args.work) / "driver-profile.txt").open("w") as handle:
                pstats.Stats(str(stats_path), stream=handle).sort_stats("cumulative").print_stats(60)
        else:
            result = fn(args)
        Path(args.result).write_text(json.dumps(result, indent=1, default=str))
        # Leave at once: interpreter teardown with Ray/MLflow threads alive can take minutes on
        # a loaded machine, and is not what is measured. Ray's own processes die with the driver.
        t0 = time.time()
        import ray

        ray.shutdown()
        print(f"ray.shutdown() {time.time() - t0:.1f}s", flush=True)
        sys.stdout.flush()
        os._exit(0)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    modes = [m for m in args.modes.split(",") if m]
    unknown = {m for m in modes if mode_options(m)[0] not in MODES}
    if unknown:
        p.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    doc: dict[str, Any] = {
        "name": args.name, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
        "config": {"trials": args.trials, "epochs": args.epochs, "epoch_s": args.epoch_s,
                   "cpus": args.cpus, "modes": modes},
        "runs": {},
    }
    if any(mode_options(m)[0] == "automl" and "notemplate" not in mode_options(m)[1]
           for m in modes):
        print(f"MLflow store template: {warm_store_template(work)}", flush=True)
    print(f"trainer process cost ({ZERO_TRAINER.name}) ...", flush=True)
    doc["trainer_process"] = trainer_process_cost(work)
    for slots in (int(s) for s in args.slots.split(",")):
        doc["runs"][str(slots)] = {}
        for mode in modes:
            print(f"slots={slots:<3} {mode:<16} ...", end=" ", flush=True)
            r = run_child(mode, slots, args, work)
            doc["runs"][str(slots)][mode] = r
            if "error" in r:
                print(f"ERROR {r['error']}\n{r['log_tail']}", flush=True)
                continue
            print(f"wall {r['wall_s']:.2f}s  gap(trainer) {fmt(r['trainer_view']['gap_s']['mean'])}s"
                  f"  latency p50 {fmt(r['latency_s']['p50'])}s  idle(trainer) "
                  f"{fmt(r['trainer_view']['idle_fraction'], 1, 100)}%", flush=True)
        runs = doc["runs"][str(slots)]
        for mode in ("automl", "automl_before", "automl_nomlflow", "tune_proc"):
            for ref in ("tune_ours", "tune_default"):
                a, b = runs.get(mode, {}), runs.get(ref, {})
                if a.get("wall_s") and b.get("wall_s"):
                    wa, wb = (x.get("trainer_view", {}).get("run_window_s") for x in (a, b))
                    print(f"  {mode}/{ref}: wall {a['wall_s'] / b['wall_s']:.2f}x, run window "
                          f"{fmt(ratio(wa, wb), 2)}x", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(doc, indent=1, default=str))
    (out / f"{args.name}.md").write_text(markdown(doc))
    print(f"\nwrote {out / (args.name + '.json')} and {out / (args.name + '.md')}")
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
