"""The workspace's state file: one spelling per state; a workspace written before that reads the
same (``cancelled`` is ``canceled``), so `automl resume` and `automl status` treat it alike."""

from __future__ import annotations

import json
from pathlib import Path

from automl.results.workspace import CANCELED, Workspace


def test_old_spelling_of_canceled_reads_as_canceled(tmp_path: Path):
    ws = Workspace.create(tmp_path / "ws", tmp_path, "x")
    ws.state_file.write_text(json.dumps({"state": "cancelled", "pid": 1}))
    assert ws.state()["state"] == CANCELED == "canceled"
    ws.set_state(CANCELED)
    assert json.loads(ws.state_file.read_text())["state"] == "canceled"
