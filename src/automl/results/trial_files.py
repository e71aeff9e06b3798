"""What a trial's own folder shows about it: its spec, its last status lines, the tail of its log,
and its checkpoints (which ones end a finished epoch).

The web page's trial page (``GET .../trials/{rec_id}/details``) and ``automl report`` (which
embeds one of these per trial) read the folder through this one function, so both show the same
thing. Secrets are hidden: the spec through :func:`automl.secrets.redact_spec_text`, every line
of the log and of the status file through :func:`automl.secrets.redact_assignments` and the
spec's own secret values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from automl.secrets import redact_assignments, redact_spec_text, redact_text
from automl.tao.checkpoints import finished_checkpoints, list_checkpoints
from automl.tao.lines import read_status, status_path

MAX_LINE = 2000  # characters of one log or status line shown (a progress bar can be huge)


def _tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a text file ([] when absent), reading at most its last MiB."""
    if lines <= 0:
        return []
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - (1 << 20)))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line[:MAX_LINE] for line in text.splitlines()[-lines:]]


def trial_details(folder: Path, log_lines: int = 60, status_lines: int = 30) -> dict[str, Any]:
    """``{"spec", "status_lines", "log_tail", "checkpoints"}`` of the trial folder ``folder``
    (``<workspace>/trials/<rec_id>``); every part is empty when its file is not there yet."""
    secrets: set[str] = set()
    try:
        spec = redact_spec_text((folder / "spec.yaml").read_text(encoding="utf-8",
                                                                 errors="replace"), secrets)
    except OSError:
        spec = ""

    def clean(line: str) -> str:
        return redact_text(redact_assignments(line), secrets)[:MAX_LINE]

    results = folder / "results"
    status = read_status(status_path(results))[-status_lines:] if status_lines > 0 else []
    train_dir = results / "train"
    finished = {c.path for c in finished_checkpoints(train_dir)}
    checkpoints = []
    for ckpt in list_checkpoints(train_dir):
        try:
            size = ckpt.path.stat().st_size
        except OSError:  # removed by retention meanwhile
            continue
        checkpoints.append({"name": ckpt.path.name, "epochs": ckpt.epochs, "step": ckpt.step,
                            "bytes": size, "finished_epoch": ckpt.path in finished})
    return {
        "spec": spec,
        "status_lines": [clean(json.dumps(line.raw, sort_keys=True, default=str))
                         for line in status],
        "log_tail": [clean(line) for line in _tail(folder / "train.log", log_lines)],
        "checkpoints": checkpoints,
    }
