"""``automl report``: the HTML report, from a real tiny experiment and from crafted histories."""

from __future__ import annotations

import argparse
import copy
import html
import json
import re
import sys
from pathlib import Path

import pytest
from tests.helpers.skills import FAKE_SCHEMA, make_fake_skill
from PIL import Image

from automl.errors import UserError
from automl.results.failures import HINTS
from automl.commands.report import FIGURES, cost, importances, main_report, write_report, _load
from automl.results.records import TrialRecord, read_history, write_history
from automl.space.params import Param, SearchSpace
from automl.results.workspace import Workspace

HEADINGS = ("Experiment", "Best trial", "Optimization history", "Learning curves", "All trials",
            "Hyperparameters vs metric (parallel coordinates)", "Hyperparameter importance",
            "Failure summary", "Cost")
MODES = ["ok", "nan", "exit1_after_last", "data"]


def section(page: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert match, f"no section {anchor}"
    return match.group(1)


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000, path
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 150
        image.verify()


# --------------------------------------------------------------------------------------------
# a real experiment: the fake trainer's failure mode is a searched parameter, so one run of six
# trials has completed, recovered and failed (diverged after 2 epochs, data error at start) ones


@pytest.fixture(scope="module")
def mixed_workspace(tmp_path_factory, ray_session) -> Path:
    from automl.cli import main

    root = tmp_path_factory.mktemp("report")
    skill = make_fake_skill(root / "skill")
    schema = copy.deepcopy(FAKE_SCHEMA)
    schema["automl_default_parameters"].append("fake.mode")
    schema["properties"]["fake"]["properties"]["mode"] = {
        "type": "categorical", "enum": MODES, "default": "ok", "automl_enabled": True}
    (skill / "schemas" / "train.schema.json").write_text(json.dumps(schema))
    workspace = root / "ws"
    code = main(["run", "--skill-dir", str(skill), "--workspace", str(workspace), "--progress",
                 "none", "--algo", "random", "--max-recommendations", "6", "--max-epochs", "3",
                 "--seed", "7", "--stop-after-failures", "100"])
    assert code == 0
    return workspace


def test_report_of_a_real_experiment(mixed_workspace):
    _, records = read_history(mixed_workspace / "history.json")
    statuses = {r.status for r in records}  # seed 7: completed, recovered, failed (nan and data)
    assert len(records) == 6 and "failed" in statuses and statuses & {"completed", "recovered"}

    path = write_report(mixed_workspace)
    assert path == mixed_workspace / "report" / "index.html"
    page = path.read_text(encoding="utf-8")
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in page
    for name in FIGURES:
        assert f'<img src="{name}"' in page
        assert_png(path.parent / name)

    best = json.loads((mixed_workspace / "best_rec.json").read_text())["best"]
    header = section(page, "best")
    assert best["rec_id"] in header and best["checkpoint_uri"] in header
    assert f"{best['score']:.4g}" in header
    assert "hp.x" in header
    experiment = section(page, "experiment")
    assert "random" in experiment and "val_miou" in experiment and "<td>7</td>" in experiment

    importance = section(page, "importance")
    for name in ("hp.x", "hp.y", "hp.c", "fake.mode"):
        assert f"<td>{name}</td>" in importance

    failures = section(page, "failures")
    for record in records:
        if record.failure_class:
            assert f"<td>{record.failure_class}</td>" in failures
            assert html.escape(HINTS[record.failure_class]) in failures

    # every trial in the table, with its outcome; the wide figure scrolls, never squeezed
    table = section(page, "trials")
    for record in records:
        assert f"<td>{record.rec_id}</td>" in table
        assert f"<td>{record.status}{': ' + record.failure_class if record.failure_class else ''}</td>" in table
    assert '<figure class="wide"><img src="parallel.png"' in page
    assert "figure.wide img{max-width:none}" in page
    # one colour per trial in the curves (tab10), not one per outcome
    with Image.open(path.parent / "curves.png") as image:
        pixels = {rgb for _, rgb in image.convert("RGB").getcolors(maxcolors=1 << 20)}
    import matplotlib as mpl

    tab10 = {tuple(round(255 * c) for c in rgb) for rgb in mpl.colormaps["tab10"].colors}
    drawn = [r for r in records if any(isinstance(x.get("val_miou"), float) for x in r.results)]
    assert len(tab10 & pixels) >= len(drawn) >= 3

    spent = sum(r.observed_budget for r in records)
    assert f"trained {spent} epochs" in section(page, "cost")
    assert f"of the {6 * 3} epochs" in section(page, "cost")



# --------------------------------------------------------------------------------------------
# errors


def test_not_a_workspace(tmp_path):
    with pytest.raises(UserError, match="not an automl workspace"):
        write_report(tmp_path)
    with pytest.raises(UserError):
        main_report(argparse.Namespace(workspace=tmp_path / "missing", out=None))


def test_workspace_without_history(tmp_path):
    Workspace(tmp_path).write_experiment({"experiment_id": "x", "metric": "val_miou"})
    with pytest.raises(UserError, match="no history.json") as info:
        write_report(tmp_path)
    assert "\n" not in str(info.value)


def test_unreadable_history(tmp_path):
    Workspace(tmp_path).write_experiment({"experiment_id": "x", "metric": "val_miou"})
    (tmp_path / "history.json").write_text("{not json")
    with pytest.raises(UserError, match="unreadable"):
        write_report(tmp_path)


# --------------------------------------------------------------------------------------------
# crafted histories (no Ray): a multi-fidelity run, secrets, markup, degenerate cases

SPACE = SearchSpace(
    params=(Param("train.optim.lr", "float", 1e-6, 1e-3, log=True),
            Param("dataset.batch_size", "int", 1, 8),
            Param("model.head", "categorical", choices=("mlp", "<script>alert(1)</script>"))),
    pinned={"model.encryption_key": "hunter2-pinned"},
)


def curve(epochs: int, level: float, nan_at: int | None = None) -> list[dict[str, float]]:
    return [{"epoch": e, "val_miou": float("nan") if e == nan_at else level * (1 - 0.5 / (1 + e)),
             "val_loss": 1 - level} for e in range(1, epochs + 1)]


def craft(path: Path, records: list[TrialRecord], space: SearchSpace = SPACE, budget: int = 9,
          algo: str = "asha") -> Path:
    workspace = Workspace(path)
    path.mkdir(parents=True, exist_ok=True)
    experiment = {"experiment_id": path.name, "algo": algo, "metric": "val_miou", "direction": "max",
                  "budget": budget, "seed": 11, "max_recommendations": len(records)}
    workspace.write_experiment({**experiment, "space": space.to_json()})
    write_history(workspace.history, {**experiment, "plan": f"{algo} (crafted)"}, records)
    return path


def asha_records() -> list[TrialRecord]:
    records = []
    lrs = [1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 5e-5]
    for i, lr in enumerate(lrs, start=1):
        level = 0.9 - abs(lr - 1e-4) * 500
        epochs, status = {1: (1, "stopped"), 2: (1, "stopped"), 3: (3, "stopped"), 4: (9, "completed"),
                          5: (9, "completed"), 6: (3, "stopped"), 7: (2, "failed"), 8: (9, "recovered")}[i]
        params = {"train.optim.lr": lr, "dataset.batch_size": 1 + i % 8,
                  "model.head": SPACE.params[2].choices[i % 2], "model.encryption_key": "hunter2-pinned"}
        record = TrialRecord(rec_id=f"t{i:02d}", params=params, index=i, status=status, budget=epochs,
                             results=curve(epochs, level, nan_at=2 if status == "failed" else None),
                             rung=epochs, started_at=1000.0 + i, ended_at=1010.0 + i)
        if status == "failed":
            record.failure_class, record.failure_message = "diverged", "loss is nan; token=s3cr3t-value"
        if status == "recovered":
            record.failure_class, record.failure_message = "error", "exit 1 after training <cleanup>"
        records.append(record)
    return records


def test_crafted_multi_fidelity_report(tmp_path, capsys):
    records = asha_records()
    workspace = craft(tmp_path / "asha", records)
    out = tmp_path / "out"
    torch_loaded = "torch" in sys.modules
    assert main_report(argparse.Namespace(workspace=workspace, out=out)) == 0
    # in-process check: meaningful when nothing earlier in the session imported torch
    assert torch_loaded or "torch" not in sys.modules
    path = out / "index.html"
    assert capsys.readouterr().out.strip() == f"report: {path}"
    assert not (workspace / "report").exists()
    page = path.read_text(encoding="utf-8")
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in page
    for name in FIGURES:
        assert_png(path.parent / name)
    # secrets and markup
    assert "hunter2" not in page and "s3cr3t" not in page and "token=***" in page
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;cleanup&gt;" in page
    # rungs: the budgets trials were observed at
    assert "(1, 2, 3, 9 epochs)" in section(page, "curves")
    # best: no best_rec.json, so computed from history.json with best_rec.json's rule
    best = section(page, "best")
    assert "best_rec.json is not written yet" in best and "t05" in best  # lr 1e-4 at 9 epochs
    # importance over the three trials observed at 9 epochs; the secret pinned key is left out
    result, text = importances(_load(workspace))
    assert set(result) == {"train.optim.lr", "dataset.batch_size", "model.head"}
    assert "3 trials with a finite val_miou at the largest budget (9 epochs)" in text
    # cost: 1+1+3+9+9+3+1(failed: epoch 1 finite, epoch 2 nan -> observed 2)+9
    spent, full, ratio = cost(_load(workspace))
    assert (spent, full) == (sum(r.observed_budget for r in records), 8 * 9)
    cost_text = section(page, "cost")
    assert f"trained {spent} epochs" in cost_text and f"{ratio:.2f}" in cost_text
    assert "saved by the algorithm" in cost_text
    failures = section(page, "failures")
    assert "<td>diverged</td>" in failures and "1 recovered" in failures


def test_importance_needs_two_scored_trials(tmp_path):
    records = asha_records()
    for record in records[1:]:
        record.results, record.status = [], "failed"
        record.failure_class, record.failure_message = "data", "data: no images"
    workspace = craft(tmp_path / "one", records)
    path = write_report(workspace)
    page = path.read_text(encoding="utf-8")
    assert "at least 2 trials" in section(page, "importance")
    assert not (path.parent / "importance.png").exists()
    for name in ("history.png", "curves.png", "parallel.png"):
        assert_png(path.parent / name)


def test_importance_with_constant_parameters(tmp_path):
    records = [r for r in asha_records() if r.observed_budget == 9]
    for record in records:
        record.params.update({"dataset.batch_size": 4, "model.head": "mlp", "train.optim.lr": 1e-4})
    workspace = craft(tmp_path / "constant", records)
    result, text = importances(_load(workspace))
    assert result == {} and "No hyperparameter varies" in text
    page = write_report(workspace).read_text(encoding="utf-8")
    assert "No hyperparameter varies" in section(page, "importance")


def test_no_finite_scores_still_reports(tmp_path):
    records = asha_records()
    for record in records:
        record.results, record.status = [], "failed"
        record.failure_class, record.failure_message = "oom", "CUDA out of memory"
    workspace = craft(tmp_path / "none", records)
    path = write_report(workspace)
    page = path.read_text(encoding="utf-8")
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in page
    assert not any((path.parent / name).exists() for name in FIGURES)
    assert "<td>8</td>" in section(page, "failures") and "CUDA out of memory" in page


def test_legends_name_only_what_occurred(tmp_path, monkeypatch):
    """All trials completed at the full budget: the legends name "completed", nothing else (no
    failed/stopped entry, no "score below the budget" marker), and each curve has its own
    colour, named in a legend of trials."""
    from automl.commands import report as html_report

    records = [TrialRecord(f"t{i:02d}", {"train.optim.lr": 1e-4 * (i + 1), "dataset.batch_size": 2,
                                         "model.head": "mlp"}, index=i + 1, status="completed",
                           budget=9, results=curve(9, 0.5 + 0.1 * i)) for i in range(3)]
    figures = {}
    monkeypatch.setattr(html_report, "_save", lambda fig, path: figures.__setitem__(path.name, fig))
    write_report(craft(tmp_path / "done", records))

    def labels(legend) -> list[str]:
        return [t.get_text() for t in legend.get_texts()]

    history = [labels(ax.get_legend()) for ax in figures["history.png"].axes if ax.get_legend()]
    assert history == [["completed (3)", "best so far (at 9 epochs)"]]
    curves = figures["curves.png"]
    assert labels(curves.axes[0].get_legend()) == ["completed (3)"]
    assert labels(curves.legends[0]) == [f"#{r.index} {r.rec_id}" for r in records]
    colours = {line.get_color() if isinstance(line.get_color(), str) else tuple(line.get_color())
               for line in curves.axes[0].get_lines() if line.get_label().startswith("#")}
    assert len(colours) == 3
