"""An experiment's progress, from its trial records: what GET /experiments shows at a glance."""

from __future__ import annotations

from typing import Any

from automl.contract import FINISHED
from automl.results.best import choose_best
from automl.results.records import TrialRecord
from automl.study import Settings, trial_count


def progress(records: list[TrialRecord], settings: dict[str, Any],
             experiment: dict[str, Any]) -> dict[str, Any]:
    # The experiment's resolved objective (a submission may leave it to the network's profile).
    metric = experiment.get("metric") or settings.get("metric")
    direction = experiment.get("direction") or settings.get("direction") or "max"
    best = choose_best(records, metric, direction) if metric else None
    return {
        "trials_total": trial_count(Settings(**settings)),
        "trials_done": sum(r.status in FINISHED for r in records),
        "trials_running": sum(r.status == "running" for r in records),
        "trials_failed": sum(r.status == "failed" for r in records),
        "epochs_spent": sum(r.observed_budget for r in records),
        "epoch_budget": experiment.get("budget"),
        "best": {"rec_id": best.record.rec_id, "score": best.score,
                 "observed_budget": best.record.observed_budget,
                 "checkpoint": str(best.checkpoint.path) if best.checkpoint else None,
                 "checkpoint_epoch": best.checkpoint.tao_epoch if best.checkpoint else None}
        if best else None,
    }


def shown_status(status: str, live: bool) -> str:
    """A trial's status as the API shows it: nothing runs while its experiment's run is not
    live (paused, queued, ended), whatever the last history said, so "running" reads "paused"
    there; the API, the CLI (through the API) and the page then count the same."""
    return "paused" if status == "running" and not live else status


def shown_progress(doc: dict[str, Any], live: bool) -> dict[str, Any]:
    """:func:`progress` as of now: no trial counts as running unless the run is live."""
    return doc if live else {**doc, "trials_running": 0}
