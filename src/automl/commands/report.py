"""``automl report WORKSPACE [--out DIR]``: one HTML page that explains an experiment.

The page (``index.html``) and its figures (PNG files beside it, referenced by relative name, so the
folder can be copied or zipped as a whole) are written to ``<workspace>/report/`` unless ``--out``
names another folder. The page has no scripts and no external resources; its styles are inline.

Sections: the experiment and its best trial; optimization history (best-so-far against the trial
index and against the epochs spent); the learning curve of every trial, coloured by outcome;
parallel coordinates of the hyperparameters against the metric; hyperparameter importance
(Optuna's fANOVA on the recorded trials); a failure summary with hints; the cost in epochs
against the same number of full-budget trials.

It reads only what the driver writes atomically (``experiment.yaml``, ``history.json``,
``best_rec.json``, ``state.json``), so it can be run while the experiment is still running.
Scores follow :mod:`automl.results.best`: a trial's score is its metric at its last observed epoch, and
only trials observed at the largest budget are comparable, so "best so far" counts those alone.
Figures are drawn with matplotlib's Agg canvas on private ``Figure`` objects (no pyplot, no global
backend switch). Every text put into the page is escaped; values of secret keys
(:func:`automl.secrets.is_secret_key`) are never shown.
"""

from __future__ import annotations

import html
import logging
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.contract import STATUS_ORDER
from automl.errors import UserError
from automl.results.failures import HINTS
from automl.results.records import TrialRecord, read_history
from automl.secrets import REDACTED as SECRET
from automl.secrets import is_secret_key, redact_assignments
from automl.space.params import Param, SearchSpace
from automl.results.workspace import Workspace

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

STATUS_COLORS = {
    "completed": "#2ca02c", "recovered": "#1f77b4", "failed": "#d62728", "stopped": "#ff7f0e",
    "running": "#7f7f7f", "paused": "#9467bd", "pending": "#c7c7c7",
}
# Where a trial's curve ends: a stopped trial's square marks the epoch it was stopped at.
END_MARKERS = {"completed": "o", "recovered": "D", "failed": "X", "stopped": "s", "running": ">",
               "paused": "P", "pending": "."}
MAX_NAMED_CURVES = 24  # up to this many trials, the curves' legend names each one
FIGURES = ("history.png", "curves.png", "parallel.png", "importance.png")
DPI = 110


# --------------------------------------------------------------------------------------------
# entry points


def main_report(args: Any) -> int:
    """``automl report``: ``args.workspace`` (Path), ``args.out`` (Path or None)."""
    path = write_report(Path(args.workspace), getattr(args, "out", None))
    print(f"report: {path}")
    return 0


def write_report(workspace: Path, out: Path | None = None) -> Path:
    """Write ``index.html`` and its PNG figures; return the HTML path.

    ``out`` is the folder to write to (default ``<workspace>/report``). Raises UserError for a
    folder that is not a workspace, a workspace without (or with an unreadable) history.json, or
    an output folder that cannot be written.
    """
    data = _load(Path(workspace))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("automl report draws its figures with matplotlib: pip install matplotlib") from None
    out = Path(out) if out is not None else data.workspace.path / "report"
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in FIGURES:  # figures of an earlier report that this one may not redraw
            (out / name).unlink(missing_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot write the report there ({exc.strerror}); choose another --out") from None
    sections = [
        _section("history", "Optimization history", _history_section(data, out)),
        _section("curves", "Learning curves", _curves_section(data, out)),
        _section("trials", "All trials", _trials_section(data)),
        _section("parallel", "Hyperparameters vs metric (parallel coordinates)", _parallel_section(data, out)),
        _section("importance", "Hyperparameter importance", _importance_section(data, out)),
        _section("failures", "Failure summary", _failures_section(data)),
        _section("cost", "Cost", _cost_section(data)),
    ]
    page = _page(data, [_section("experiment", "Experiment", _experiment_section(data)),
                        _section("best", "Best trial", _best_section(data)), *sections])
    target = out / "index.html"
    tmp = out / ".index.html.tmp"
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        raise UserError(f"{out}: cannot write the report there ({exc.strerror}); choose another --out") from None
    return target


# --------------------------------------------------------------------------------------------
# data


@dataclass
class _Data:
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

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "max" else a < b


def _load(path: Path) -> _Data:
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
    data = _Data(workspace, experiment, records, metric, direction, budget, space,
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
# text helpers


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _shown(key: str, value: Any) -> str:
    return SECRET if is_secret_key(key) else _num(value)


def _mpl(text: Any) -> str:
    """Text for matplotlib: '$' would start mathtext."""
    return str(text).replace("$", r"\$")


def _p(text: str) -> str:
    return f"<p>{_e(text)}</p>"


def _table(header: list[str], rows: list[list[str]], raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (cells already escaped by the caller)."""
    cell = (lambda c: c) if raw else _e
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv(rows: list[list[str]]) -> str:
    """A two-column key/value table (escaped)."""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table><tbody>{body}</tbody></table>"


def _img(name: str, alt: str, wide: bool = False) -> str:
    """A figure; a ``wide`` one is shown at its own size and scrolls sideways (squeezed to the
    page's width, a figure with many axes would be unreadable)."""
    cls = ' class="wide"' if wide else ""
    return f'<figure{cls}><img src="{_e(name)}" alt="{_e(alt)}"></figure>'


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{_e(anchor)}"><h2>{_e(title)}</h2>\n{body}\n</section>'


# --------------------------------------------------------------------------------------------
# figures


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=DPI, format="png")


def _status_legend(ax: Axes, counts: Counter, extra: list | None = None, **kwargs: Any) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=STATUS_COLORS.get(s, "#444"), marker=END_MARKERS.get(s, "o"),
                      linestyle="-", label=f"{s} ({counts[s]})")
               for s in STATUS_ORDER if counts.get(s)]
    ax.legend(handles=handles + (extra or []), fontsize=8, **kwargs)


# --------------------------------------------------------------------------------------------
# header


def _counts(records: list[TrialRecord]) -> Counter:
    return Counter(r.status for r in records)


def _count_text(counts: Counter) -> str:
    known = [s for s in STATUS_ORDER if counts.get(s)] + sorted(set(counts) - set(STATUS_ORDER))
    return ", ".join(f"{counts[s]} {s}" for s in known) or "none"


def _experiment_section(data: _Data) -> str:
    exp = data.experiment
    counts = _counts(data.records)
    state = data.state.get("state", "unknown")
    rows = [
        ["experiment", exp.get("experiment_id", data.workspace.path.name)],
        ["workspace", str(data.workspace.path)],
        ["state", state],
        ["algorithm", exp.get("algo", "?")],
        ["plan", exp.get("plan", "")],
        ["metric", f"{data.metric} ({'higher' if data.direction == 'max' else 'lower'} is better: {data.direction})"],
        ["budget", f"{data.budget} epochs per trial (largest)"],
        ["seed", exp.get("seed", "?")],
        ["trials", f"{len(data.records)} of {exp.get('max_recommendations', '?')} requested: {_count_text(counts)}"],
    ]
    if data.space is not None:
        rows.append(["searched", ", ".join(data.space.names()) or "none"])
        if data.space.pinned:
            rows.append(["pinned", ", ".join(f"{k}={_shown(k, v)}" for k, v in data.space.pinned.items())])
    created = exp.get("created")
    if isinstance(created, (int, float)):
        rows.append(["created", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))])
    return _kv([[str(a), str(b)] for a, b in rows if b not in (None, "")])


def _best_section(data: _Data) -> str:
    doc = data.best_doc
    notes = [data.best_note] if data.best_note else []
    best = doc.get("best") if doc else None
    if doc is not None and best is None:
        return _p(f"No trial produced a finite {data.metric}, so there is no best trial.")
    if best is not None:
        from automl.skill.spec import flatten

        record = next((r for r in data.records if r.rec_id == best["rec_id"]), None)
        params = flatten(best.get("specs") or {})
        rec_id, score, observed = best["rec_id"], best["score"], best["observed_budget"]
        checkpoint = best.get("checkpoint_uri")
        epoch = best.get("checkpoint_epoch")
    else:
        from automl.results.best import choose_best

        chosen = choose_best(data.records, data.metric, data.direction)
        if chosen is None:
            return _p(f"No trial has a finite {data.metric} yet. {data.best_note}.")
        record = chosen.record
        params, rec_id, score = record.params, record.rec_id, chosen.score
        observed = record.observed_budget
        checkpoint = str(chosen.checkpoint.path) if chosen.checkpoint else None
        epoch = chosen.checkpoint.tao_epoch if chosen.checkpoint else None
        notes.append("the best trial below is computed from history.json with the same rule")
    rows = [
        ["trial", f"{rec_id}" + (f" (#{record.index}, {record.status})" if record else "")],
        [data.metric, _num(score)],
        ["observed budget", f"{observed} epochs"],
        ["checkpoint", (checkpoint or "none") + (f" (epoch {epoch})" if checkpoint and epoch is not None else "")],
    ]
    rows += [[key, _shown(key, value)] for key, value in sorted(params.items())]
    note = _p("Note: " + "; ".join(notes) + ".") if notes else ""
    return note + _kv(rows)


# --------------------------------------------------------------------------------------------
# 1. optimization history


def _history_section(data: _Data, out: Path) -> str:
    scored = [r for r in data.records if r.rec_id in data.scores]
    if not scored:
        return _p(f"No trial reported a finite {data.metric}; there is no history to plot.")
    top = data.top_budget
    fig = _figure(11, 4.2)
    ax_index, ax_cost = fig.subplots(1, 2, sharey=True)
    cumulative, spent = {}, 0
    for record in data.records:
        spent += record.observed_budget
        cumulative[record.rec_id] = spent
    for ax, xs, label in ((ax_index, {r.rec_id: r.index for r in data.records}, "trial index"),
                          (ax_cost, cumulative, "epochs spent (cumulative, in trial order)")):
        best, line_x, line_y = None, [], []
        for record in data.records:
            score = data.scores.get(record.rec_id)
            if score is None:
                continue
            at_top = record.observed_budget == top
            color = STATUS_COLORS.get(record.status, "#444")
            ax.scatter([xs[record.rec_id]], [score], s=40, zorder=3, edgecolors=color,
                       marker=END_MARKERS.get(record.status, "o"),
                       facecolors=color if at_top else "none", linewidths=1.5)
            if at_top and (best is None or data.better(score, best)):
                best = score
            if best is not None:
                line_x.append(xs[record.rec_id])
                line_y.append(best)
        if line_x:
            line_x.append(max(xs.values()))
            line_y.append(line_y[-1])
            ax.plot(line_x, line_y, drawstyle="steps-post", color="black", linewidth=1.5,
                    label=f"best so far (at {top} epochs)")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    ax_index.set_ylabel(_mpl(data.metric))
    from matplotlib.lines import Line2D

    lower = sum(1 for r in scored if r.observed_budget != top)
    extra = [Line2D([], [], color="black", linewidth=1.5, label=f"best so far (at {top} epochs)")]
    if lower:  # the legend names only what the plot shows
        extra.append(Line2D([], [], marker="o", markerfacecolor="none", markeredgecolor="#444",
                            linestyle="", label=f"score below {top} epochs"))
    counts = Counter(r.status for r in scored)
    _status_legend(ax_cost, counts, extra, loc="best")
    fig.suptitle(_mpl(f"{data.metric}: each trial's score and the best so far"))
    _save(fig, out / "history.png")
    return (_img("history.png", "optimization history") +
            _p(f"Each point is one trial's {data.metric} at its last observed epoch, coloured by "
               f"outcome; filled points were observed at the largest budget ({top} epochs), hollow "
               f"ones ({lower}) stopped earlier and are not comparable with them. The black line is "
               f"the best so far among trials observed at {top} epochs, the rule best_rec.json "
               f"uses. Left: against the trial index (order of creation); right: against the "
               f"epochs all trials up to that one had consumed."))


# --------------------------------------------------------------------------------------------
# 2. learning curves


def _curve(record: TrialRecord, metric: str) -> tuple[list[int], list[float]]:
    points = [(int(r["epoch"]), r.get(metric)) for r in record.results]
    points = [(e, float(v)) for e, v in points
              if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return [e for e, _ in points], [v for _, v in points]


def _trial_colors(n: int) -> list[Any]:
    """Distinct colours, one per trial: tab10/tab20 while they last, then turbo's spectrum."""
    import matplotlib as mpl

    if n <= 10:
        return list(mpl.colormaps["tab10"].colors[:n])
    if n <= 20:
        return list(mpl.colormaps["tab20"].colors[:n])
    turbo = mpl.colormaps["turbo"]
    return [turbo(0.05 + 0.9 * i / (n - 1)) for i in range(n)]


def _curves_section(data: _Data, out: Path) -> str:
    curves = {r.rec_id: _curve(r, data.metric) for r in data.records}
    drawn = [r for r in data.records if curves[r.rec_id][0]]
    if not drawn:
        return _p(f"No trial reported a finite {data.metric} at any epoch; there are no curves to draw.")
    budgets = sorted({r.observed_budget for r in data.records if r.observed_budget > 0}
                     | ({data.budget} if data.budget else set()))
    if len(budgets) > 12:  # e.g. PBT: every epoch is somebody's end; keep the experiment budget
        budgets = [data.budget] if data.budget else []
    fig = _figure(9, 5)
    ax = fig.subplots()
    for budget in budgets:
        ax.axvline(budget, color="#999", linestyle=":", linewidth=1, zorder=1)
        ax.annotate(f"{budget} ep", (budget, 1), xycoords=("data", "axes fraction"), fontsize=7,
                    color="#666", ha="center", va="bottom")
    colors = _trial_colors(len(drawn))
    handles = []
    for record, color in zip(drawn, colors):
        epochs, values = curves[record.rec_id]
        line, = ax.plot(epochs, values, color=color, alpha=0.85, linewidth=1.4, zorder=2,
                        marker="." if len(epochs) < 40 else None, markersize=3,
                        label=f"#{record.index} {record.rec_id[:8]}")
        handles.append(line)
        ax.plot(epochs[-1:], values[-1:], linestyle="", marker=END_MARKERS.get(record.status, "o"),
                color=color, markersize=7, markeredgecolor="black", markeredgewidth=0.5, zorder=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel(_mpl(data.metric))
    ax.grid(alpha=0.3)
    max_epoch = max(max(curves[r.rec_id][0]) for r in drawn)
    if max_epoch <= 30:
        ax.set_xticks(range(1, max(max_epoch, max(budgets, default=1)) + 1))
    from matplotlib.lines import Line2D

    outcomes = Counter(r.status for r in drawn)
    markers = [Line2D([], [], color="black", marker=END_MARKERS.get(s, "o"), linestyle="",
                      label=f"{s} ({outcomes[s]})") for s in STATUS_ORDER if outcomes.get(s)]
    ax.legend(handles=markers, fontsize=8, loc="lower right", title="end: outcome",
              title_fontsize=8)
    if len(drawn) <= MAX_NAMED_CURVES:
        fig.legend(handles=handles, fontsize=7, loc="outside right upper", title="trial",
                   title_fontsize=8)
    fig.suptitle(_mpl(f"{data.metric} per epoch, every trial"))
    _save(fig, out / "curves.png")
    missing = len(data.records) - len(drawn)
    text = (f"One line per trial ({len(drawn)} drawn), each in its own colour"
            f"{' (named on the right)' if len(drawn) <= MAX_NAMED_CURVES else ''}; the large marker "
            f"is the trial's last observed epoch and its shape the outcome (a square: where a "
            f"stopped trial was stopped, a cross: where a failed trial ended). Dotted vertical lines mark the budgets trials "
            f"were observed at ({', '.join(map(str, budgets)) or 'none'} epochs): the rungs of a "
            f"multi-fidelity algorithm, or the full budget.")
    if missing:
        text += f" {missing} trial(s) reported no finite {data.metric} and are not drawn."
    return _img("curves.png", "learning curves") + _p(text)


# --------------------------------------------------------------------------------------------
# all trials


def _trials_section(data: _Data) -> str:
    if not data.records:
        return _p("No trial has started.")
    names = _param_names(data, data.records)
    header = ["#", "trial", "outcome", "rung / bracket", "epochs (observed / budget)",
              data.metric, *names]
    rows = []
    for r in data.records:
        outcome = r.status + (f": {r.failure_class}" if r.failure_class else "")
        ladder = "" if r.rung is None else f"{r.rung} / {'' if r.bracket is None else r.bracket}"
        score = data.scores.get(r.rec_id)
        rows.append([str(r.index), r.rec_id, outcome, ladder, f"{r.observed_budget} / {r.budget}",
                     "" if score is None else _num(score),
                     *(_shown(n, r.params[n]) if n in r.params else "" for n in names)])
    return _p(f"Every trial in order of creation; {data.metric} at its last observed epoch.") + \
        _table(header, rows)


# --------------------------------------------------------------------------------------------
# 3. parallel coordinates


@dataclass
class _Axis:
    name: str
    kind: str  # "float" | "int" | "categorical" | "metric"
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: list = field(default_factory=list)

    def unit(self, value: Any) -> float:
        """Position of ``value`` on [0, 1] (NaN when missing or not placeable)."""
        if self.kind == "categorical":
            index = next((i for i, c in enumerate(self.choices) if _same(c, value)), None)
            if index is None:
                return math.nan
            return 0.5 if len(self.choices) == 1 else index / (len(self.choices) - 1)
        if not _is_number(value):
            return math.nan
        value = float(value)
        if self.log and self.low > 0 and value > 0:
            low, high, value = math.log10(self.low), math.log10(self.high), math.log10(value)
        else:
            low, high = self.low, self.high
        return 0.5 if high <= low else (value - low) / (high - low)

    def ticks(self) -> list[tuple[float, str]]:
        if self.kind == "categorical":
            return [(self.unit(c), _short(c)) for c in self.choices]
        if self.high <= self.low:
            return [(0.5, _num(self.low))]
        out = []
        for u in (0.0, 0.25, 0.5, 0.75, 1.0):
            if self.log and self.low > 0:
                value = 10 ** (math.log10(self.low) + u * (math.log10(self.high) - math.log10(self.low)))
            else:
                value = self.low + u * (self.high - self.low)
            label = str(round(value)) if self.kind == "int" else f"{value:.3g}"
            if self.kind != "int" or abs(value - round(value)) < 1e-9 or u in (0.0, 1.0):
                out.append((u, label))
        return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _short(value: Any, width: int = 14) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _param_names(data: _Data, records: list[TrialRecord]) -> list[str]:
    """Searched parameters (space order), then any other recorded key that varies; no secrets."""
    names = list(data.space.names()) if data.space is not None else []
    pinned = set(data.space.pinned) if data.space is not None else set()
    extra = sorted({k for r in records for k in r.params} - set(names) - pinned)
    names += [k for k in extra if len({repr(r.params.get(k)) for r in records}) > 1]
    return [n for n in names if not is_secret_key(n) and any(n in r.params for r in records)]


def _param_axis(data: _Data, name: str, values: list[Any]) -> _Axis:
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


def _parallel_section(data: _Data, out: Path) -> str:
    scored = [r for r in data.records if r.rec_id in data.scores]
    names = _param_names(data, scored)
    if not scored or not names:
        what = "no trial has a finite score" if not scored else "no hyperparameter was searched"
        return _p(f"Nothing to draw: {what}.")
    axes = [_param_axis(data, n, [r.params.get(n) for r in scored]) for n in names]
    scores = [data.scores[r.rec_id] for r in scored]
    metric_axis = _Axis(data.metric, "metric", min(scores), max(scores))
    axes.append(metric_axis)

    import matplotlib as mpl

    cmap = mpl.colormaps["viridis" if data.direction == "max" else "viridis_r"]
    norm = mpl.colors.Normalize(vmin=min(scores), vmax=max(scores) if max(scores) > min(scores) else min(scores) + 1)
    fig = _figure(max(7.0, 1.7 * len(axes) + 1.5), 5)
    ax = fig.subplots()
    # best trials drawn last, on top
    ranked = sorted(scored, key=lambda r: data.scores[r.rec_id], reverse=data.direction == "min")
    for record in ranked:
        score = data.scores[record.rec_id]
        ys = [a.unit(record.params.get(a.name)) for a in axes[:-1]] + [metric_axis.unit(score)]
        dashed = record.observed_budget != data.top_budget
        ax.plot(range(len(axes)), ys, color=cmap(norm(score)), alpha=0.85, linewidth=1.6,
                linestyle="--" if dashed else "-", marker="o", markersize=3)
    for i, axis in enumerate(axes):
        ax.axvline(i, color="black", linewidth=0.8, zorder=0)
        for u, label in axis.ticks():
            ax.text(i - 0.03, u, _mpl(label), fontsize=7, ha="right", va="center", color="#222",
                    zorder=4, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.5})
            ax.plot([i - 0.015, i], [u, u], color="black", linewidth=0.8)
    ax.set_xticks(range(len(axes)))
    ax.set_xticklabels([_mpl(a.name + (" (log)" if a.log else "")) for a in axes], rotation=15,
                       ha="right", fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.5, len(axes) - 0.8)
    ax.set_ylim(-0.05, 1.05)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=_mpl(data.metric), pad=0.02)
    fig.suptitle(_mpl(f"hyperparameters of {len(scored)} scored trials against {data.metric}"))
    _save(fig, out / "parallel.png")
    return (_img("parallel.png", "parallel coordinates", wide=True) +
            _p(f"One line per trial with a finite {data.metric}, coloured by it (brighter is "
               f"better). Numeric axes span the search range (log scale where the parameter is "
               f"searched on one), categorical axes place each option at a labelled position, the "
               f"last axis is the score. Dashed lines: trials observed below the largest budget "
               f"({data.top_budget} epochs)."))


# --------------------------------------------------------------------------------------------
# 4. importance


def _distribution(axis: _Axis, values: list[Any]) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if axis.kind == "categorical":
        return CategoricalDistribution(axis.choices)
    if axis.kind == "int" and all(isinstance(v, int) for v in values):
        low, high = math.floor(axis.low), math.ceil(axis.high)
        return IntDistribution(low, high, log=axis.log and low >= 1)
    return FloatDistribution(axis.low, axis.high, log=axis.log and axis.low > 0)


def importances(data: _Data) -> tuple[dict[str, float], str]:
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


def _importance_section(data: _Data, out: Path) -> str:
    result, text = importances(data)
    if not result:
        return _p(text)
    names = sorted(result, key=lambda n: result[n])
    fig = _figure(8, 1.2 + 0.45 * len(names))
    ax = fig.subplots()
    bars = ax.barh(range(len(names)), [result[n] for n in names], color="#4c72b0")
    ax.bar_label(bars, labels=[f"{result[n]:.2f}" for n in names], fontsize=8, padding=3)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([_mpl(n) for n in names], fontsize=8)
    ax.set_xlim(0, max(result.values()) * 1.2)
    ax.set_xlabel(_mpl(f"importance for {data.metric} (fANOVA, normalized)"))
    ax.grid(axis="x", alpha=0.3)
    _save(fig, out / "importance.png")
    rows = [[n, f"{result[n]:.3f}"] for n in sorted(result, key=lambda n: -result[n])]
    return _img("importance.png", "hyperparameter importance") + _p(text) + _table(["parameter", "importance"], rows)


# --------------------------------------------------------------------------------------------
# 5. failures and 6. cost


def _failures_section(data: _Data) -> str:
    groups: dict[str, list[TrialRecord]] = {}
    for record in data.records:
        if record.failure_class or record.status == "failed":
            groups.setdefault(record.failure_class or "error", []).append(record)
    if not groups:
        return _p("No trial failed.")
    rows = []
    for name, members in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        statuses = Counter(r.status for r in members)
        messages = list(dict.fromkeys(redact_assignments(r.failure_message.strip())[:300]
                                      for r in members if r.failure_message.strip()))
        example = "<br>".join(_e(m) for m in messages[:2]) or "(no message)"
        if len(messages) > 2:
            example += _e(f" (+{len(messages) - 2} more)")
        trials = ", ".join(r.rec_id for r in members[:8]) + (" …" if len(members) > 8 else "")
        rows.append([_e(name), _e(len(members)), _e(_count_text(statuses)), _e(trials), example,
                     _e(HINTS.get(name, HINTS["error"]))])
    recovered = sum(1 for r in data.records if r.status == "recovered")
    text = (f"{sum(len(m) for m in groups.values())} of {len(data.records)} trials ended with an "
            f"error" + (f"; {recovered} of them recovered (exited with an error after reaching "
                        f"their budget with a finite {data.metric}, so they count)" if recovered else "") + ".")
    return _p(text) + _table(["class", "count", "outcome", "trials", "example messages", "what to do"],
                             rows, raw=True)


def cost(data: _Data) -> tuple[int, int, float | None]:
    """(epochs spent, epochs of as many full-budget trials, their ratio or None)."""
    spent = sum(r.observed_budget for r in data.records)
    full = len(data.records) * data.budget
    return spent, full, (spent / full if full else None)


def _cost_section(data: _Data) -> str:
    spent, full, ratio = cost(data)
    n = len(data.records)
    if ratio is None:
        return _p(f"{n} trials trained {spent} epochs in total (the experiment's budget is unknown).")
    text = (f"{n} trials trained {spent} epochs in total (sum of each trial's last observed "
            f"epoch): {ratio:.0%} of the {full} epochs that {n} full-budget trials of "
            f"{data.budget} epochs would cost (ratio {ratio:.2f}).")
    short: Counter = Counter()
    for record in data.records:
        kind = {"failed": "failed", "running": "unfinished", "paused": "unfinished",
                "pending": "unfinished"}.get(record.status, "saved")
        short[kind] += max(0, data.budget - record.observed_budget)
    if short["saved"]:
        text += (f" {short['saved']} epochs were saved by the algorithm (trials stopped early or "
                 f"given a smaller budget).")
    if short["failed"]:
        text += f" {short['failed']} epochs were never trained because trials failed before their budget."
    if short["unfinished"]:
        text += f" {short['unfinished']} epochs are still to come for trials that have not finished."
    seconds = sum(r.ended_at - r.started_at for r in data.records
                  if isinstance(r.started_at, (int, float)) and isinstance(r.ended_at, (int, float)))
    if seconds > 0:
        text += f" Trial wall-clock time, summed over trials: {seconds:.0f} s."
    rows = [["epochs spent", str(spent)], [f"{n} trials × {data.budget} epochs", str(full)],
            ["ratio", f"{ratio:.2f}"]]
    return _p(text) + _kv(rows)


# --------------------------------------------------------------------------------------------
# page

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em}
td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f5f5f5}figure{margin:.5em 0}img{max-width:100%;height:auto}
figure.wide{overflow-x:auto}figure.wide img{max-width:none}
nav a{margin-right:1em}.muted{color:#666;font-size:.9em}
"""


def _page(data: _Data, sections: list[str]) -> str:
    title = f"automl report: {data.experiment.get('experiment_id', data.workspace.path.name)}"
    anchors = re.findall(r'<section id="([^"]+)"><h2>([^<]+)</h2>', "\n".join(sections))
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in anchors)  # both already escaped
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
            f"<h1>{_e(title)}</h1>\n<p class=\"muted\">{_e(f'generated {stamp} from {data.workspace.path}')}</p>\n"
            f"<nav>{nav}</nav>\n" + "\n".join(sections) + "\n</body></html>\n")
