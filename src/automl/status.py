"""Reading a trainer's ``status.json``.

TAO trainers append one JSON object per line to ``results_dir/train/status.json`` while they run;
the engine reads that file *while it is written*. Observed variants that a reader must survive:
JSON Lines (the normal case), one pretty-printed JSON array, trailing commas, a torn last line
(the writer is mid-line) and stray non-JSON lines. Nothing in here ever raises on file content:
what cannot be parsed is skipped.

Two readers share one line parser:

* :func:`read_status` parses a whole file (post-mortem: recovery, ``automl recover``).
* :class:`StatusTail` reads incrementally from a byte offset and only consumes complete lines,
  so a torn line is picked up on the next poll once the writer has finished it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VALIDATION_KEYS = ("val_miou", "val_loss", "val_acc", "val_mf1", "val_mprecision", "val_mrecall")


@dataclass(frozen=True)
class StatusLine:
    """One parsed status entry."""

    status: str  # STARTED | RUNNING | SUCCESS | FAILURE | SKIPPED | "" when absent
    epoch: int | None
    max_epoch: int | None
    kpi: dict[str, float]
    message: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    def metric(self, name: str) -> float | None:
        """The KPI ``name`` as a float, or None when absent/not numeric."""
        value = self.kpi.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _kpi(obj: dict[str, Any]) -> dict[str, float]:
    """KPIs from the ``kpi`` dict, falling back to top-level metric keys some versions write."""
    kpi: dict[str, float] = {}
    source = obj.get("kpi")
    if isinstance(source, dict):
        items = source.items()
    else:
        items = ((k, v) for k, v in obj.items() if k.startswith(("val_", "train_")))
    for key, value in items:
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            kpi[str(key)] = float(value)
        elif isinstance(value, str):
            try:  # "nan", "inf" or a number written as a string
                kpi[str(key)] = float(value)
            except ValueError:
                pass
    return kpi


def parse_object(obj: Any) -> StatusLine | None:
    """A status entry from a decoded JSON value, or None if it is not one."""
    if not isinstance(obj, dict):
        return None
    message = obj.get("message")
    return StatusLine(
        status=str(obj.get("status", "")).upper(),
        epoch=_as_int(obj.get("epoch")),
        max_epoch=_as_int(obj.get("max_epoch")),
        kpi=_kpi(obj),
        message=message if isinstance(message, str) else "",
        raw=obj,
    )


def parse_line(text: str) -> StatusLine | None:
    """Parse one line; tolerate trailing commas and array brackets around it."""
    text = text.strip().rstrip(",").strip()
    if text.startswith("["):
        text = text[1:].strip()
    if text.endswith("]"):
        text = text[:-1].strip().rstrip(",")
    if not text.startswith("{"):
        return None
    try:
        return parse_object(json.loads(text))
    except ValueError:
        return None


def parse_text(text: str) -> list[StatusLine]:
    """Parse a whole document: a JSON array/object first, then line by line."""
    stripped = text.strip()
    if not stripped:
        return []
    if stripped[0] in "[{":
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, list):
            return [line for line in map(parse_object, doc) if line is not None]
        if isinstance(doc, dict):
            line = parse_object(doc)
            return [line] if line else []
    lines = [parse_line(part) for part in text.splitlines()]
    parsed = [line for line in lines if line is not None]
    if parsed or "{" not in text:
        return parsed
    return _parse_pretty_objects(text)


def _parse_pretty_objects(text: str) -> list[StatusLine]:
    """Objects spread over several lines (a pretty-printed array that is still being written)."""
    decoder = json.JSONDecoder()
    out: list[StatusLine] = []
    index = text.find("{")
    while index != -1:
        try:
            obj, end = decoder.raw_decode(text, index)
        except ValueError:
            index = text.find("{", index + 1)
            continue
        line = parse_object(obj)
        if line is not None:
            out.append(line)
        index = text.find("{", end)
    return out


def read_status(path: Path) -> list[StatusLine]:
    """All parseable entries of a status file; [] when it does not exist."""
    try:
        return parse_text(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return []


class StatusTail:
    """Incremental reader: returns entries appended since the last call.

    Only complete lines (ending in a newline) are consumed; a torn last line stays for the next
    call. :meth:`read_new` with ``final=True`` also parses the unterminated remainder (the writer
    has exited). If the file shrinks (the trainer was restarted and truncated it), reading starts
    over from the beginning.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._pending = b""

    def read_new(self, final: bool = False) -> list[StatusLine]:
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, 2)
                if size < self._offset:
                    self._offset, self._pending = 0, b""
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._pending + chunk
        complete, _, rest = data.rpartition(b"\n")
        self._pending = rest
        text = complete.decode("utf-8", errors="replace")
        if final and rest:
            text = f"{text}\n{rest.decode('utf-8', errors='replace')}"
            self._pending = b""
        return [line for line in map(parse_line, text.splitlines()) if line is not None]


def status_path(results_dir: Path, action: str = "train") -> Path:
    """Where the status file is: ``results_dir/<action>/status.json``, else ``results_dir/status.json``.

    Some TAO versions write at the top of results_dir; prefer the per-action file when present.
    """
    nested = results_dir / action / "status.json"
    if nested.exists() or not (results_dir / "status.json").exists():
        return nested
    return results_dir / "status.json"


def validation_results(lines: list[StatusLine], metric: str) -> list[tuple[int, dict[str, float]]]:
    """(epoch, kpis) for every entry that carries ``metric`` and an epoch, in file order."""
    out = []
    for line in lines:
        if line.epoch is not None and line.metric(metric) is not None:
            out.append((line.epoch, dict(line.kpi)))
    return out
