import json
from pathlib import Path

from automl.tao.lines import StatusTail, parse_text, read_status, status_path


def _lines(*objs):
    return "".join(json.dumps(o) + "\n" for o in objs)


def test_json_lines_and_metrics(tmp_path: Path):
    path = tmp_path / "status.json"
    path.write_text(_lines({"status": "STARTED"},
                           {"status": "RUNNING", "epoch": 1, "kpi": {"val_miou": 0.5}},
                           {"status": "SUCCESS"}))
    lines = read_status(path)
    assert [l.status for l in lines] == ["STARTED", "RUNNING", "SUCCESS"]
    assert lines[1].epoch == 1 and lines[1].metric("val_miou") == 0.5


def test_pretty_array_trailing_commas_garbage_and_nan_strings():
    text = '[\n {"status": "RUNNING", "epoch": 2, "kpi": {"val_miou": "nan"}},\n' \
           ' {"status": "RUNNING", "epoch": 3, "kpi": {"val_miou": 0.7}},\n]'
    lines = parse_text(text)
    assert [l.epoch for l in lines] == [2, 3]
    assert lines[0].metric("val_miou") != lines[0].metric("val_miou")  # NaN
    mixed = 'garbage line\n{"status": "RUNNING", "epoch": 1, "kpi": {"val_miou": 0.1}},\n{"status": '
    assert [l.epoch for l in parse_text(mixed)] == [1]


def test_pretty_printed_objects_over_several_lines():
    objs = [{"status": "RUNNING", "epoch": e, "kpi": {"val_miou": 0.2}} for e in (1, 2)]
    text = json.dumps(objs, indent=2)
    assert [l.epoch for l in parse_text(text)] == [1, 2]
    torn = text[:-20]  # an array still being written: the second object is incomplete
    assert [l.epoch for l in parse_text(torn)] == [1]


def test_tail_consumes_only_complete_lines(tmp_path: Path):
    path = tmp_path / "status.json"
    tail = StatusTail(path)
    assert tail.read_new() == []
    full = json.dumps({"status": "RUNNING", "epoch": 1, "kpi": {"val_miou": 0.3}})
    path.write_text(full[:10])
    assert tail.read_new() == []
    with path.open("a") as handle:
        handle.write(full[10:] + "\n" + full[:5])
    got = tail.read_new()
    assert [l.epoch for l in got] == [1]
    with path.open("a") as handle:
        handle.write("{\"status\": \"SUCC")
    assert tail.read_new(final=True) == []  # torn forever: skipped, no crash


def test_tail_restarts_when_file_truncated(tmp_path: Path):
    path = tmp_path / "status.json"
    path.write_text(_lines({"status": "RUNNING", "epoch": 1, "kpi": {"val_miou": 0.1}},
                           {"status": "RUNNING", "epoch": 2, "kpi": {"val_miou": 0.2}}))
    tail = StatusTail(path)
    assert len(tail.read_new()) == 2
    path.write_text(_lines({"status": "STARTED"}))
    assert [l.status for l in tail.read_new()] == ["STARTED"]


def test_status_path_variants(tmp_path: Path):
    assert status_path(tmp_path) == tmp_path / "train" / "status.json"
    (tmp_path / "status.json").write_text("")
    assert status_path(tmp_path) == tmp_path / "status.json"
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "status.json").write_text("")
    assert status_path(tmp_path) == tmp_path / "train" / "status.json"
