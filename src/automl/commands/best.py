"""``automl best``: the best trial (score, observed budget, hyperparameters, exact checkpoint),
its gain over the template's configuration and, with several objectives, the Pareto front.
``automl run`` and the remote client print the same lines through :func:`print_best`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from automl.contract import train_dir
from automl.errors import UserError


def main_best(args: argparse.Namespace) -> int:
    from automl.results.best import read_best_rec
    from automl.results.workspace import Workspace

    workspace = Workspace.open(args.workspace)
    if not workspace.best_rec.exists():
        raise UserError(f"{workspace.path}: no best_rec.json yet (the experiment has not finished); "
                        f"see `automl status {workspace.path}`")
    doc = read_best_rec(workspace.best_rec)
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    if not doc.get("best"):
        raise UserError(f"{workspace.path}: no trial of this experiment produced a finite "
                        f"{doc['metric_name']}, so there is no checkpoint to hand off; see "
                        f"`automl status {workspace.path}` for why they failed")
    if args.pareto:
        print_front(doc)
        return 0
    return print_best(doc, workspace.path)


def print_front(doc: dict[str, Any]) -> None:
    """``automl best --pareto``: one line per front member, its objectives and checkpoint."""
    from automl.space.params import format_value as show_value

    names = [o["metric"] for o in doc.get("objectives") or []] or [doc["metric_name"]]
    ways = {o["metric"]: o["direction"] for o in doc.get("objectives") or []}
    front = doc.get("pareto_front") or []
    print(f"Pareto front: {len(front)} trial(s) at the largest budget, objectives "
          + ", ".join(f"{n} ({ways.get(n, doc['direction'])})" for n in names))
    for member in front:
        values = "  ".join(f"{n}={show_value(member['objectives'].get(n))}" for n in names)
        mark = " (best)" if member["rec_id"] == (doc.get("best") or {}).get("rec_id") else ""
        print(f"  {member['rec_id']}{mark}  {values}  epochs={member['observed_budget']}  "
              f"checkpoint: {member.get('checkpoint_uri') or 'none'}")
    print("hand off any of them: automl handoff ACTION WORKSPACE --trial ID")


def print_baseline(doc: dict[str, Any]) -> None:
    """The best trial's gain over the template's configuration (or why there is none)."""
    from automl.space.params import format_value as show_value

    if "baseline" not in doc:  # a result written without a baseline (recover, older runs)
        return
    comparison = doc.get("comparison_to_baseline")
    if not comparison:
        print(f"baseline: {doc.get('baseline_note') or 'none'}")
        return
    for name, gain in comparison.items():
        relative = gain.get("relative_gain")
        share = f" ({relative:+.0%})" if relative is not None else ""
        print(f"gain: {gain['difference']:+.4g} {name}{share} over the template's configuration "
              f"(trial {doc['baseline']['rec_id']}: {name} = {show_value(gain['baseline'])}; "
              f"{'better' if gain['gain'] > 0 else 'not better' if gain['gain'] == 0 else 'worse'}"
              f", {gain['direction']})")


def print_best(doc: dict[str, Any], workspace: Path) -> int:
    from automl.observers.progress import show_value

    best = doc.get("best")
    if not best:
        print(f"no trial produced a finite {doc['metric_name']}; see {workspace}/history.json",
              file=sys.stderr)
        return 1
    print(f"\nbest trial: {best['rec_id']}  {doc['metric_name']} = {best['score']:.4f} "
          f"(observed at {best['observed_budget']} epochs)")
    print("hyperparameters:")
    from automl.skill.spec import flatten

    for key, value in flatten(best["specs"]).items():
        print(f"  {key} = {show_value(value)}")
    print_baseline(doc)
    if len(doc.get("objectives") or []) > 1:
        print(f"Pareto front: {len(doc.get('pareto_front') or [])} trial(s) "
              f"(automl best {workspace} --pareto)")
    if best.get("checkpoint_uri"):
        print(f"checkpoint: {best['checkpoint_uri']}")
    else:
        # The score counts (the trainer reported it), but there is no model file to hand off.
        print("checkpoint: none")
        folder = train_dir(workspace / "trials" / str(best["rec_id"]))
        print(f"warning: best trial {best['rec_id']} has no checkpoint of epoch "
              f"{best['observed_budget']} in {folder} (the trainer did not write it, or "
              f"deleted it): its score counts, but there is no model to hand off; train again "
              f"with these hyperparameters", file=sys.stderr)
    print(f"best_rec.json: {workspace / 'best_rec.json'}")
    return 0
