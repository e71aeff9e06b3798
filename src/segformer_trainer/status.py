"""status.json writer in TAO's format (TAO's ``StatusLogger`` + Lightning ``TAOStatusLogger``).

JSON Lines: one object per line, appended and flushed (and fsync'ed) line by line, because the
AutoML engine tails the file while it is written. The file is opened in append mode, like TAO's:
a resumed run appends its own lines (from its STARTED line) after the previous run's.

Every line has, in this key order (TAO builds the dict as ``data`` first, then the generic keys):
the line's own ``data`` keys (train-epoch-end lines: ``epoch``, ``step``, ``max_epoch``,
``max_step``, ``time_per_epoch``, ``time_per_step``, ``eta``), then ``date`` (``8/20/2026``:
month/day/year, no zero padding), ``time`` (``21:5:7``: no zero padding), ``status`` (STARTED |
RUNNING | SUCCESS | FAILURE | SKIPPED), ``verbosity`` (``INFO``), ``message`` when there is one,
and ``kpi`` once one was set.

**The logger keeps its kpi**: like TAO's ``BaseLogger``, :attr:`StatusLogger.kpi` is state.
Setting it (``write(..., kpi=...)`` or ``logger.kpi = ...``) replaces it, and every later line,
whatever its status (train lines, SUCCESS, FAILURE), repeats the last kpi dict until it is set
again. Lines written before any kpi was set have no ``kpi`` key. KPI values are written as
floats (a NaN as the bare token ``NaN``, as Python's json module, and so TAO, does).

Durations (``time_per_epoch``, ``time_per_step``, ``eta``) are ``str(datetime.timedelta)``,
e.g. ``0:00:01.523000``.

TAO's exact message strings live in one place, the ``MSG_*`` constants below, so a correction
is a one-line change.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- TAO's strings (one place)
# The train action (see train.py for when each is written; sources: tests/fixtures/tao_golden/README.md).
MSG_TRAIN_STARTED = "Starting SegFormer train."        # monitor_status(name="SegFormer", mode="train")
MSG_RESUMING = "Resuming training from checkpoint: {path}"  # initialize_experiments, when resuming
MSG_LOOP_STARTED = "Starting Training Loop."           # TAOStatusLogger.on_train_start (STARTED)
MSG_EVAL = "Eval metrics generated."                   # SegFormer LightningModule.on_validation_epoch_end
MSG_TRAIN_LOOP = "Training loop in progress"           # TAOStatusLogger.on_train_epoch_end
MSG_TRAIN_METRICS = "Train metrics generated."         # SegFormer LightningModule.on_train_epoch_end
MSG_LOOP_COMPLETE = "Training loop complete."          # TAOStatusLogger.on_train_end
MSG_TRAIN_SUCCESS = "Train finished successfully."     # monitor_status: f"{mode.capitalize()} finished successfully."
# monitor_status writes its success line as RUNNING: SUCCESS comes only from TAO's API handler.
SUCCESS_STATUS = "RUNNING"
# The other actions (monitor_status(name="SegFormer", mode=<action>)).
MSG_STARTED = "Starting SegFormer {action}."
MSG_SUCCESS = "{Action} finished successfully."
MSG_INTERRUPTED = "User/System interruption: {Action} was interrupted"
# The kpi keys of the validation line (TAO's SegFormer module; also evaluate's kpi here).
VAL_KPI_KEYS = ("val_loss", "val_acc", "val_miou", "val_mf1", "val_mprecision", "val_mrecall")


def started_message(action: str) -> str:
    return MSG_TRAIN_STARTED if action == "train" else MSG_STARTED.format(action=action)


def success_message(action: str) -> str:
    return MSG_TRAIN_SUCCESS if action == "train" else MSG_SUCCESS.format(Action=action.capitalize())


def interrupted_message(action: str) -> str:
    return MSG_INTERRUPTED.format(Action=action.capitalize())


def _now() -> tuple[str, str]:
    now = _dt.datetime.now()
    return f"{now.month}/{now.day}/{now.year}", f"{now.hour}:{now.minute}:{now.second}"


def fmt_duration(seconds: float) -> str:
    return str(_dt.timedelta(seconds=max(0.0, float(seconds))))


class StatusLogger:
    """Appends TAO status lines to ``<dir>/status.json``; keeps and repeats the last ``kpi``."""

    def __init__(self, directory: str | Path, filename: str = "status.json") -> None:
        self.path = Path(directory) / filename
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._kpi: dict[str, float] = {}

    @property
    def kpi(self) -> dict[str, float]:
        return dict(self._kpi)

    @kpi.setter
    def kpi(self, value: dict[str, float] | None) -> None:
        self._kpi = {k: float(v) for k, v in (value or {}).items()}

    def write(
        self,
        status: str,
        message: str | None = None,
        *,
        kpi: dict[str, float] | None = None,
        data: dict[str, Any] | None = None,
        verbosity: str = "INFO",
    ) -> dict[str, Any]:
        """Write one line. ``kpi`` (when given) replaces the kept kpi first; ``data`` keys lead the line."""
        if kpi is not None:
            self.kpi = kpi
        date, time = _now()
        line: dict[str, Any] = dict(data or {})
        line.update({"date": date, "time": time, "status": status, "verbosity": verbosity})
        if message:
            line["message"] = message
        if self._kpi:
            line["kpi"] = dict(self._kpi)
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
