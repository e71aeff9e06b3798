"""MLflow tracking: one parent run per experiment, one nested child run per trial (segment).

:class:`MlflowTracker` is an experiment observer (see :mod:`automl.run.recorder`). ``automl run``
runs it in its own logging process (:mod:`automl.observers.tracking_worker`), off the controller's GIL;
there, as anywhere it is used in-process, every event is only *snapshotted and queued*
(microseconds); a single background thread owns the :class:`~mlflow.tracking.MlflowClient` and
does all the MLflow work in order, merging consecutive per-epoch metric events into one
``log_batch`` per run. :meth:`MlflowTracker.close` drains the queue. No MLflow error ever
reaches the experiment: failures are logged as warnings (rate-limited) and tracking carries on,
or switches itself off when the store cannot be opened at all.

What is logged (MLflow entity limits respected: ≤100 params/tags per batch, param values
≤6000 chars, tag values ≤8000 chars):

* parent run (name = experiment id): the experiment's settings as params (``algo``,
  ``metric``, ``direction``, ``budget``, ``seed``, …, ``settings.<key>``), the search space as
  ``space.json``; at the end the metric ``best_<metric>``, tags ``best_rec_id`` /
  ``best_checkpoint`` and ``best_rec.json``.
* child run per trial (name = rec_id, tag ``mlflow.parentRunId``): hyperparameters as params
  with their dotted names, every reported ``val_*``/``train_*`` metric with ``step=epoch``, the
  metric ``observed_budget``, tags (status, failure_class, failure_message, recovered, rung,
  bracket, parent_trial, observed_budget, budget, retries, segment), artifacts ``spec.yaml``
  and ``train_log_tail.txt``; run status FINISHED (completed/recovered), FAILED, KILLED
  (stopped, or still open when the experiment ends: tag ``status=interrupted``; or set aside by
  ``automl resume`` because Tune never saved the trial: ``status=set_aside``).
* PBT: MLflow refuses to change a logged param. When a trial starts again with different
  hyperparameters (an exploit copied another trial's config), the current child run is ended
  and a new one, ``<rec_id>/segment-<n>``, is started, so each run's params are exact.

Secrets (:func:`automl.secrets.is_secret_key`) are never logged: secret params are dropped,
secret values in YAML/JSON artifacts become ``***``, and every secret value met in a spec or
in the settings is replaced literally in log tails, messages and artifacts.

``mlflow`` is imported lazily in the background thread (it takes ~1.5 s to import).

Where the store is and how a new one is created fast: :mod:`automl.observers.tracking_store`.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import logging
import math
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from automl.contract import KPI_NAMES_KEY
from automl.observers import tracking_store
from automl.results.records import TrialRecord
from automl.secrets import (REDACTED, is_secret_key, redact_space_rows, redact_spec_text,
                            redact_text, redact_tree)

log = logging.getLogger(__name__)

MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_KEY = 250
BATCH = 100  # params/tags per log_batch
MAX_METRICS_PER_BATCH = 1000
MESSAGE_CHARS = 1000
LOG_TAIL_LINES = 200
LOG_TAIL_BYTES = 256 * 1024
MAX_WARNINGS = 10
QUEUE_SIZE = 100_000

# Run statuses by trial status.
RUN_STATUS = {"completed": "FINISHED", "recovered": "FINISHED", "failed": "FAILED",
              "stopped": "KILLED"}

_EXPERIMENT_PARAMS = ("algo", "metric", "direction", "budget", "seed", "max_recommendations",
                      "max_concurrent", "skill_dir", "dataset_root", "plan")
_KEY_BAD = re.compile(r"[^\w\-. /]")  # ':' is MLflow-valid but is mlflow_name's escape
_ESCAPED = re.compile(r":([0-9a-f]+):")
_STOP = object()



# ---------------------------------------------------------------------------------------------
# Flattening (redaction: automl.secrets)
# ---------------------------------------------------------------------------------------------
def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts → ``{dotted.key: leaf}`` (lists stay leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value} if prefix else {}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _param_value(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(_json_safe(value), default=str)
    else:
        text = str(value)
    return text if len(text) <= MAX_PARAM_VALUE else text[: MAX_PARAM_VALUE - 3] + "..."


def mlflow_name(name: str) -> str:
    """A KPI, parameter or tag name as MLflow accepts it, reversibly (:func:`kpi_name`).

    MLflow refuses brackets, ``@`` and other characters that TAO's KPI names hold
    (``[bbox] val_mAP@50``); each such character, and ``:`` itself (the escape), becomes
    ``:<hex code>:`` (``:5b:bbox:5d: val_mAP:40:50``), so two names never collide and the TAO
    name can be read back. The TAO name itself is what best_rec.json and every page show.
    """
    text = _KEY_BAD.sub(lambda m: f":{ord(m.group()):x}:", str(name))
    return text[:MAX_KEY] or "_"


def kpi_name(logged: str) -> str:
    """The name :func:`mlflow_name` encoded."""
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), logged)


def _tag_value(value: Any, limit: int = MAX_TAG_VALUE) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _read_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:]) + "\n"


def _never_raise(method):
    """Observer entry points run on the driver: a tracking bug must not stop the experiment."""
    @functools.wraps(method)
    def wrapper(self, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            self._warn(f"{method.__name__} failed: {type(exc).__name__}: {str(exc)[:300]}")
    return wrapper


# ---------------------------------------------------------------------------------------------
# The tracker
# ---------------------------------------------------------------------------------------------
@dataclass
class _Child:
    run_id: str
    segment: int
    params: dict[str, str]
    ended: bool = False
    steps: set[int] = field(default_factory=set)  # epochs whose metrics were logged
    first_step: int | None = None
    steps_loaded: bool = True  # False for a run found in the store (resume): load lazily
    status: str = ""  # the run's ``status`` tag: the trial status its end logged


@dataclass
class _Result:
    rec_id: str
    epoch: int
    metrics: dict[str, float]
    tags: dict[str, str]
    ts: int
    record: TrialRecord


class MlflowTracker:
    """Experiment observer that mirrors the experiment into MLflow (asynchronously).

    ``tracking_uri``: any MLflow URI (``sqlite:///abs/path/mlflow.db``, ``http://host:5000``, …);
    ``experiment_name``: the MLflow experiment that holds the parent runs (created if missing);
    ``workspace``: the automl workspace (used to name the parent run if ``experiment_started``
    was never called).
    """

    def __init__(self, tracking_uri: str, experiment_name: str, workspace: Path,
                 template_dir: Path | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.workspace = Path(workspace)
        self.template_dir = Path(template_dir) if template_dir is not None else None
        self.metric = ""  # the experiment's, from its first event (experiment_started)
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self._closed = False
        self._dropped = 0
        self._warnings = 0
        # Worker-thread state (touched only by the worker).
        self._client: Any = None
        self._disabled = False
        self._experiment_id: str | None = None
        self._parent_id: str | None = None
        self._parent_params: dict[str, str] = {}
        self._parent_ended = False
        self._children: dict[str, _Child] = {}
        self._secrets: set[str] = set()
        self._thread = threading.Thread(target=self._work, name="automl-mlflow", daemon=True)
        self._thread.start()
        atexit.register(self._close_at_exit)

    # -- observer API (driver thread: snapshot + enqueue only) -----------------------------
    @_never_raise
    def experiment_started(self, experiment: dict[str, Any]) -> None:
        self.metric = str(experiment.get("metric") or self.metric)
        self._put(("experiment_started", dict(experiment), _now_ms()))

    @_never_raise
    def trial_started(self, record: TrialRecord) -> None:
        self._put(("trial_started", _snapshot(record), _now_ms()))

    @_never_raise
    def trial_result(self, record: TrialRecord, result: dict[str, Any]) -> None:
        try:
            epoch = int(result["epoch"])
        except (KeyError, TypeError, ValueError):
            return
        metrics: dict[str, float] = {}
        # The trainer's KPIs (named by the trial), not Tune's bookkeeping; the metric always.
        for key in {*(result.get(KPI_NAMES_KEY) or ()), self.metric}:
            number = _number(result.get(key))
            if number is not None:
                metrics[key] = number
        tags = {k: str(result[k]) for k in ("rung", "bracket") if result.get(k) is not None}
        self._put(("trial_result", _Result(record.rec_id, epoch, metrics, tags, _now_ms(),
                                           _snapshot(record, results=False))))

    @_never_raise
    def trial_ended(self, record: TrialRecord) -> None:
        self._put(("trial_ended", _snapshot(record), _now_ms()))

    @_never_raise
    def experiment_ended(self, best_rec: dict[str, Any]) -> None:
        self._put(("experiment_ended", best_rec, _now_ms()))

    @_never_raise
    def open_store(self) -> None:
        """Import MLflow and open the store now (before the first event needs it)."""
        self._put(("open_store",))

    @_never_raise
    def replay(self, records: list[TrialRecord]) -> None:
        """``automl resume``: log the end of every finished trial whose run lacks it.

        A controller killed before its events reached MLflow leaves runs open (ended KILLED,
        tagged ``interrupted``, by the logging process) or missing; the journal has those
        trials' ends. Each one is logged as :meth:`trial_ended` would have, which also backfills
        every result the run lacks.
        """
        self._put(("replay", [_snapshot(r) for r in records], _now_ms()))

    @_never_raise
    def trials_set_aside(self, rec_ids: list[str]) -> None:
        """``automl resume`` set these trials aside (automl.resume.reconcile.set_aside): their
        runs end KILLED with the tag ``status=set_aside`` and the folder they were moved to,
        instead of ``interrupted``, which would say that they are still to be continued."""
        self._put(("trials_set_aside", list(rec_ids), _now_ms()))

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every event queued so far is in MLflow; False on timeout."""
        if self._closed or not self._thread.is_alive():
            return not self._thread.is_alive()
        done = threading.Event()
        self._put(("flush", done))
        return done.wait(timeout)

    def close(self, timeout: float = 120.0) -> None:
        """Drain the queue, end runs still open (KILLED) and stop the worker. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._close_at_exit)
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("MLflow tracking: %d event(s) not written after %.0f s; giving up",
                        self._queue.qsize(), timeout)
        if self._dropped:
            log.warning("MLflow tracking: %d event(s) dropped (queue full)", self._dropped)

    def _close_at_exit(self) -> None:
        self.close(timeout=15.0)  # the engine forgot close(): still end the runs, briefly

    # -- queueing --------------------------------------------------------------------------
    def _put(self, item: Any) -> None:
        if self._closed:
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._dropped += 1

    def _work(self) -> None:
        stop = False
        while not stop:
            items = [self._queue.get()]
            while len(items) < 512:  # drain what is already there, to merge metric writes
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            pending: list[_Result] = []
            for item in items:
                if item is _STOP:
                    stop = True
                    continue
                if item[0] == "trial_result":
                    pending.append(item[1])
                    continue
                if pending:
                    self._guard("log metrics", self._log_results, pending)
                    pending = []
                if item[0] == "flush":
                    item[1].set()
                else:
                    self._guard(item[0], getattr(self, "_on_" + item[0]), *item[1:])
            if pending:
                self._guard("log metrics", self._log_results, pending)
        self._guard("close", self._finish_open_runs)

    def _guard(self, what: str, fn, *args: Any) -> None:
        if self._disabled:
            return
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - tracking must never break the experiment
            self._warn(f"{what} failed: {type(exc).__name__}: {str(exc)[:300]}")

    def _warn(self, message: str) -> None:
        self._warnings += 1
        if self._warnings <= MAX_WARNINGS:
            log.warning("MLflow tracking (%s): %s", self.tracking_uri, message)
            if self._warnings == MAX_WARNINGS:
                log.warning("MLflow tracking: further errors are not shown")

    # -- MLflow plumbing (worker thread) ---------------------------------------------------
    def _mlflow(self):
        if self._client is None:
            try:
                for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
                    logging.getLogger(name).setLevel(logging.WARNING)  # "Creating tables..."
                from mlflow.tracking import MlflowClient

                client, experiment = tracking_store.open_store(
                    MlflowClient, self.tracking_uri, self.experiment_name, self.workspace,
                    self.template_dir)
                if experiment is None:
                    experiment_id = client.create_experiment(
                        self.experiment_name,
                        artifact_location=tracking_store.artifact_location(self.tracking_uri))
                else:
                    experiment_id = experiment.experiment_id
            except Exception as exc:  # noqa: BLE001
                self._disabled = True
                log.warning("MLflow tracking is off: cannot open %s (%s: %s)", self.tracking_uri,
                            type(exc).__name__, str(exc)[:300])
                raise
            self._client, self._experiment_id = client, experiment_id
        return self._client

    def _retry(self, fn, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn``; retry a few times when sqlite is locked by another process (the UI)."""
        for attempt in range(4):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                if attempt == 3 or "locked" not in str(exc).lower():
                    raise
                time.sleep(0.2 * (attempt + 1))
        return None

    def _log_batch(self, run_id: str, metrics=(), params=(), tags=()) -> None:
        from mlflow.entities import Metric, Param, RunTag

        client = self._mlflow()
        params = [Param(k, v) for k, v in params]
        tags = [RunTag(mlflow_name(k), _tag_value(v)) for k, v in tags]
        metrics = [Metric(mlflow_name(k), v, ts, step) for k, v, ts, step in metrics]
        for i in range(0, max(len(params), len(tags)), BATCH):
            chunk_p, chunk_t = params[i:i + BATCH], tags[i:i + BATCH]
            if chunk_p or chunk_t:
                self._retry(client.log_batch, run_id, params=chunk_p, tags=chunk_t)
        for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            self._retry(client.log_batch, run_id, metrics=metrics[i:i + MAX_METRICS_PER_BATCH])

    def _log_params(self, run_id: str, logged: dict[str, str], params: dict[str, Any]) -> None:
        """Log params not yet on the run; a changed value is skipped (MLflow forbids it)."""
        new: list[tuple[str, str]] = []
        for name, value in params.items():
            key, text = mlflow_name(name), _param_value(value)
            if key in logged:
                if logged[key] != text:
                    log.debug("MLflow: param %s already logged as %r; keeping it", key, logged[key])
                continue
            logged[key] = text
            new.append((key, text))
        if new:
            self._log_batch(run_id, params=new)

    def _text_artifact(self, run_id: str, text: str, name: str) -> None:
        self._retry(self._mlflow().log_text, run_id, redact_text(text, self._secrets), name)

    def _terminate(self, run_id: str, status: str, end_ms: int | None = None) -> None:
        self._retry(self._mlflow().set_terminated, run_id, status, end_ms or _now_ms())

    # -- parent run ------------------------------------------------------------------------
    def _ensure_parent(self, experiment_key: str | None = None) -> str:
        if self._parent_id is not None:
            return self._parent_id
        client = self._mlflow()
        name = experiment_key or self.workspace.name
        existing = self._retry(
            client.search_runs, [self._experiment_id],
            filter_string=f"tags.`automl.experiment_id` = '{_quote(name)}'", max_results=50)
        parents = [r for r in existing if "mlflow.parentRunId" not in r.data.tags]
        if parents:  # `automl resume`: continue the same parent run and its children
            run = parents[0]
            self._parent_id = run.info.run_id
            self._parent_params = dict(run.data.params)
            if run.info.status != "RUNNING":
                self._retry(client.update_run, self._parent_id, "RUNNING")
            self._load_children()
        else:
            run = self._retry(client.create_run, self._experiment_id, run_name=name, tags={
                "automl.experiment_id": name, "automl.results.workspace": str(self.workspace),
                "automl.kind": "experiment"})
            self._parent_id = run.info.run_id
        self._parent_ended = False
        return self._parent_id

    def _load_children(self) -> None:
        client = self._mlflow()
        token = None
        while True:
            page = self._retry(
                client.search_runs, [self._experiment_id],
                filter_string=f"tags.`mlflow.parentRunId` = '{self._parent_id}'",
                max_results=1000, page_token=token)
            for run in page:
                rec_id = run.data.tags.get("automl.rec_id")
                if not rec_id:
                    continue
                segment = int(run.data.tags.get("segment", "0") or 0)
                current = self._children.get(rec_id)
                if current is None or segment > current.segment:
                    self._children[rec_id] = _Child(
                        run.info.run_id, segment, dict(run.data.params),
                        ended=run.info.status != "RUNNING", steps_loaded=False,
                        status=run.data.tags.get("status", ""))
            token = page.token
            if not token:
                break

    def _on_experiment_started(self, experiment: dict[str, Any], ts: int) -> None:
        self.metric = str(experiment.get("metric") or self.metric)
        settings = redact_tree(experiment.get("settings") or {}, self._secrets)
        space = redact_tree(redact_space_rows(experiment.get("space") or []), self._secrets)
        parent = self._ensure_parent(str(experiment.get("experiment_id") or self.workspace.name))
        params: dict[str, Any] = {}
        for key in _EXPERIMENT_PARAMS:
            if key in experiment and not is_secret_key(key):
                params[key] = redact_tree(experiment[key], self._secrets)
        for key, value in flatten(settings, "settings").items():
            if not is_secret_key(key) and value is not None and value != REDACTED:
                params[key] = value
        self._log_params(parent, self._parent_params, params)
        self._log_batch(parent, tags=[("metric", self.metric),
                                      ("direction", experiment.get("direction", "")),
                                      ("algo", experiment.get("algo", ""))])
        self._text_artifact(parent, json.dumps(_json_safe(space), indent=1), "space.json")

    def _on_open_store(self) -> None:
        self._mlflow()

    def _on_replay(self, records: list[TrialRecord], ts: int) -> None:
        self._ensure_parent()
        for record in records:
            if record.status not in RUN_STATUS:
                continue
            child = self._children.get(record.rec_id)
            if child is None or not child.ended or child.status != record.status:
                self._on_trial_ended(record, ts)

    def _on_trials_set_aside(self, rec_ids: list[str], ts: int) -> None:
        self._ensure_parent()  # loads the children of a resumed experiment
        for rec_id in rec_ids:
            child = self._children.get(rec_id)
            if child is None:
                continue  # started too late for its run to be created
            self._log_batch(child.run_id, tags=[
                ("status", "set_aside"),
                ("set_aside_folder", str(self.workspace / "abandoned" / rec_id))])
            if not child.ended:
                self._terminate(child.run_id, "KILLED", ts)
            child.ended, child.status = True, "set_aside"

    def _on_experiment_ended(self, doc: dict[str, Any], ts: int) -> None:
        parent = self._ensure_parent()
        metric = str(doc.get("metric_name") or self.metric)
        best = doc.get("best") or None
        metrics, tags = [], []
        if best:
            score = _number(best.get("score"))
            step = int(best.get("observed_budget") or 0)
            if score is not None:
                metrics.append((f"best_{metric}", score, ts, step))
            tags += [("best_rec_id", best.get("rec_id", "")),
                     ("best_checkpoint", best.get("checkpoint_uri") or ""),
                     ("best_observed_budget", step)]
        tags.append(("trials", len(doc.get("all_recs") or [])))
        tags += self._tag_front_and_baseline(doc)
        for name, gain in (doc.get("comparison_to_baseline") or {}).items():
            value = _number(gain.get("gain"))
            if value is not None:
                metrics.append((mlflow_name(f"gain_over_baseline_{name}"), value, ts, 0))
        self._log_batch(parent, metrics=metrics, tags=tags)
        safe = redact_tree(doc, self._secrets)
        self._text_artifact(parent, json.dumps(_json_safe(safe), indent=1), "best_rec.json")
        self._end_open_children("KILLED")
        self._terminate(parent, "FINISHED" if best else "FAILED", ts)
        self._parent_ended = True

    def _tag_front_and_baseline(self, doc: dict[str, Any]) -> list[tuple[str, Any]]:
        """Tag the Pareto front's trial runs (``pareto_front``, with their objective values) and
        the baseline's (``baseline``), so MLflow's search finds them; the parent's tags name
        them."""
        front = [m for m in doc.get("pareto_front") or [] if isinstance(m, dict)]
        for member in front:
            child = self._children.get(str(member.get("rec_id")))
            if child is not None:
                self._log_batch(child.run_id, tags=[
                    ("pareto_front", "true"),
                    *((mlflow_name(f"objective.{k}"), v)
                      for k, v in (member.get("objectives") or {}).items())])
        baseline = doc.get("baseline") or {}
        child = self._children.get(str(baseline.get("rec_id"))) if baseline else None
        if child is not None:
            self._log_batch(child.run_id, tags=[("baseline", "true")])
        tags: list[tuple[str, Any]] = []
        if len(doc.get("objectives") or []) > 1:
            tags.append(("pareto_front", ",".join(str(m.get("rec_id")) for m in front)))
        if "baseline" in doc:
            tags.append(("baseline_rec_id", baseline.get("rec_id") or "not trained"))
        return tags

    # -- child runs ------------------------------------------------------------------------
    def _child(self, record: TrialRecord, ts: int) -> _Child:
        """The trial's current child run; a new segment run when its hyperparameters changed."""
        params = {mlflow_name(k): _param_value(v) for k, v in record.params.items()
                  if not is_secret_key(k)}
        child = self._children.get(record.rec_id)
        if child is not None and child.params == params:
            return child
        client = self._mlflow()
        parent = self._ensure_parent()
        child = self._children.get(record.rec_id)  # resume may have loaded it just now
        if child is not None and child.params == params:
            return child
        segment = 0 if child is None else child.segment + 1
        tags = {"mlflow.parentRunId": parent, "automl.rec_id": record.rec_id,
                "automl.kind": "trial", "segment": str(segment), "status": record.status,
                "budget": str(record.budget)}
        if record.parent:
            tags["parent_trial"] = str(record.parent)
        if child is not None:
            tags["previous_segment_run_id"] = child.run_id
            if not child.ended:  # the old segment ends here: PBT replaced its config
                self._log_batch(child.run_id, tags=[("status", "exploited")])
                self._terminate(child.run_id, "FINISHED", ts)
                child.ended = True
        name = record.rec_id if segment == 0 else f"{record.rec_id}/segment-{segment}"
        run = self._retry(client.create_run, self._experiment_id, start_time=ts, run_name=name,
                          tags=tags)
        new = _Child(run.info.run_id, segment, {})
        if child is not None:
            self._log_batch(child.run_id, tags=[("next_segment_run_id", new.run_id)])
        self._log_params(new.run_id, new.params, params)
        new.params = params
        self._children[record.rec_id] = new
        return new

    def _on_trial_started(self, record: TrialRecord, ts: int) -> None:
        child = self._child(record, ts)
        if child.ended:  # restarted after it ended (restore): reopen it
            self._retry(self._mlflow().update_run, child.run_id, "RUNNING")
            child.ended = False
        tags = [("status", "running"), ("budget", record.budget)]
        if record.parent:
            tags.append(("parent_trial", record.parent))
        self._log_batch(child.run_id, tags=tags)

    def _log_results(self, results: list[_Result]) -> None:
        by_run: dict[str, tuple[list, dict[str, str]]] = {}
        for result in results:
            child = self._child(result.record, result.ts)
            self._load_steps(child)
            metrics, tags = by_run.setdefault(child.run_id, ([], {}))
            metrics += [(k, v, result.ts, result.epoch) for k, v in result.metrics.items()]
            tags.update(result.tags)
            child.steps.add(result.epoch)
            if child.first_step is None or result.epoch < child.first_step:
                child.first_step = result.epoch
        for run_id, (metrics, tags) in by_run.items():
            self._log_batch(run_id, metrics=metrics, tags=list(tags.items()))

    def _load_steps(self, child: _Child) -> None:
        if child.steps_loaded:
            return
        child.steps_loaded = True
        history = self._retry(self._mlflow().get_metric_history, child.run_id,
                              mlflow_name(self.metric))
        child.steps = {int(m.step) for m in history}
        child.first_step = min(child.steps, default=None)

    def _on_trial_ended(self, record: TrialRecord, ts: int) -> None:
        child = self._child(record, ts)
        self._load_steps(child)
        folder = Path(record.folder) if record.folder else None
        spec_text = None
        if folder is not None and (folder / "spec.yaml").is_file():
            spec_text = self._redacted_spec(folder / "spec.yaml")
        # Results this run never saw (events lost, or logged before a resume): backfill them.
        metrics = []
        for result in record.results:
            epoch = int(result.get("epoch", 0))
            if epoch in child.steps:
                continue
            if child.segment > 0 and (child.first_step is None or epoch < child.first_step):
                continue  # an earlier segment's epochs belong to the earlier run
            for key, value in result.items():
                number = _number(value)
                if key != "epoch" and number is not None:
                    metrics.append((key, number, ts, epoch))
            child.steps.add(epoch)
        observed = record.observed_budget
        metrics.append(("observed_budget", float(observed), ts, observed))
        message = redact_text(record.failure_message or "", self._secrets)
        tags = [("status", record.status), ("recovered", str(record.status == "recovered").lower()),
                ("observed_budget", observed), ("budget", record.budget),
                ("retries", record.retries)]
        if record.failure_class:
            tags.append(("failure_class", record.failure_class))
        if message:
            tags.append(("failure_message", _tag_value(message, MESSAGE_CHARS)))
        for name in ("rung", "bracket", "proposed_by"):
            if getattr(record, name) is not None:
                tags.append((name, getattr(record, name)))
        if record.parent:
            tags.append(("parent_trial", record.parent))
        score = record.score(self.metric)
        if score is not None:
            tags.append(("score", repr(score)))
        self._log_batch(child.run_id, metrics=metrics, tags=tags)
        if spec_text is not None:
            self._text_artifact(child.run_id, spec_text, "spec.yaml")
        if folder is not None and (folder / "train.log").is_file():
            self._text_artifact(child.run_id, _read_tail(folder / "train.log"),
                                "train_log_tail.txt")
        self._terminate(child.run_id, RUN_STATUS.get(record.status, "KILLED"), ts)
        child.ended, child.status = True, record.status

    def _redacted_spec(self, path: Path) -> str:
        return redact_spec_text(path.read_text(encoding="utf-8", errors="replace"), self._secrets)

    def _end_open_children(self, status: str) -> None:
        for child in self._children.values():
            if not child.ended:
                self._log_batch(child.run_id, tags=[("status", "interrupted")])
                self._terminate(child.run_id, status)
                child.ended, child.status = True, "interrupted"

    def _finish_open_runs(self) -> None:
        if self._client is None:
            return
        self._end_open_children("KILLED")
        if self._parent_id is not None and not self._parent_ended:
            self._terminate(self._parent_id, "KILLED")
            self._parent_ended = True


def _snapshot(record: TrialRecord, results: bool = True) -> TrialRecord:
    """A copy the driver may keep mutating without affecting the queued event."""
    return dataclasses.replace(record, params=dict(record.params),
                               results=list(record.results) if results else [])


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
