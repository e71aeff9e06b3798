"""The Ray Tune trainable: one trial = one trainer process, watched through its status.json.

Runs inside a Ray worker. It builds the trial's spec, starts the trainer through the launcher,
tails ``results_dir/train/status.json`` and reports every validation result to Tune (with a
checkpoint *pointer* when the algorithm pauses/promotes trials), and ends with the process.

Resuming (promotion, PBT exploit, restore) is exact: the checkpoint handed to Tune names the
``model_epoch_EEE_step_SSSSS.pth`` file of the rung; the next segment starts the trainer with
``train.resume_training_checkpoint_path`` set to it, so training continues from that epoch.
A checkpoint inherited from another trial (PBT exploit) is first copied into this trial's own
``inherited/`` folder - the parent may overwrite or delete its file later - and the lineage is
appended to ``lineage.json`` (:func:`inherit`); the perturbed learning rate and weight decay are
then written into the copy's optimizer state (:mod:`automl.run.perturbation`).

How a trial ended is written to ``outcome.json`` in the trial folder (by the trial itself, so it
survives a driver crash); the driver reads it when Tune says the trial is over.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automl.contract import (BRACKET_KEY, EPOCHS_KEY, INHERITED, KPI_NAMES_KEY, LINEAGE,
                             OUTCOME, POINTER, RUNG_KEY, STOP_EVERY_KEY, hyperparameters,
                             results_dir)
from automl.results.failures import RETRYABLE, Outcome, decide, is_finite, missing_metric_message
from automl.resume.continuation import Lineage, clear_latest, continue_point, lineage
from automl.resume.continuation import note as continuation_note
from automl.resume.continuation import record as record_lineage
from automl.resume.reconcile import record_trainer
from automl.results.records import atomic_write_json
from automl.run.perturbation import StepFailed, reach_trainer
from automl.skill.spec import SpecBuilder, get_dotted, write_spec
from automl.tao.checkpoints import checkpoint_pattern, wait_for_checkpoint
from automl.tao.lines import StatusLine, StatusTail, read_status, status_path
from automl.tao.progress import (EpochResult, ResultReader, final_status, join_train_kpis,
                                 read_results, reported_kpis, runs)
from launchers.base import LaunchSpec, Launcher, LaunchError, log_tail
from launchers.docker import spec_input_paths
from launchers.gpus import assigned_gpu_ids, gpu_spec_overrides

@dataclass(frozen=True)
class TrialContext:
    """Everything a trial needs, shipped once to the workers (``tune.with_parameters``)."""

    workspace: Path
    command: tuple[str, ...]  # argv template with "{config_path}"
    builder: SpecBuilder
    launcher: Launcher
    metric: str
    budget: int
    # Data input key → host path (``--data``/``--root-dir``; SegFormer: dataset.segment.root_dir).
    data: dict[str, str] = field(default_factory=dict)
    report_checkpoints: bool = False
    interval: int | None = None
    cpus_per_trial: float = 1.0
    trial_timeout: float | None = None
    max_retries: int = 1
    poll_s: float = 0.1
    # How long a result waits for its checkpoint file to appear complete (a large model's
    # checkpoint takes seconds to write, and Lightning may write it after the validation line).
    checkpoint_wait_s: float = 30.0
    env: dict[str, str] = field(default_factory=dict)
    # Dotted spec keys of the skill's declared inputs (skill_info actions.train.inputs): the
    # host paths they name are mounted read-only into containers.
    input_keys: tuple[str, ...] = ()

    def trial_folder(self, rec_id: str) -> Path:
        return self.workspace / "trials" / rec_id


def _stop_requested() -> bool:
    """Whether Tune asked this trial to stop/pause.

    Tune only tells a function trainable at its next ``tune.report`` (which then raises
    SystemExit). A trainer can run minutes between validations, so we peek at the session's stop
    event to kill the process at once instead of letting it train past a pause decision.
    """
    try:
        from automl.run.ray.ray_private import training_session

        session = training_session()  # private: see automl.run.ray.ray_private
        return bool(session and session.stop_event.is_set())
    except Exception:  # noqa: BLE001 - private API: fall back to report-time stopping
        return False


def read_pointer(checkpoint: Any) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        path = Path(folder) / POINTER
        return json.loads(path.read_text()) if path.exists() else None


def inherit(folder: Path, rec_id: str, pointer: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Make a checkpoint from another trial (PBT exploit) this trial's own; return its pointer.

    A pointer whose ``rec_id`` is another trial names a file in *that* trial's folder, which it
    may overwrite or delete later. The file is copied to ``<folder>/inherited/<name>`` (unless the
    pointer already names a file there: the scheduler may copy it at exploit time) and the
    lineage is appended to ``lineage.json``. Only the latest inherited copy is kept: the trial's
    own checkpoints (``results/train``) supersede the earlier ones. Raises OSError (e.g.
    FileNotFoundError) when the file cannot be copied.
    """
    parent = pointer.get("rec_id")
    if not parent or parent == rec_id:
        return pointer
    source = Path(pointer["path"])
    target = folder / INHERITED / source.name
    lineage_path = folder / LINEAGE
    try:
        lineage = json.loads(lineage_path.read_text())
    except (OSError, ValueError):
        lineage = []
    origin = pointer.get("source", str(source))
    last = lineage[-1] if lineage else {}
    if target.exists() and (last.get("parent"), last.get("epoch"), last.get("source"),
                            last.get("params")) == (parent, pointer.get("epoch"), origin, params):
        # Restarted (e.g. paused) before reporting anything of its own: same inheritance.
        return {**pointer, "path": str(target), "parent": parent}
    if source.resolve() != target.resolve():
        copy_file(source, target)
    for stale in target.parent.iterdir():  # earlier inheritances: this trial moved past them
        if stale.name != target.name and not stale.name.startswith("."):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    lineage.append({"parent": parent, "epoch": pointer.get("epoch"), "step": pointer.get("step"),
                    "source": origin, "path": str(target),
                    "params": params, "time": time.time()})
    atomic_write_json(lineage_path, lineage)
    return {**pointer, "path": str(target), "parent": parent}


def copy_file(source: Path, target: Path) -> None:
    """Copy a checkpoint (a file, or a folder for trainers that write one) atomically."""
    if not source.exists():
        raise FileNotFoundError(f"checkpoint {source} does not exist")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    if source.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp)
        shutil.rmtree(target, ignore_errors=True)
    else:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def make_checkpoint(record: dict[str, Any]):
    """A Tune checkpoint that only records which model file (and epoch) to resume from."""
    from ray import tune

    folder = Path(tempfile.mkdtemp(prefix="automl-ckpt-"))
    (folder / POINTER).write_text(json.dumps(record))
    return tune.Checkpoint.from_directory(str(folder))


class _Segment:
    """One run of the trainer process (a trial is one or more segments)."""

    def __init__(self, ctx: TrialContext, folder: Path, rec_id: str, config: dict[str, Any],
                 resume: dict[str, Any] | None) -> None:
        self.ctx = ctx
        self.folder = folder
        self.rec_id = rec_id
        self.resume = resume
        self.epochs = int(config.get(EPOCHS_KEY) or ctx.budget)
        self.start = int(resume["epoch"]) if resume else 0  # epochs completed before this run
        every = int(config.get(STOP_EVERY_KEY) or 0)
        if every:  # PBT: train.num_epochs = the next perturbation boundary (no overshoot)
            self.epochs = min(self.epochs, (self.start // every + 1) * every)
        self.results_dir = results_dir(folder)
        self.lines: list[StatusLine] = []
        self.results: list[EpochResult] = []
        # Set when the trial must end now, whatever the trainer does next (see _result).
        self.fatal: Outcome | None = None
        self._held: EpochResult | None = None  # a validation result awaiting its train KPIs
        self._alive = lambda: False
        extra: dict[str, Any] = dict(ctx.data)
        # The GPUs Ray gave this trial; the trainer sees them as 0..n-1 (launchers.gpus).
        self.gpus = assigned_gpu_ids()
        extra.update(gpu_spec_overrides(self.gpus, ctx.builder.known))
        params = hyperparameters(config)
        known = lineage(folder, resume, params)  # an interrupted segment of this trial's
        # First as the lineage's last segment ran (it may have ended well: replayed, not rerun).
        spec = self._build(params, known.resume if known else resume, extra)
        self.replay = ended_run(folder, spec, self.start, self.epochs, ctx.metric)
        if self.replay is None:
            spec = self._build(params, self._continue(params, resume, known), extra)
            self.spec_path = write_spec(spec, folder / "spec.yaml")
            index = len(list(folder.glob("spec_segment_*.yaml")))
            shutil.copyfile(self.spec_path, folder / f"spec_segment_{index}.yaml")
        else:
            self.spec_path = folder / "spec.yaml"
        self.spec = spec
        interval = get_dotted(spec, "train.checkpoint_interval", None)
        self.checkpoint_interval = interval if type(interval) is int and interval >= 1 else None
        self.log_path = folder / "train.log"
        # Lines already in status.json belong to earlier segments: read them now (they still
        # count for the outcome) so that only this segment's results are reported to Tune. A
        # resumed segment must not re-report epochs its predecessor ran past the checkpoint
        # (e.g. a PBT child's own timeline before it exploited a parent at an earlier epoch).
        self._status = self._tail()
        if self._status:
            self.lines.extend(self._status.read_new())
            self.results.extend(read_results(self.lines))
        self._reader = ResultReader(self.start, history=self.lines)

    def _build(self, params: dict[str, Any], resume: dict[str, Any] | None,
               extra: dict[str, Any]) -> dict[str, Any]:
        """The spec of a run resuming from ``resume`` (None: from scratch); sets the start."""
        self.resume = resume
        self.start = int(resume["epoch"]) if resume else 0
        path = Path(resume["path"]) if resume else None
        return self.ctx.builder.build(params, self.results_dir, self.epochs,
                                      resume_checkpoint=path, interval=self.ctx.interval,
                                      extra=extra)

    def _continue(self, params: dict[str, Any], base: dict[str, Any] | None,
                  known: Lineage | None) -> dict[str, Any] | None:
        """The pointer this run resumes from: Tune's ``base``, or, continuing an interrupted
        lineage, the newest complete checkpoint it wrote (automl.resume.continuation). Records
        the lineage; with nothing to name, clears TAO's auto-resume link."""
        train_dir = self.results_dir / "train"
        point = None
        if known is not None:
            point = continue_point(train_dir, read_status(status_path(self.results_dir)),
                                   known.since, int(base["epoch"]) if base else 0, self.epochs)
        pointer = point.pointer(self.rec_id) if point is not None else base
        if pointer is None:
            clear_latest(train_dir)
        record_lineage(self.folder, base, params, pointer, known.since if known else None)
        if point is not None:
            with (self.folder / "train.log").open("a", encoding="utf-8") as log:
                log.write(f"[automl] {continuation_note(self.rec_id, point)}\n")
        return pointer

    def job(self) -> LaunchSpec:
        argv = tuple(a.replace("{config_path}", str(self.spec_path)) for a in self.ctx.command)
        threads = str(max(1, int(self.ctx.cpus_per_trial)))
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, **self.ctx.env}
        declared = spec_input_paths(self.spec, self.ctx.input_keys)
        reads = tuple(dict.fromkeys([*(Path(p) for p in self.ctx.data.values()),
                                     *declared]))
        return LaunchSpec(argv=argv, cwd=self.folder, log_path=self.log_path, env=env,
                   name=f"{self.ctx.workspace.name}-{self.rec_id}",
                   labels={"automl.experiment": self.ctx.workspace.name, "automl.trial": self.rec_id},
                   gpu_ids=self.gpus, read_paths=reads, write_paths=(self.folder,))

    def run(self, report) -> Outcome:
        """Start the process, stream results to ``report``, return how it ended."""
        if self.replay is not None:  # this very run already ended well: report, do not retrain
            for result in read_results(self.replay, self.start):
                self._result(result, report, writer_alive=lambda: False)
            self._release(report, writer_alive=lambda: False)
            return decide(0, self.lines, self.results, log_tail(self.log_path), self.ctx.metric,
                          self.epochs, False)
        job = self.job()
        try:
            handle = self.ctx.launcher.start(job)
        except LaunchError as exc:
            return Outcome("failed", "infrastructure", str(exc))
        pid = handle.local_pid()
        if pid is not None:  # for `automl resume` (reconcile.py)
            record_trainer(self.folder, pid, job.argv)
        tail: StatusTail | None = self._status
        started = time.monotonic()
        stopped = timed_out = False
        code: int | None = None
        self._alive = lambda: handle.poll() is None
        try:
            while True:
                tail = tail or self._tail()
                if tail:
                    self._consume(tail.read_new(), report)
                code = handle.poll()
                if code is not None or self.fatal is not None:
                    break
                if _stop_requested():
                    stopped = True
                    break
                if self.ctx.trial_timeout and time.monotonic() - started > self.ctx.trial_timeout:
                    timed_out = True
                    break
                handle.wait(self.ctx.poll_s)  # returns at once when the trainer exits
        finally:
            if code is None:
                code = handle.stop()
        tail = tail or self._tail()
        if tail:
            self._consume(tail.read_new(final=True), report)
        for result in self._reader.finish():
            self._result(result, report, writer_alive=lambda: False)
        self._release(report, writer_alive=lambda: False)
        if self.fatal is not None:
            return self.fatal
        if timed_out:
            return Outcome("failed", "timeout",
                           f"no end after --trial-timeout {self.ctx.trial_timeout:g}s; stopped")
        return decide(code, self.lines, self.results, log_tail(self.log_path), self.ctx.metric,
                      self.epochs, stopped)

    def _tail(self) -> StatusTail | None:
        path = status_path(self.results_dir)
        return StatusTail(path) if path.exists() else None

    def _consume(self, lines: list[StatusLine], report) -> None:
        for line in lines:
            self.lines.append(line)
            for result in self._reader.feed(line):
                self._result(result, report, self._alive)

    def _result(self, result: EpochResult, report, writer_alive) -> None:
        """Record one result; report it to Tune when it is this run's and carries the metric.

        A validation result is held until the next result: TAO writes "Train metrics
        generated." (train_loss) just after the epoch line that closes a validation, and those
        training KPIs of the same epoch join it. So train_loss reaches Tune, the records and
        MLflow with the score, never as a result of its own (which schedulers would count as a
        new score).
        """
        self.results.append(result)
        held, self._held = self._held, None
        joined = join_train_kpis(held, result) if held is not None else None
        if joined is not None:
            self._report(joined, report, writer_alive)
            return
        if held is not None:
            self._report(held, report, writer_alive)
        if result.validation:
            self._held = result
        else:
            self._report(result, report, writer_alive)

    def _release(self, report, writer_alive) -> None:
        """Report the held validation result (the trainer ended: no train KPIs will follow)."""
        held, self._held = self._held, None
        if held is not None:
            self._report(held, report, writer_alive)

    def _report(self, result: EpochResult, report, writer_alive) -> None:
        value = result.metric(self.ctx.metric)
        if self.fatal is not None:
            return
        if value is None:
            # A validation without the metric: the trainer does not write it at all (a typo in
            # --metric, another network's KPI names). Stop now rather than train every trial.
            if result.validation and self.ctx.metric not in reported_kpis(self.lines):
                self.fatal = Outcome("failed", "metric",
                                     missing_metric_message(self.ctx.metric, self.lines))
            return
        if result.epochs <= self.start or not is_finite(value):
            return  # a NaN never reaches the scheduler; the outcome marks it diverged
        pointer = self._checkpoint_record(result.epochs, writer_alive)
        if pointer is None and self._pause_point(result.epochs):
            # Paused or exploited here, the trial would later be resumed from an older file or
            # from scratch, silently retraining: end it visibly instead.
            self.fatal = Outcome(
                "failed", "checkpoint",
                f"no complete checkpoint after {result.epochs} epoch(s) "
                f"({checkpoint_pattern(result.epochs)}) within "
                f"{self.ctx.checkpoint_wait_s:g}s: it cannot be paused, promoted or inherited "
                f"without retraining")
            return
        report(result.epochs, result.kpi, pointer)

    def _pause_point(self, epochs: int) -> bool:
        """Whether a scheduler may pause (promote later) or exploit the trial after ``epochs``:
        an epoch with a checkpoint due, short of the experiment's budget R."""
        return self.ctx.report_checkpoints and epochs < self.ctx.budget and not (
            self.checkpoint_interval and epochs % self.checkpoint_interval and epochs < self.epochs)

    def _checkpoint_record(self, epochs: int, writer_alive) -> dict[str, Any] | None:
        """The resume pointer of the checkpoint written after ``epochs`` epochs, once complete.

        Reported with the result so a scheduler that pauses the trial here (which kills the
        trainer) resumes it from exactly this file; a result between two checkpoints (TAO's
        ``checkpoint_interval``) has none.
        """
        if not self.ctx.report_checkpoints:
            return None
        if self.checkpoint_interval and epochs % self.checkpoint_interval and epochs < self.epochs:
            return None  # validated between two checkpoints: no file to wait for
        found = wait_for_checkpoint(self.results_dir / "train", epochs,
                                    self.ctx.checkpoint_wait_s, writer_alive)
        return found.pointer(self.rec_id) if found else None


def ended_run(folder: Path, spec: dict[str, Any], start_epoch: int, epochs: int,
              metric: str) -> list[StatusLine] | None:
    """The status lines of a trainer run that already trained exactly this segment and ended
    well, or None.

    A controller killed after a trainer ended but before Tune processed the end (Tune saves its
    state between steps) restarts the trial on ``automl resume`` with the same config and
    checkpoint; running the trainer again would retrain the same epochs (and write them twice
    into status.json). It is the same run when ``spec.yaml`` is this very spec and status.json's
    last run (the trainer starts after its spec is written) validated every epoch up to
    ``epochs`` and ended well (TAO's "Train finished successfully."), and no ``outcome.json``
    written after the spec says otherwise (the kill may have come before the trial wrote it);
    the trial then reports those results to Tune instead of training.
    """
    import yaml

    spec_path, outcome_path = folder / "spec.yaml", folder / OUTCOME
    try:
        written = spec_path.stat().st_mtime
        if outcome_path.exists():
            outcome = json.loads(outcome_path.read_text())
            if float(outcome.get("time") or 0) >= written and outcome.get("status") != "completed":
                return None
        if yaml.safe_load(spec_path.read_text()) != \
                yaml.safe_load(yaml.safe_dump(dict(spec), sort_keys=False)):
            return None
    except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError):
        return None
    run = (runs(read_status(status_path(results_dir(folder)))) or [[]])[-1]
    validated = [r.epochs for r in read_results(run, start_epoch) if r.metric(metric) is not None]
    if final_status(run) != "SUCCESS" or not validated or max(validated) != epochs \
            or min(validated) <= start_epoch:
        return None
    return run


def _node_id() -> str | None:
    """The Ray node this trial ran on (which machine of a cluster), for outcome.json."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - outside Ray
        return None


class TrialFailed(RuntimeError):
    """Raised so Ray marks the trial ERROR; the details are in the trial's outcome.json."""


def run_trial(config: dict[str, Any], ctx: TrialContext) -> None:
    """The function trainable."""
    from ray import tune

    rec_id = tune.get_context().get_trial_id()  # Ray's id: its logs match our folders
    folder = ctx.trial_folder(rec_id)
    folder.mkdir(parents=True, exist_ok=True)
    resume = read_pointer(tune.get_checkpoint())
    lock = threading.Lock()

    def report(epoch: int, kpis: dict[str, float], checkpoint: dict[str, Any] | None) -> None:
        metrics = {**{k: float(v) for k, v in kpis.items()}, "epoch": int(epoch),
                   KPI_NAMES_KEY: sorted(kpis)}
        metrics.update({k.strip("_"): config[k] for k in (RUNG_KEY, BRACKET_KEY) if k in config})
        with lock:
            if checkpoint:
                tune.report(metrics, checkpoint=make_checkpoint(checkpoint))
            else:
                tune.report(metrics)

    outcome = Outcome("failed", "infrastructure", "not started")
    attempts = 0
    try:
        if resume and resume.get("rec_id") not in (None, rec_id):
            try:
                resume = inherit(folder, rec_id, resume, hyperparameters(config))
            except OSError as exc:
                outcome = Outcome("failed", "infrastructure",
                                  f"cannot copy the checkpoint inherited from trial "
                                  f"{resume.get('rec_id')}: {exc}")
                raise TrialFailed(f"{outcome.failure_class}: {outcome.message}") from exc
            try:  # the perturbed lr/weight decay into the copy's optimizer state (PBT, PB2)
                reach_trainer(ctx.launcher, ctx.env, ctx.workspace.name, folder, rec_id, resume,
                              hyperparameters(config))
            except StepFailed as exc:
                outcome = Outcome("failed", "infrastructure", str(exc))
                raise TrialFailed(f"{outcome.failure_class}: {outcome.message}") from exc
        while True:
            # A retry, like a restart, continues from the newest complete checkpoint the
            # interrupted segment wrote (automl.resume.continuation), never from TAO's own pick.
            segment = _Segment(ctx, folder, rec_id, config, resume)
            outcome = segment.run(report)
            retry = outcome.status == "interrupted" or (
                outcome.status == "failed" and outcome.failure_class in RETRYABLE)
            if retry and attempts < ctx.max_retries:
                attempts += 1
                continue
            if outcome.status == "interrupted":
                outcome = Outcome("failed", "interrupted", outcome.message)
            break
    except SystemExit:  # Tune stopped the trial at a report: that is a decision, not a failure
        outcome = Outcome("stopped")
        raise
    finally:
        atomic_write_json(folder / OUTCOME, {
            "status": outcome.status, "failure_class": outcome.failure_class,
            "message": outcome.message, "hint": outcome.hint, "retries": attempts,
            "time": time.time(), "node_id": _node_id(),
        })
    if outcome.status == "failed":
        raise TrialFailed(f"{outcome.failure_class}: {outcome.message}")
