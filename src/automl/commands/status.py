"""``automl status WORKSPACE``: progress of an experiment, from another terminal or afterwards.

Reads only files the running driver rewrites atomically (``state.json``, ``history.json``), so it
never disturbs (or waits for) the experiment.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from automl.contract import FINISHED
from automl.errors import UserError
from automl.observers.progress import show_value, short_name
from automl.results.records import read_history
from automl.results.best import choose_best
from automl.results.workspace import Workspace


def print_status(path: Path) -> int:
    workspace = Workspace.open(path)
    experiment = workspace.read_experiment()
    state = workspace.state()
    running = workspace.is_locked()
    label = state.get("state", "unknown")
    if label == "running" and not running:
        label = "interrupted (no process holds the workspace; `automl resume` continues it)"
    try:
        _, records = read_history(workspace.history) if workspace.history.exists() else ({}, [])
    except (OSError, ValueError) as exc:
        raise UserError(f"{workspace.history}: unreadable ({exc}); run `automl recover {path}`") from None
    metric, direction = experiment["metric"], experiment.get("direction", "max")
    counts: dict[str, int] = {}
    for record in records:
        counts[record.status] = counts.get(record.status, 0) + 1
    total = experiment.get("max_recommendations", len(records))
    done = sum(counts.get(s, 0) for s in FINISHED)
    print(f"experiment {experiment.get('experiment_id', workspace.path.name)} "
          f"({experiment.get('algo')}): {label}")
    started = state.get("started")  # absent when the run ended before its trials started
    elapsed = f"elapsed {(state.get('ended') or time.time()) - started:.0f}s" if started \
        else "never started"
    print(f"progress: {done}/{total} trials finished, {counts.get('running', 0)} running, "
          f"{counts.get('failed', 0)} failed, {counts.get('recovered', 0)} recovered "
          f"| {elapsed}")
    best = choose_best(records, metric, direction)
    if best:
        print(f"best so far: {best.record.rec_id} {metric}={show_value(best.score)} "
              f"at {best.record.observed_budget} epochs")
    for record in records:
        if record.status in ("running", "paused"):
            last = record.results[-1] if record.results else {}
            names = tuple(sorted(record.params))
            params = ", ".join(f"{short_name(k, names)}={show_value(v)}"
                               for k, v in record.params.items())
            print(f"  {record.rec_id} {record.status} epoch {last.get('epoch', 0)}/{record.budget} "
                  f"{metric}={show_value(last.get(metric))} {params}")
    if state.get("failures"):
        print(f"failures: {state['failures']}")
    if workspace.best_rec.exists() and label == "completed":
        best_doc = json.loads(workspace.best_rec.read_text())
        if best_doc.get("best"):
            print(f"checkpoint: {best_doc['best']['checkpoint_uri']}")
    return 0


def print_list(root: Path) -> int:
    """``automl list [ROOT]``: every workspace under ROOT with algorithm, best score and state."""
    if not root.is_dir():
        raise UserError(f"{root}: no such folder; pass the folder that holds your workspaces "
                        f"(default ./automl-workspaces)")
    rows = []
    for folder in sorted(p for p in root.iterdir() if (p / "experiment.yaml").exists()):
        workspace = Workspace(folder.resolve())
        try:
            experiment = workspace.read_experiment()
        except UserError:
            rows.append((folder.name, "?", "unreadable", "-", "-"))
            continue
        state = workspace.state().get("state", "unknown")
        if state == "running" and not workspace.is_locked():
            state = "interrupted"
        score, trials = "-", "-"
        if workspace.best_rec.exists():
            try:
                doc = json.loads(workspace.best_rec.read_text())
                best = doc.get("best") or {}
                score = show_value(best.get("score")) if best else "-"
                trials = str(len(doc.get("all_recs", [])))
            except (OSError, ValueError):
                score = "unreadable"
        rows.append((folder.name, str(experiment.get("algo")), state,
                     f"{experiment.get('metric', '')}={score}", trials))
    if not rows:
        print(f"no experiments under {root}")
        return 0
    widths = [max(len(r[i]) for r in rows + [("experiment", "algo", "state", "best", "trials")])
              for i in range(5)]
    for row in [("experiment", "algo", "state", "best", "trials"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    return 0
