"""Parsing a trainer's ``status.json`` into lines (what each line *means* is :mod:`automl.tao.progress`).

TAO trainers append one JSON object per line to ``results_dir/train/status.json`` while they run;
the engine reads that file *while it is written*. Observed variants that a reader must survive:
JSON Lines (the normal case), one pretty-printed JSON array, trailing commas, a torn last line
(the writer is mid-line) and stray non-JSON lines. Nothing in here ever raises on file content:
what cannot be parsed is skipped.

Two readers share one scanner (:func:`parse_stream`):

* :func:`read_status` parses a whole file (post-mortem: recovery, ``automl recover``).
* :class:`StatusTail` reads incrementally from a byte offset and only consumes complete entries,
  so a torn line (or an array's object still being written) is picked up on the next poll.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StatusLine:
    """One parsed status entry."""

    status: str  # STARTED | RUNNING | SUCCESS | FAILURE | SKIPPED | "" when absent
    epoch: int | None  # as written: TAO's 0-based ``current_epoch`` (see automl.tao.progress)
    max_epoch: int | None
    kpi: dict[str, float]
    message: str
    step: int | None
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
        step=_as_int(obj.get("step")),
        kpi=_kpi(obj),
        message=message if isinstance(message, str) else "",
        raw=obj,
    )


_SEPARATORS = " \t\r\n,[]"  # between entries: whitespace, and a JSON array's punctuation
_DECODER = json.JSONDecoder()
_NEXT_OBJECT = re.compile(r"(?<=\n)[ \t,\[]*\{")  # a line that starts another object


def parse_stream(text: str, final: bool = False) -> tuple[list[StatusLine], int]:
    """The entries at the start of ``text``, and how many characters they used up.

    One scanner for every form a status file takes: JSON Lines, a pretty-printed array (objects
    over several lines, commas, brackets), stray non-JSON lines and a torn object. An object that
    fails to decode only because the text ends inside it is *incomplete*: scanning stops before
    it (the writer is mid-write; the next read continues there) unless ``final``. One that fails
    although another object starts on a later line is broken (a torn JSON line the writer
    abandoned): scanning resumes at that line.
    """
    out: list[StatusLine] = []
    pos, size = 0, len(text)
    while True:
        while pos < size and text[pos] in _SEPARATORS:
            pos += 1
        if pos >= size:
            return out, pos
        if text[pos] == "{":
            try:
                obj, end = _DECODER.raw_decode(text, pos)
            except ValueError:
                later = _NEXT_OBJECT.search(text, pos + 1)
                if later is None:
                    return out, (size if final else pos)  # incomplete: wait for the rest
                pos = later.start()
                continue
            line = parse_object(obj)
            if line is not None:
                out.append(line)
            pos = end
            continue
        newline = text.find("\n", pos)  # a stray non-JSON line: skip it once it is complete
        if newline == -1:
            return out, (size if final else pos)
        pos = newline + 1


def parse_text(text: str) -> list[StatusLine]:
    """Every parseable entry of a whole document."""
    return parse_stream(text, final=True)[0]


def read_status(path: Path) -> list[StatusLine]:
    """All parseable entries of a status file; [] when it does not exist."""
    try:
        return parse_text(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return []


class StatusTail:
    """Incremental reader: returns entries appended since the last call.

    Entries are returned as soon as they are complete, in whichever form the file takes (a
    JSON line, or an object of a pretty-printed array spread over several lines); a torn one
    stays for the next call. :meth:`read_new` with ``final=True`` also skips an unterminated
    remainder (the writer has exited). If the file shrinks (the trainer was restarted and
    truncated it), reading starts over from the beginning.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._reset()

    def _reset(self) -> None:
        self._offset = 0
        self._pending = ""
        # Incremental: a multi-byte character split between two reads is decoded whole.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read_new(self, final: bool = False) -> list[StatusLine]:
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, 2)
                if size < self._offset:
                    self._reset()
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        text = self._pending + self._decoder.decode(chunk, final=final)
        lines, used = parse_stream(text, final=final)
        self._pending = text[used:]
        return lines


def status_path(results_dir: Path, action: str = "train") -> Path:
    """Where the status file is: ``results_dir/<action>/status.json``, else ``results_dir/status.json``.

    Some TAO versions write at the top of results_dir; prefer the per-action file when present.
    """
    nested = results_dir / action / "status.json"
    if nested.exists() or not (results_dir / "status.json").exists():
        return nested
    return results_dir / "status.json"
