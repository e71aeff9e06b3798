"""``automl recover WORKSPACE``: rebuild ``history.json`` and ``best_rec.json`` from the trial folders.

Everything needed to know what an experiment found is on disk, written by the trials themselves:
``trials/<rec_id>/spec.yaml`` (the values the trial ran with), ``results/train/status.json`` (what
the trainer reported), ``outcome.json`` (how the trial ended) and the checkpoint files. After a
driver crash, a killed terminal, or a deleted/corrupted ``history.json``, this rebuilds both
documents from those files alone:

* params: the trial's ``spec.yaml`` values of the searched (and pinned) parameter names of
  ``experiment.yaml``'s ``space``;
* results: every validation of status.json carrying the experiment's metric, read in TAO's
  dialect (:mod:`automl.tao.progress`: epochs completed = 0-based epoch + 1; finite values only,
  as the engine reports them);
* outcome: ``outcome.json``; without it (the trial was cut off), status.json decides through
  :func:`automl.results.failures.decide`: an end that TAO calls success ("Train finished successfully.",
  or a SUCCESS line) means exit 0, a FAILURE line a failed process; no final line means the trial was cut off with the experiment: ``recovered`` when it
  had reached its epoch budget with a finite metric, else ``stopped`` (its results count like a
  scheduler-stopped trial's);
* whatever a readable old ``history.json`` knows that the folders do not (creation order, PBT
  parent, rung, bracket) is kept.

The best trial is then chosen exactly as the engine does (:func:`automl.results.best.choose_best`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from automl.contract import OUTCOME, results_dir
from automl.errors import UserError
from automl.results.records import TrialRecord, read_history, write_history
from automl.results.workspace import Workspace

_EXPERIMENT_KEYS = ("experiment_id", "algo", "metric", "direction", "budget", "seed",
                    "max_recommendations", "max_concurrent", "skill_dir", "dataset_root", "created")


@contextlib.contextmanager
def _exclusive(ws: Workspace) -> Iterator[None]:
    """Hold the workspace lock while rewriting its documents; refuse if an experiment runs."""
    with open(ws.path / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"workspace {ws.path} is in use by a running automl process (pid "
                            f"{ws.state().get('pid', '?')}); recover it once that has ended") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _experiment(ws: Workspace) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(experiment.yaml document, old history's experiment dict or None)."""
    try:
        doc = yaml.safe_load(ws.experiment_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{ws.experiment_file}: unreadable ({exc}); the search space and metric "
                        f"of this experiment are unknown, so it cannot be recovered") from None
    if not isinstance(doc, dict) or not doc.get("metric"):
        raise UserError(f"{ws.experiment_file}: no metric recorded; not an automl experiment file")
    try:
        old_experiment, _ = read_history(ws.history)
    except (OSError, ValueError, TypeError, AttributeError):
        old_experiment = None
    return doc, old_experiment


def _old_records(ws: Workspace) -> dict[str, TrialRecord]:
    try:
        return {r.rec_id: r for r in read_history(ws.history)[1]}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}


def _searched_names(doc: dict[str, Any]) -> list[str]:
    from automl.space.params import SearchSpace

    data = doc.get("space")
    if not isinstance(data, dict):
        return []
    try:
        space = SearchSpace.from_json(data)
    except (KeyError, TypeError, ValueError):
        # A space written by another version: the names are all recovery needs.
        return [str(p["name"]) for p in data.get("params", []) if isinstance(p, dict) and "name" in p] \
            + list(data.get("pinned") or {})
    return space.names() + [n for n in space.pinned if n not in space.names()]


def _load_yaml(path: Path) -> dict[str, Any] | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _segment_specs(folder: Path) -> list[Path]:
    def number(path: Path) -> int:
        tail = path.stem.rsplit("_", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    return sorted(folder.glob("spec_segment_*.yaml"), key=number)


def _parent(folder: Path, first_spec: dict[str, Any] | None, trials_dir: Path) -> str | None:
    """PBT: a trial whose first segment resumed from another trial's checkpoint is its child."""
    from automl.skill.spec import get_dotted

    if not first_spec:
        return None
    resume = get_dotted(first_spec, "train.resume_training_checkpoint_path", "")
    if not resume:
        return None
    try:
        rel = Path(str(resume)).resolve().relative_to(trials_dir.resolve())
    except ValueError:
        return None
    owner = rel.parts[0] if rel.parts else None
    return owner if owner and owner != folder.name else None


def rebuild_record(folder: Path, metric: str, names: list[str], default_budget: int,
                   old: TrialRecord | None = None) -> TrialRecord:
    """One trial's record from its folder (``old``: what a previous history.json knew)."""
    from automl.results.failures import decide
    from automl.skill.spec import get_dotted
    from automl.tao.lines import read_status, status_path
    from automl.tao.progress import final_status, read_results, runs, with_train_kpis
    from launchers.base import log_tail

    segments = _segment_specs(folder)
    spec = _load_yaml(folder / "spec.yaml") or (_load_yaml(segments[-1]) if segments else None) or {}
    missing = object()
    params = {}
    for name in names:
        value = get_dotted(spec, name, missing)
        if value is not missing:
            params[name] = value
    if not params and old is not None:
        params = dict(old.params)
    budgets = []
    for path in segments or [folder / "spec.yaml"]:
        epochs = get_dotted(_load_yaml(path) or {}, "train.num_epochs", None)
        if isinstance(epochs, int) and not isinstance(epochs, bool):
            budgets.append(epochs)
    budget = max(budgets, default=old.budget if old else default_budget)

    record = TrialRecord(rec_id=folder.name, params=params, folder=str(folder), budget=budget)
    if old is not None:
        for key in ("index", "parent", "rung", "bracket", "proposed_by", "started_at", "retries"):
            setattr(record, key, getattr(old, key))
        record.budget = max(record.budget, old.budget)
    if record.parent is None:
        record.parent = _parent(folder, _load_yaml(segments[0]) if segments else None, folder.parent)

    lines = read_status(status_path(results_dir(folder)))
    results = read_results(lines)
    for result in with_train_kpis(results):
        value = result.metric(metric)
        if value is None or not math.isfinite(value):
            continue
        kpis = {k: v for k, v in result.kpi.items() if k.startswith(("val_", "train_"))}
        kpis[metric] = value
        record.add_result(result.epochs, kpis)

    outcome = _load_json(folder / OUTCOME)
    if outcome and outcome.get("status"):
        record.status = str(outcome["status"])
        record.failure_class = outcome.get("failure_class")
        record.failure_message = str(outcome.get("message") or "")
        record.retries = int(outcome.get("retries", record.retries) or 0)
        if isinstance(outcome.get("time"), (int, float)):
            record.ended_at = float(outcome["time"])
    else:
        final = final_status(runs(lines)[-1]) if lines else None
        if final is None:
            # Cut off with the experiment (driver crash, kill): the process never said how it ended.
            reached = record.observed_budget >= record.budget > 0 and record.score(metric) is not None
            record.status = "recovered" if reached else "stopped"
            record.failure_message = ("interrupted: no outcome.json and no final status line (the "
                                      "experiment ended before this trial did)")
        else:
            code = 0 if final == "SUCCESS" else 1
            decided = decide(code, lines, results, log_tail(folder / "train.log"), metric,
                             record.budget, stopped=False)
            record.status = decided.status
            record.failure_class = decided.failure_class
            record.failure_message = decided.message
    if record.started_at is None and segments:
        record.started_at = segments[0].stat().st_mtime
    return record


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _old_best(ws: Workspace) -> tuple[str | None, float | None]:
    data = _load_json(ws.best_rec)
    best = (data or {}).get("best")
    if isinstance(best, dict):
        return best.get("rec_id"), best.get("score")
    return None, None


def recover(workspace: Path) -> dict:
    """Rebuild ``history.json`` and ``best_rec.json`` of ``workspace`` from its trial folders.

    Returns a summary: ``{"workspace", "trials", "by_status", "best": {rec_id, score,
    checkpoint_uri, observed_budget} | None, "previous_best": rec_id | None, "history_was":
    "ok" | "missing" | "unreadable", "state"}``. Raises UserError when the workspace is running
    or unusable.
    """
    from automl.results.best import best_rec, choose_best, write_best_rec

    ws = Workspace.open(Path(workspace))
    with _exclusive(ws):
        doc, old_experiment = _experiment(ws)
        metric = str(doc["metric"])
        direction = str(doc.get("direction") or "max")
        if direction not in ("max", "min"):
            raise UserError(f"{ws.experiment_file}: direction {direction!r} is not max or min")
        names = _searched_names(doc)
        history_was = "missing" if not ws.history.exists() else \
            ("ok" if old_experiment is not None else "unreadable")
        old = _old_records(ws)
        previous_best, _ = _old_best(ws)

        folders = [p for p in ws.trials.iterdir() if p.is_dir()] if ws.trials.is_dir() else []
        default_budget = int(doc.get("budget") or 0)
        records = [rebuild_record(f, metric, names, default_budget, old.get(f.name)) for f in folders]
        # Creation order: the old history's index where known, else when the trial first wrote its spec.
        unknown = sorted((r for r in records if not r.index),
                         key=lambda r: (r.started_at or 0.0, r.rec_id))
        taken = {r.index for r in records if r.index}
        next_index = 1
        for record in unknown:
            while next_index in taken:
                next_index += 1
            record.index = next_index
            taken.add(next_index)

        experiment = old_experiment if old_experiment else \
            {k: doc[k] for k in _EXPERIMENT_KEYS if k in doc}
        experiment_id = str(doc.get("experiment_id") or ws.path.name)
        best = choose_best(records, metric, direction)
        best_doc = best_rec(experiment_id, records, metric, direction, best)
        write_history(ws.history, experiment, records)
        write_best_rec(ws.best_rec, best_doc)
        if ws.state_file.exists() and _load_json(ws.state_file) is None:
            # Unreadable (torn by another tool, a disk error; ours are atomic), which `automl
            # resume` refuses: nobody knows how the run ended, so it is marked interrupted.
            import time

            from automl.results.records import atomic_write_json

            atomic_write_json(ws.state_file, {"state": "interrupted", "updated": time.time(),
                                              "note": "state.json was unreadable; rebuilt by "
                                                      "automl recover"})

    by_status: dict[str, int] = {}
    for record in records:
        by_status[record.status] = by_status.get(record.status, 0) + 1
    summary_best = None
    if best_doc["best"]:
        b = best_doc["best"]
        summary_best = {k: b[k] for k in ("rec_id", "score", "observed_budget", "checkpoint_uri")}
    return {
        "workspace": str(ws.path),
        "metric": metric,
        "direction": direction,
        "trials": len(records),
        "by_status": dict(sorted(by_status.items())),
        "best": summary_best,
        "previous_best": previous_best,
        "history_was": history_was,
        "state": ws.state().get("state"),
    }
