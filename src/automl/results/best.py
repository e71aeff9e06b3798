"""The experiment's answer: the best trial, its exact checkpoint, ``best_rec.json``.

The best trial is chosen among trials observed at the **largest budget** any trial reached: a
trial that looked good after 1 epoch is not comparable with one trained for 27, so lower-budget
wins are context, not answers (the metric is the value at the trial's last observed epoch).
``best_rec.json`` follows the format in DESIGN.md and is validated with jsonschema before it is
written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from automl.schema_files import BEST_REC, load, validate
from automl.tao.checkpoints import CheckpointFile, checkpoint_after
from automl.contract import COUNTED
from automl.results.records import TrialRecord, atomic_write_json
from automl.secrets import redact
from automl.skill.spec import nest
from automl.space.lists import assemble

BEST_REC_VERSION = 1


@dataclass(frozen=True)
class Best:
    record: TrialRecord
    score: float
    checkpoint: CheckpointFile | None


def choose_best(records: list[TrialRecord], metric: str, direction: str) -> Best | None:
    scored = [(r, r.score(metric)) for r in records if r.status in COUNTED]
    scored = [(r, s) for r, s in scored if s is not None]
    if not scored:
        return None
    top_budget = max(r.observed_budget for r, _ in scored)
    at_top = [(r, s) for r, s in scored if r.observed_budget == top_budget]
    pick = max if direction == "max" else min
    record, score = pick(at_top, key=lambda pair: pair[1])
    train_dir = Path(record.folder) / "results" / "train"
    return Best(record, score, checkpoint_after(train_dir, record.observed_budget))


def best_rec(experiment_id: str, records: list[TrialRecord], metric: str, direction: str,
             best: Best | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": BEST_REC_VERSION,
        "experiment_id": experiment_id,
        "metric_name": metric,
        "direction": direction,
        "best": None,
        "all_recs": [
            {"rec_id": r.rec_id, "score": r.score(metric), "status": r.status,
             "observed_budget": r.observed_budget}
            for r in sorted(records, key=lambda r: r.index)
        ],
    }
    if best is not None:
        ckpt = best.checkpoint
        doc["best"] = {
            "rec_id": best.record.rec_id,
            "score": best.score,
            # Budget keys are not hyperparameters: the budget is reported as observed_budget.
            # Searched lists as the trial's spec had them, not as their sub-parameters.
            "specs": nest(assemble(redact(best.record.params), best.record.observed_budget)),
            "observed_budget": best.record.observed_budget,
            "checkpoint_uri": str(ckpt.path) if ckpt else None,
            "checkpoint_epoch": ckpt.tao_epoch if ckpt else None,
            "checkpoint_step": ckpt.step if ckpt else None,
        }
    jsonschema.validate(doc, load(BEST_REC))
    return doc


def write_best_rec(path: Path, doc: dict[str, Any]) -> None:
    atomic_write_json(path, doc)


def read_best_rec(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    validate(doc, BEST_REC, str(path), f"run `automl recover {path.parent}` to rebuild it")
    return doc
