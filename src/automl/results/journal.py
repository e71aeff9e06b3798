"""The trial journal: append-only, fsync'd, one JSON line per trial event (``history.journal``).

Why: rewriting ``history.json`` at every trial event costs O(trials) per event (55 → 544 ms per
trial end at 1,000 trials, ``benchmarks/results/scale-1000.md``). An append costs the same at
trial 10 and at trial 10,000. This is the layout of Optuna's ``JournalStorage`` (one appended
line per change, replayed on read); Optuna's class stores Optuna trials, not our records, so the
few lines of file handling are ours.

Each line is ``{"trial": <full TrialRecord JSON>}``: a snapshot, not a delta, so replaying a line
twice (a crash between a compaction's history.json write and its truncation of the journal) is
harmless: the last line of a record is its current state. ``history.json`` stays the compacted
form that every reader starts from (:func:`automl.results.records.read_history` overlays the journal on
it); the driver compacts at the start and end of a run, on pause/cancel (the run's end) and
``automl recover`` rewrites it.

Crash safety: every line is written with one ``write`` and fsync'd before the event returns. A
kill can only tear the *last* line: readers ignore a last line that is unterminated or not
JSON, and the next writer cuts such a tail off before it appends (else the next line would be
glued to the fragment).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

JOURNAL_NAME = "history.journal"


def journal_path(history: Path) -> Path:
    """The journal that belongs to a ``history.json``: same folder."""
    return Path(history).with_name(JOURNAL_NAME)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The journal's entries in order; a torn last line is ignored, a missing file is empty.

    A line other than the last that is not a JSON object raises ValueError: that is not a torn
    append but a damaged file (``automl recover`` rebuilds the history from the trial folders).
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # tail: b"" when the file ends with a newline
    entries: list[dict[str, Any]] = []
    for number, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            if number == len(complete) and not tail:
                break  # the last line is torn (a kill between write and fsync of a rewrite)
            raise ValueError(f"{path}: line {number} is not JSON") from None
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: line {number} is not a JSON object")
        entries.append(entry)
    return entries  # an unterminated tail is a torn append: ignored


class Journal:
    """The driver's append handle. Not thread-safe on its own: the Recorder serializes calls."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._cut_torn_tail()

    def _cut_torn_tail(self) -> None:
        """Drop an unterminated last line (a torn append) so the next line starts clean."""
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        with open(self.path, "rb") as handle:
            handle.seek(max(0, size - 65536))
            chunk = handle.read()
        if chunk.endswith(b"\n"):
            return
        cut = chunk.rfind(b"\n")
        keep = size - len(chunk) + cut + 1 if cut >= 0 else (0 if size <= 65536 else None)
        if keep is None:  # a single line longer than 64 KiB: find its start the slow way
            keep = Path(self.path).read_bytes().rfind(b"\n") + 1
        os.ftruncate(self._fd, keep)
        os.fsync(self._fd)

    def append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":"), default=str).encode("utf-8") + b"\n"
        os.write(self._fd, line)  # O_APPEND: one write, at the end, even after a truncation
        os.fsync(self._fd)

    def truncate(self) -> None:
        """Empty the journal once ``history.json`` holds everything in it (compaction)."""
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
