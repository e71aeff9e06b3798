"""status.json writer in TAO's format.

JSON Lines: one object per line, appended and flushed (and fsync'ed) line by line, because the
AutoML engine tails the file while it is written. Keys: ``date`` (``8/20/2026``: month/day/year,
no zero padding), ``time`` (``21:5:7``: no zero padding), ``status`` (STARTED | RUNNING | SUCCESS |
FAILURE), ``verbosity`` (``INFO``), and optionally ``message``, ``epoch``, ``max_epoch``,
``time_per_epoch``, ``eta`` (both as ``str(datetime.timedelta)``, e.g. ``0:00:01.523000``) and
``kpi`` (a dict of floats; a NaN is written as the bare token ``NaN``, as Python's json module
(and so TAO) does). The file is opened in append mode, like TAO's: a resumed run appends
its own STARTED ... SUCCESS lines after the previous run's.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any


def _now() -> tuple[str, str]:
    now = _dt.datetime.now()
    return f"{now.month}/{now.day}/{now.year}", f"{now.hour}:{now.minute}:{now.second}"


def fmt_duration(seconds: float) -> str:
    return str(_dt.timedelta(seconds=max(0.0, float(seconds))))


class StatusLogger:
    """Appends TAO status lines to ``<dir>/status.json``."""

    def __init__(self, directory: str | Path, filename: str = "status.json") -> None:
        self.path = Path(directory) / filename
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(
        self,
        status: str,
        message: str | None = None,
        *,
        kpi: dict[str, float] | None = None,
        epoch: int | None = None,
        max_epoch: int | None = None,
        time_per_epoch: float | None = None,
        eta: float | None = None,
        verbosity: str = "INFO",
    ) -> dict[str, Any]:
        date, time = _now()
        line: dict[str, Any] = {"date": date, "time": time, "status": status, "verbosity": verbosity}
        if message is not None:
            line["message"] = message
        if epoch is not None:
            line["epoch"] = int(epoch)
        if max_epoch is not None:
            line["max_epoch"] = int(max_epoch)
        if time_per_epoch is not None:
            line["time_per_epoch"] = fmt_duration(time_per_epoch)
        if eta is not None:
            line["eta"] = fmt_duration(eta)
        if kpi is not None:
            line["kpi"] = {k: float(v) for k, v in kpi.items()}
        text = json.dumps(line) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            try:
                os.fsync(fh.fileno())
            except OSError:  # pragma: no cover - e.g. a pipe or special filesystem
                pass
        return line


def read_status(path: str | Path) -> list[dict[str, Any]]:
    """Parse a status.json written by :class:`StatusLogger` (skips lines it cannot parse)."""
    lines = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        raw = raw.strip().rstrip(",")
        if not raw:
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            lines.append(obj)
    return lines
