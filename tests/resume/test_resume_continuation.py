"""automl.resume.continuation: which checkpoint an interrupted segment continues from."""

from __future__ import annotations

import json
import os
import time

from automl.resume.continuation import clear_latest, continue_point, lineage, record
from automl.tao.lines import parse_text


def epoch_lines(*ends: tuple[int, int]) -> list:
    return parse_text("".join(json.dumps({"epoch": e - 1, "step": s, "status": "RUNNING",
                                          "message": "Training loop in progress"}) + "\n"
                              for e, s in ends))


def test_same_base_and_params_continue_a_lineage_others_start_a_new_one(tmp_path):
    base = {"path": "/x/model_epoch_000_step_00010.pth", "epoch": 1, "rec_id": "t"}
    assert lineage(tmp_path, base, {"hp.x": 0.5}) is None  # nothing recorded yet
    record(tmp_path, base, {"hp.x": 0.5}, base, None)
    known = lineage(tmp_path, dict(base), {"hp.x": 0.5})
    assert known is not None and known.resume == base
    assert lineage(tmp_path, None, {"hp.x": 0.5}) is None  # a new base: a promotion, an exploit
    assert lineage(tmp_path, base, {"hp.x": 0.6}) is None  # PBT explored: other params


def test_newest_finished_epoch_since_the_lineage_began(tmp_path):
    old = tmp_path / "model_epoch_002_step_00030.pth"  # an earlier lineage's file
    old.write_bytes(b"w")
    since = time.time() + 1
    for name in ("model_epoch_000_step_00010.pth", "model_epoch_001_step_00020.pth",
                 "model_epoch_002_step_00025.pth"):  # the last: TAO's mid-epoch exception file
        (tmp_path / name).write_bytes(b"w")
    for path in tmp_path.iterdir():
        if path != old:
            os.utime(path, (since + 1, since + 1))
    lines = epoch_lines((1, 10), (2, 20), (3, 30))
    point = continue_point(tmp_path, lines, since, 0, 4)
    assert point is not None and point.path.name == "model_epoch_001_step_00020.pth"
    assert continue_point(tmp_path, lines, since, 0, 2).epochs == 1  # short of the budget
    assert continue_point(tmp_path, lines, since, 2, 4) is None  # nothing past the base


def test_a_start_with_nothing_to_name_removes_taos_auto_resume_link(tmp_path):
    (tmp_path / "model_epoch_000_step_00010.pth").write_bytes(b"w")
    (tmp_path / "fake_model_latest.pth").symlink_to("model_epoch_000_step_00010.pth")
    clear_latest(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["model_epoch_000_step_00010.pth"]
