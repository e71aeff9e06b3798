import math

from automl.failures import classify, decide
from automl.status import parse_text


def _status(*lines):
    import json

    return parse_text("".join(json.dumps(l) + "\n" for l in lines))


def _val(epoch, value):
    return {"status": "RUNNING", "epoch": epoch, "kpi": {"val_miou": value}}


def test_success():
    out = decide(0, _status(_val(1, 0.2), _val(2, 0.4)), "", "val_miou", 2, stopped=False)
    assert out.status == "completed"


def test_recovered_after_budget():
    out = decide(1, _status(_val(1, 0.2), _val(2, 0.4)), "ValueError: cleanup", "val_miou", 2, False)
    assert out.status == "recovered" and out.failure_class == "error"


def test_died_early_is_failed():
    out = decide(1, _status(_val(1, 0.2)), "boom", "val_miou", 3, False)
    assert out.status == "failed"


def test_oom_by_exit_code_and_by_message():
    assert classify(137, [], "")[0] == "oom"
    assert classify(1, [], "RuntimeError: CUDA out of memory. Tried to allocate")[0] == "oom"


def test_data_spec_diverged_infrastructure():
    data = _status({"status": "FAILURE", "message": "data: split 'val' not found at /x"})
    assert classify(1, data, "")[0] == "data"
    spec = _status({"status": "FAILURE", "message": "spec: unknown key 'train.foo'"})
    assert classify(1, spec, "")[0] == "spec"
    assert classify(127, [], "")[0] == "infrastructure"
    nan = decide(0, _status(_val(1, 0.2), _val(2, math.nan)), "", "val_miou", 2, False)
    assert nan.status == "failed" and nan.failure_class == "diverged"


def test_metric_never_reported():
    out = decide(0, _status({"status": "RUNNING", "epoch": 1, "kpi": {"val_acc": 0.2}}), "",
                 "val_miou", 1, False)
    assert out.failure_class == "metric" and "val_acc" in out.message


def test_stopped_is_not_a_failure():
    assert decide(-15, [], "", "val_miou", 3, stopped=True).status == "stopped"
