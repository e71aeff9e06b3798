"""Outcome classification and recovery on status files in TAO's dialect (0-based epoch lines,
KPIs in separate eval lines that persist)."""

import json
import math

from automl.results.failures import classify, decide
from automl.tao.lines import parse_text
from automl.tao.progress import read_results


def _status(*epochs, kpi_name="val_miou", final=None):
    """A TAO-style status file: per value, an eval line then the epoch line (0-based)."""
    objs = [{"status": "STARTED", "message": "Starting train."}]
    kpi = {}
    for index, value in enumerate(epochs):
        kpi = {kpi_name: value}
        objs.append({"status": "RUNNING", "message": "Eval metrics generated.", "kpi": kpi})
        objs.append({"status": "RUNNING", "message": "Training loop in progress", "epoch": index,
                     "max_epoch": len(epochs) - 1, "kpi": kpi})
    if final:
        objs.append({"status": final, "message": "done", "kpi": kpi})
    lines = parse_text("".join(json.dumps(o) + "\n" for o in objs))
    return lines, read_results(lines)


def test_success():
    lines, results = _status(0.2, 0.4, final="SUCCESS")
    assert decide(0, lines, results, "", "val_miou", 2, stopped=False).status == "completed"


def test_recovered_after_budget():
    """The wrapper failed after the last epoch (2 epochs = the budget): the metric counts."""
    lines, results = _status(0.2, 0.4)
    out = decide(1, lines, results, "ValueError: cleanup", "val_miou", 2, False)
    assert out.status == "recovered" and out.failure_class == "error"


def test_died_early_is_failed():
    """One epoch (0-based epoch 0) of a 2-epoch budget: epochs completed 1 < 2."""
    lines, results = _status(0.2)
    assert decide(1, lines, results, "boom", "val_miou", 2, False).status == "failed"
    # The same line read with the old 1-based reading would have reached a budget of 1 only.
    assert decide(1, lines, results, "boom", "val_miou", 1, False).status == "recovered"


def test_oom_by_exit_code_and_by_message():
    assert classify(137, [], "")[0] == "oom"
    assert classify(1, [], "RuntimeError: CUDA out of memory. Tried to allocate")[0] == "oom"


def test_data_spec_diverged_infrastructure():
    data = parse_text(json.dumps({"status": "FAILURE", "message": "data: split 'val' not found at /x"}))
    assert classify(1, data, "")[0] == "data"
    spec = parse_text(json.dumps({"status": "FAILURE", "message": "spec: unknown key 'train.foo'"}))
    assert classify(1, spec, "")[0] == "spec"
    assert classify(127, [], "")[0] == "infrastructure"
    lines, results = _status(0.2, math.nan, final="SUCCESS")
    nan = decide(0, lines, results, "", "val_miou", 2, False)
    assert nan.status == "failed" and nan.failure_class == "diverged"


def test_metric_never_reported():
    lines, results = _status(0.2, kpi_name="val_acc", final="SUCCESS")
    out = decide(0, lines, results, "", "val_miou", 1, False)
    assert out.failure_class == "metric" and "val_acc" in out.message


def test_stopped_is_not_a_failure():
    assert decide(-15, [], [], "", "val_miou", 3, stopped=True).status == "stopped"
