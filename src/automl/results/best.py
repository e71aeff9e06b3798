"""The experiment's answer: the best trial, its exact checkpoint, ``best_rec.json``.

The best trial is chosen among trials observed at the **largest budget** any trial reached: a
trial that looked good after 1 epoch is not comparable with one trained for 27, so lower-budget
wins are context, not answers (the metric is the value at the trial's last observed epoch).
``best_rec.json`` follows the format in DESIGN.md and is validated with jsonschema before it is
written.

With several objectives (:mod:`automl.objective`) the result also keeps the **Pareto front**:
the trials at that largest budget that no other trial there beats on every objective, each
with its objectives, budget and exact checkpoint (any of them can be handed off:
``automl handoff ACTION WS --trial ID``). ``best`` is then the front member best on the primary
objective (``--scalarize weighted``: the best weighted sum). Every result also states its
**baseline**: the trial trained with the template's configuration (every searched parameter at
its default, the user's overrides included), and the best trial's gain over it per objective;
where no trial trained that configuration, it says so and reports no gain.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import jsonschema

from automl.contract import COUNTED, train_dir
from automl.objective import Objectives
from automl.results.records import TrialRecord, atomic_write_json
from automl.secrets import redact
from automl.skill.spec import nest
from automl.space.lists import assemble
from automl.tao.checkpoints import CheckpointFile, checkpoint_after
from automl.validation import BEST_REC, load, validate

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
    return Best(record, score, checkpoint_after(train_dir(record.folder), record.observed_budget))


def _scores(record: TrialRecord, objectives: Objectives) -> tuple[float, ...] | None:
    return objectives.values({name: record.score(name) for name in objectives.names})


def _at_top_budget(records: list[TrialRecord], objectives: Objectives
                   ) -> list[tuple[TrialRecord, tuple[float, ...]]]:
    """Counted trials with every objective, at the largest budget such trials reached."""
    scored = [(r, _scores(r, objectives)) for r in records if r.status in COUNTED]
    complete = [(r, v) for r, v in scored if v is not None]
    if not complete:
        return []
    top = max(r.observed_budget for r, _ in complete)
    return [(r, v) for r, v in complete if r.observed_budget == top]


def pareto_front(records: list[TrialRecord], objectives: Objectives
                 ) -> list[tuple[TrialRecord, tuple[float, ...]]]:
    """The non-dominated trials at the largest budget (in the records' order), with their
    objective values; one objective: the trials tied at the best score."""
    points = _at_top_budget(records, objectives)
    keys = set(objectives.front([(r.rec_id, v) for r, v in points]))
    return [(r, v) for r, v in points if r.rec_id in keys]


def choose(records: list[TrialRecord], objectives: Objectives) -> Best | None:
    """The experiment's answer: the best on the primary objective (:func:`choose_best`), or,
    for a weighted-sum search, the trial with the best weighted sum."""
    if not objectives.weighted:
        return choose_best(records, objectives.metric, objectives.direction)
    points = _at_top_budget(records, objectives)
    if not points:
        return None
    record, values = max(points, key=lambda pair: objectives.scalar(pair[1]))
    return Best(record, values[0],
                checkpoint_after(train_dir(record.folder), record.observed_budget))


def kept_trials(records: list[TrialRecord], objectives: Objectives) -> set[str]:
    """The trials whose scored checkpoint retention keeps: the best and the Pareto front."""
    best = choose(records, objectives)
    front = {r.rec_id for r, _ in pareto_front(records, objectives)} if len(objectives) > 1 \
        else set()
    return front | ({best.record.rec_id} if best else set())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return a == b


def find_baseline(records: list[TrialRecord], configuration: Mapping[str, Any] | None
                  ) -> TrialRecord | None:
    """The first trial that trained the template's ``configuration`` (searched names -> values;
    None: it has none, e.g. a searched parameter without a default)."""
    if configuration is None:
        return None
    for record in sorted(records, key=lambda r: r.index):
        if all(_same(record.params.get(k), v) for k, v in configuration.items()):
            return record
    return None


def _baseline(records: list[TrialRecord], objectives: Objectives, best: Best | None,
              configuration: Mapping[str, Any] | None) -> dict[str, Any]:
    """best_rec.json's ``baseline``, ``comparison_to_baseline`` and, where there is no gain to
    report, ``baseline_note`` saying why (never an invented baseline)."""
    record = find_baseline(records, configuration)
    if record is None:
        why = ("the template's configuration was not trained: the algorithm did not propose "
               "it (--no-prior; asha, hyperband, hyperband_es and dehb draw at random), or a "
               "searched parameter has no default")
        return {"baseline": None, "comparison_to_baseline": None, "baseline_note": why}
    scores = {name: record.score(name) for name in objectives.names}
    doc: dict[str, Any] = {
        "baseline": {"rec_id": record.rec_id, "status": record.status, "scores": scores,
                     "observed_budget": record.observed_budget},
        "comparison_to_baseline": None, "baseline_note": None}
    if best is None:
        doc["baseline_note"] = "no best trial to compare with"
    elif record.observed_budget != best.record.observed_budget:
        doc["baseline_note"] = (f"the template's configuration was observed at "
                                f"{record.observed_budget} epoch(s), the best at "
                                f"{best.record.observed_budget}: not comparable")
    else:
        comparison = {}
        for objective in objectives:
            base, value = scores[objective.metric], best.record.score(objective.metric)
            if base is None or value is None:
                continue
            gain = objective.sign * (value - base)
            comparison[objective.metric] = {
                "direction": objective.direction, "baseline": base, "best": value,
                "difference": value - base, "gain": gain,
                "relative_gain": gain / abs(base) if base else None}
        doc["comparison_to_baseline"] = comparison
    return doc


def _checkpoint_fields(record: TrialRecord) -> dict[str, Any]:
    ckpt = checkpoint_after(train_dir(record.folder), record.observed_budget)
    return {"checkpoint_uri": str(ckpt.path) if ckpt else None,
            "checkpoint_epoch": ckpt.tao_epoch if ckpt else None,
            "checkpoint_step": ckpt.step if ckpt else None}


def _specs(record: TrialRecord) -> dict[str, Any]:
    # Budget keys are not hyperparameters: the budget is reported as observed_budget.
    # Searched lists as the trial's spec had them, not as their sub-parameters.
    return nest(assemble(redact(record.params), record.observed_budget))


def best_rec(experiment_id: str, records: list[TrialRecord], metric: str, direction: str,
             best: Best | None, objectives: Objectives | None = None,
             baseline: Mapping[str, Any] | None | Literal["unknown"] = "unknown"
             ) -> dict[str, Any]:
    """best_rec.json's document. ``objectives`` (default: ``metric`` alone) adds the Pareto
    front; ``baseline`` is the template's configuration (searched names -> values) whose trial
    the result compares the best with (None: there is none, e.g. a searched parameter has no
    default; "unknown": the caller cannot tell, and the document says nothing of a baseline)."""
    objectives = objectives or Objectives.single(metric, "min" if direction == "min" else "max")
    doc: dict[str, Any] = {
        "schema_version": BEST_REC_VERSION,
        "experiment_id": experiment_id,
        "metric_name": metric,
        "direction": direction,
        "best": None,
        "all_recs": [
            {"rec_id": r.rec_id, "score": r.score(metric), "status": r.status,
             "observed_budget": r.observed_budget,
             # Every trial's objectives, so a plot can draw the dominated ones too.
             **({"objectives": {n: r.score(n) for n in objectives.names}}
                if len(objectives) > 1 else {})}
            for r in sorted(records, key=lambda r: r.index)
        ],
    }
    doc["objectives"] = objectives.to_json()
    doc["scalarize"] = objectives.scalarize
    doc["pareto_front"] = [
        {"rec_id": r.rec_id, "objectives": dict(zip(objectives.names, values)),
         "observed_budget": r.observed_budget, **_checkpoint_fields(r), "specs": _specs(r)}
        for r, values in pareto_front(records, objectives)]
    if baseline != "unknown":
        doc.update(_baseline(records, objectives, best, baseline))
    if best is not None:
        ckpt = best.checkpoint
        doc["best"] = {
            "rec_id": best.record.rec_id,
            "score": best.score,
            "specs": _specs(best.record),
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
