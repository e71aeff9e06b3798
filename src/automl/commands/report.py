"""``automl report WORKSPACE [--out DIR]``: one self-contained HTML file that explains an experiment.

The file (``index.html`` in ``<workspace>/report/`` unless ``--out`` names another folder) holds
the web page's own drawing module (``service/web/views.js``) and stylesheet, inline, and the
experiment as JSON (the same shape the REST API serves the page: the experiment, its trials,
the server-side analysis, and each trial's folder details). Opened from disk it draws the same
views as the live page (header, learning curves, best trial, optimization history, importance,
parallel coordinates with brushing, slice plots, timeline, rungs, lineage, failures, cost,
trial pages, comparison), with no network: its Content-Security-Policy forbids every fetch.

Why one drawing module and not two renderers: the report used to draw the same pictures with
matplotlib (PNG files beside the page) while the page drew them in SVG, so the two drifted
(different colours, different rules, no interaction in the report). Embedding ``views.js`` gives
one implementation of every view, interactive in both places; only the data source differs (the
API, polled, for the page; a JSON snapshot for the report). Python keeps what needs a model or
the workspace: fANOVA importance through Optuna (:func:`importances`, also behind
``GET /api/v1/experiments/{id}/analysis``) and the trial folders' details
(:func:`automl.results.trial_files.trial_details`).

It reads only what the driver writes atomically (``experiment.yaml``, ``history.json`` and its
journal, ``best_rec.json``, ``state.json``, trial folders), so it can be run while the
experiment is still running. Scores follow :mod:`automl.results.best`: a trial's score is its
metric at its last observed epoch, and only trials observed at the largest budget are
comparable. Values of secret keys (:func:`automl.secrets.is_secret_key`) are never embedded.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automl.errors import UserError
from automl.results.failures import HINTS
from automl.results.records import TrialRecord, read_history
from automl.results.trial_files import trial_details
from automl.results.workspace import Workspace
from automl.secrets import REDACTED, is_secret_key, redact_assignments, redact_tree
from automl.space.params import Param, SearchSpace

WEB = Path(__file__).resolve().parents[1] / "service" / "web"  # the page's views.js, style.css
# The report's own policy: inline script and style only, nothing fetched from anywhere.
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data:; base-uri 'none'; form-action 'none'")
# workspace state.json -> the service's experiment state, so both show one vocabulary
STATES = {"prepared": "PENDING", "running": "RUNNING", "completed": "SUCCEEDED",
          "failed": "FAILED", "canceled": "CANCELED"}
TRIAL_LOG_LINES = 40  # per trial, embedded for its trial page


# --------------------------------------------------------------------------------------------
# entry points


def main_report(args: Any) -> int:
    """``automl report``: ``args.workspace`` (Path), ``args.out`` (Path or None)."""
    path = write_report(Path(args.workspace), getattr(args, "out", None))
    print(f"report: {path}")
    return 0


def write_report(workspace: Path, out: Path | None = None) -> Path:
    """Write the single-file report ``index.html``; return its path.

    ``out`` is the folder to write to (default ``<workspace>/report``). Raises UserError for a
    folder that is not a workspace, a workspace without (or with an unreadable) history.json, or
    an output folder that cannot be written.
    """
    data = load(Path(workspace))
    out = Path(out) if out is not None else data.workspace.path / "report"
    page = render(document(data, details=True))
    target = out / "index.html"
    tmp = out / ".index.html.tmp"
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        raise UserError(f"{out}: cannot write the report there ({exc.strerror}); choose another --out") from None
    return target


def render(doc: dict[str, Any]) -> str:
    """The HTML file: views.js and style.css inline, ``doc`` as JSON data (never as markup:
    ``<`` is escaped inside it, so no value can close the script element)."""
    payload = json.dumps(doc, allow_nan=False, default=str).replace("<", "\\u003c")
    views = (WEB / "views.js").read_text(encoding="utf-8")
    css = (WEB / "style.css").read_text(encoding="utf-8")
    if "</script" in views.lower() or "</style" in css.lower():
        raise RuntimeError("views.js/style.css must not contain a closing tag")
    title = f"automl report: {doc['experiment']['name']}".replace("&", "&amp;").replace("<", "&lt;")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title}</title><style>{css}</style></head>\n"
            '<body class="report"><main id="main"><p>This report needs JavaScript.</p></main>\n'
            f'<script type="application/json" id="automl-data">{payload}</script>\n'
            f"<script>{views}\n"
            'Views.report(JSON.parse(document.getElementById("automl-data").textContent));'
            "</script>\n</body></html>\n")


# --------------------------------------------------------------------------------------------
# data


@dataclass
class ReportData:
    workspace: Workspace
    experiment: dict[str, Any]
    records: list[TrialRecord]
    metric: str
    direction: str
    budget: int
    space: SearchSpace | None
    state: dict[str, Any]
    best_doc: dict[str, Any] | None
    best_note: str = ""
    scores: dict[str, float] = field(default_factory=dict)  # rec_id -> finite score

    @property
    def top_budget(self) -> int:
        """The largest budget any scored trial was observed at (the comparable one)."""
        return max((r.observed_budget for r in self.records if r.rec_id in self.scores), default=0)


def load(path: Path) -> ReportData:
    """A workspace's experiment and trial records as the report and the analysis route use
    them (UserError naming the fix when the workspace cannot be read)."""
    workspace = Workspace.open(path)
    if not workspace.history.exists():
        raise UserError(f"{workspace.path}: no history.json yet (no trial has started); "
                        f"see `automl status {workspace.path}`")
    try:
        history_experiment, records = read_history(workspace.history)
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"{workspace.history}: unreadable ({exc}); run `automl recover {workspace.path}`") from None
    experiment = {**history_experiment, **workspace.read_experiment()}
    metric = str(experiment["metric"])  # resolved at prepare (the network's, or --metric)
    direction = "min" if experiment.get("direction") == "min" else "max"
    records = sorted(records, key=lambda r: (r.index, r.started_at or 0.0, r.rec_id))
    budget = int(experiment.get("budget") or max((r.budget for r in records), default=0) or 0)
    space = None
    if isinstance(experiment.get("space"), dict):
        try:
            space = SearchSpace.from_json(experiment["space"])
        except (KeyError, TypeError, ValueError):
            space = None
    best_doc, note = _best_doc(workspace)
    data = ReportData(workspace, experiment, records, metric, direction, budget, space,
                      workspace.state(), best_doc, note)
    for record in records:
        score = record.score(metric)
        if score is not None:
            data.scores[record.rec_id] = score
    return data


def _best_doc(workspace: Workspace) -> tuple[dict[str, Any] | None, str]:
    from automl.results.best import read_best_rec

    if not workspace.best_rec.exists():
        return None, "best_rec.json is not written yet (the experiment is running or was interrupted)"
    try:
        return read_best_rec(workspace.best_rec), ""
    except Exception as exc:  # noqa: BLE001 - invalid JSON or schema: report it, don't crash
        return None, f"best_rec.json is unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"


# --------------------------------------------------------------------------------------------
# the document (the API's shapes, so views.js reads the report as it reads the page)


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: they become null (the views skip nulls)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: REDACTED if is_secret_key(k) else _finite(v) for k, v in params.items()}


def trial_json(record: TrialRecord, score: float | None) -> dict[str, Any]:
    """One trial as ``GET .../trials`` gives it (TrialOut's keys)."""
    return {
        "rec_id": record.rec_id, "index": record.index, "status": record.status, "score": score,
        "observed_budget": record.observed_budget, "budget": record.budget,
        "params": _params(record.params),
        # history.json keeps a NaN/inf as text: here it is null, a value the views skip
        "results": [{k: v if _is_number(v) else None for k, v in r.items()} for r in record.results],
        "failure_class": record.failure_class,
        "failure_message": redact_assignments(record.failure_message),
        "hint": HINTS.get(record.failure_class, HINTS["error"]) if record.failure_class else "",
        "rung": record.rung, "bracket": record.bracket, "parent": record.parent,
        "started_at": record.started_at, "ended_at": record.ended_at, "runs": record.runs,
        "retries": record.retries,
    }


def experiment_json(data: ReportData) -> dict[str, Any]:
    """The experiment as ``GET /experiments/{id}`` gives it (ExperimentOut's keys the views read)."""
    from automl.service.summary import progress

    exp = data.experiment
    settings = exp.get("settings") if isinstance(exp.get("settings"), dict) else {}
    settings = {k: v for k, v in settings.items() if v is not None}
    for key in ("algo", "max_recommendations", "max_concurrent", "seed"):
        if exp.get(key) is not None:
            settings.setdefault(key, exp[key])
    settings.setdefault("max_epochs", data.budget or None)
    state = data.state.get("state", "")
    try:
        shown = progress(data.records, settings, {**exp, "metric": data.metric,
                                                  "direction": data.direction,
                                                  "budget": data.budget or None})
    except (UserError, ValueError, TypeError):  # settings of an older or crafted workspace
        shown = progress(data.records, {}, {**exp, "metric": data.metric,
                                            "direction": data.direction,
                                            "budget": data.budget or None})
        shown["trials_total"] = int(exp.get("max_recommendations") or len(data.records))
    return {
        "id": str(exp.get("experiment_id", data.workspace.path.name)),
        "name": str(exp.get("name") or exp.get("experiment_id") or data.workspace.path.name),
        "state": STATES.get(state, state.upper() or "UNKNOWN"),
        "algorithm": str(exp.get("algo", "")), "metric": data.metric, "direction": data.direction,
        "created": exp.get("created"),
        "started": min((r.started_at for r in data.records if r.started_at), default=None),
        "ended": data.state.get("updated") if state in ("completed", "failed", "canceled") else None,
        "error": None, "workspace": str(data.workspace.path), "owner": "",
        "progress": shown, "settings": redact_tree(settings),
    }


def analysis(data: ReportData) -> dict[str, Any]:
    """What the views need a model or the workspace for (``GET .../analysis`` returns it too):
    fANOVA importance, each parameter's axis (its search range and scale, from the space), and
    best_rec.json when it is written (its comparison to the baseline and Pareto front, if any)."""
    result, note = importances(data)
    names = _param_names(data, data.records)
    axes = [_param_axis(data, n, [r.params.get(n) for r in data.records]) for n in names]
    return {
        "importances": dict(sorted(result.items(), key=lambda kv: -kv[1])),
        "importance_note": note,
        "params": [{"name": a.name, "kind": a.kind, "low": _finite(a.low), "high": _finite(a.high),
                    "log": a.log, "choices": [_finite(c) for c in a.choices]} for a in axes],
        "best_rec": redact_tree(data.best_doc) if data.best_doc is not None else None,
        "best_note": data.best_note,
    }


def document(data: ReportData, details: bool = False) -> dict[str, Any]:
    """The report's data: experiment, trials, analysis and (``details``) each trial's folder."""
    doc = {
        "experiment": experiment_json(data),
        "trials": [trial_json(r, data.scores.get(r.rec_id)) for r in data.records],
        "analysis": analysis(data),
        "generated": time.time(),
    }
    if details:
        doc["details"] = {r.rec_id: trial_details(data.workspace.trials / r.rec_id,
                                                  log_lines=TRIAL_LOG_LINES)
                          for r in data.records}
    return doc


# --------------------------------------------------------------------------------------------
# importance (fANOVA through Optuna)


@dataclass
class _Axis:
    """A parameter's axis: its search range (and scale), or its choices."""

    name: str
    kind: str  # "float" | "int" | "categorical"
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: list = field(default_factory=list)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _param_names(data: ReportData, records: list[TrialRecord]) -> list[str]:
    """Searched parameters (space order), then any other recorded key that varies; no secrets."""
    names = list(data.space.names()) if data.space is not None else []
    pinned = set(data.space.pinned) if data.space is not None else set()
    extra = sorted({k for r in records for k in r.params} - set(names) - pinned)
    names += [k for k in extra if len({repr(r.params.get(k)) for r in records}) > 1]
    return [n for n in names if not is_secret_key(n) and any(n in r.params for r in records)]


def _param_axis(data: ReportData, name: str, values: list[Any]) -> _Axis:
    param: Param | None = None
    if data.space is not None and name in data.space.names():
        param = data.space[name]
    present = [v for v in values if v is not None]
    if param is not None and param.kind != "categorical" and all(_is_number(v) for v in present):
        numbers = [float(v) for v in present]
        low = min([float(param.low), *numbers]) if param.low is not None else min(numbers, default=0.0)
        high = max([float(param.high), *numbers]) if param.high is not None else max(numbers, default=1.0)
        return _Axis(name, param.kind, low, high, bool(param.log) and low > 0)
    if param is None and present and all(_is_number(v) for v in present):
        return _Axis(name, "float", float(min(present)), float(max(present)))
    choices = list(param.choices) if param is not None and param.kind == "categorical" else []
    for value in present:
        if not any(_same(value, c) for c in choices):
            choices.append(value)
    return _Axis(name, "categorical", choices=choices)


def _distribution(axis: _Axis, values: list[Any]) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if axis.kind == "categorical":
        return CategoricalDistribution(axis.choices)
    if axis.kind == "int" and all(isinstance(v, int) for v in values):
        low, high = math.floor(axis.low), math.ceil(axis.high)
        return IntDistribution(low, high, log=axis.log and low >= 1)
    return FloatDistribution(axis.low, axis.high, log=axis.log and axis.low > 0)


def importances(data: ReportData) -> tuple[dict[str, float], str]:
    """(importance per parameter, a sentence on which trials were used or why there is none)."""
    top = data.top_budget
    pool = [r for r in data.records if r.rec_id in data.scores and r.observed_budget == top]
    basis = f"{len(pool)} trials with a finite {data.metric} at the largest budget ({top} epochs)"
    if len(pool) < 2:
        pool = [r for r in data.records if r.rec_id in data.scores]
        basis = (f"all {len(pool)} trials with a finite {data.metric}, at whatever budget they "
                 f"reached (fewer than 2 reached the largest budget, {top} epochs)")
    if len(pool) < 2:
        return {}, f"Importance needs at least 2 trials with a finite {data.metric}; this experiment has {len(pool)}."
    if len({data.scores[r.rec_id] for r in pool}) < 2:
        return {}, f"All {len(pool)} usable trials have the same {data.metric}, so no parameter explains any of it."
    names = _param_names(data, pool)
    names = [n for n in names if all(n in r.params and r.params[n] is not None for r in pool)]
    varying = [n for n in names if len({repr(r.params[n]) for r in pool}) > 1]
    constant = sorted(set(names) - set(varying))
    if not varying:
        return {}, ("No hyperparameter varies across the usable trials" +
                    (f" ({', '.join(constant)} constant)" if constant else "") + ", so importance is undefined.")

    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.importance import FanovaImportanceEvaluator

    axes = {n: _param_axis(data, n, [r.params[n] for r in pool]) for n in varying}
    distributions = {n: _distribution(axes[n], [r.params[n] for r in pool]) for n in varying}
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        study = optuna.create_study(direction="maximize" if data.direction == "max" else "minimize",
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        for record in pool:
            params = {n: (float(record.params[n]) if isinstance(distributions[n], FloatDistribution)
                          else record.params[n]) for n in varying}
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                      value=data.scores[record.rec_id]))
        result = optuna.importance.get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=0), normalize=True)
    except ImportError:
        return {}, "fANOVA importance needs scikit-learn (pip install scikit-learn)."
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        return {}, f"Importance could not be computed on {basis}: {exc}"
    finally:
        logger.setLevel(level)
    result = {k: float(v) for k, v in result.items() if math.isfinite(float(v))}
    if not result or sum(result.values()) <= 0:
        return {}, f"fANOVA found no parameter that explains the variation of {data.metric} over {basis}."
    text = f"fANOVA (Optuna's FanovaImportanceEvaluator, seed 0) on {basis}; importances sum to 1."
    if constant:
        text += f" Constant in these trials, so left out: {', '.join(constant)}."
    if len(pool) < 10:
        text += f" With only {len(pool)} trials these numbers are rough."
    return result, text


