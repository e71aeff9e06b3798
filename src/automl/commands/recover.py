"""``automl recover WORKSPACE``: rebuild history.json and best_rec.json from the trial folders
(:func:`automl.resume.recover.recover`) and say what was found."""

from __future__ import annotations

from pathlib import Path

from automl.resume.recover import recover


def main_recover(args) -> int:
    """``automl recover WORKSPACE`` (args.workspace)."""
    summary = recover(Path(args.workspace))
    counts = ", ".join(f"{n} {status}" for status, n in summary["by_status"].items()) or "none"
    print(f"recovered {summary['workspace']}: {summary['trials']} trials ({counts}); "
          f"old history.json was {summary['history_was']}")
    best = summary["best"]
    if best is None:
        print(f"no trial has a finite {summary['metric']}: best_rec.json has no best")
        return 1
    change = ""
    if summary["previous_best"] and summary["previous_best"] != best["rec_id"]:
        change = f" (was {summary['previous_best']})"
    print(f"best trial: {best['rec_id']}{change}  {summary['metric']} = {best['score']:.4f} at "
          f"{best['observed_budget']} epochs")
    print(f"checkpoint: {best['checkpoint_uri']}")
    if summary["state"] in ("running", "prepared"):
        print(f"note: state.json still says '{summary['state']}': the experiment did not end "
              f"cleanly (left as is)")
    return 0
