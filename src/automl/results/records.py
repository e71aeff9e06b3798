"""What the experiment knows about each trial, and its durable form (``history.json``).

The driver builds :class:`TrialRecord` objects from Ray Tune's callbacks and from each trial's
``outcome.json`` (written by the trial itself, so it survives a driver crash). While a run goes,
every change of a record is appended to the journal (:mod:`automl.results.journal`: constant cost per
event); ``history.json`` is its compacted form, rewritten atomically at the start and end of a
run and by ``automl recover``. :func:`read_history` reads both, so another terminal (``automl
status``, the service) sees every event at any time.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from automl.results.journal import journal_path, read_journal
from automl.validation import HISTORY, problem

HISTORY_VERSION = 1


@dataclass
class TrialRecord:
    rec_id: str
    params: dict[str, Any]
    index: int = 0  # order of creation (1, 2, ...): Ray's trial ids are random hex
    status: str = "pending"  # pending | running | paused | completed | recovered | failed | stopped
    budget: int = 0  # the epoch budget this trial was given (may grow on promotion)
    results: list[dict[str, float]] = field(default_factory=list)  # per validation: epoch + kpis
    failure_class: str | None = None
    failure_message: str = ""
    parent: str | None = None  # PBT: the trial whose checkpoint this one started from
    rung: int | None = None
    bracket: int | None = None
    proposed_by: str | None = None  # bracket family: the model that proposed it
    started_at: float | None = None
    ended_at: float | None = None
    retries: int = 0
    folder: str = ""
    # When a trainer ran for it: [start, end] per stretch (end None while it runs). A trial
    # waiting at a rung or for a slot holds no slot: the page's timeline draws these, not
    # started_at..ended_at.
    runs: list[list[float | None]] = field(default_factory=list)

    def run_started(self, now: float) -> None:
        """A trainer started for this trial (a first start, a promotion, a restart)."""
        if not self.runs or self.runs[-1][1] is not None:
            self.runs.append([now, None])

    def run_stopped(self, now: float) -> None:
        """Its trainer stopped (paused at a rung, pending again, ended)."""
        if self.runs and self.runs[-1][1] is None:
            self.runs[-1][1] = now

    @property
    def observed_budget(self) -> int:
        """The largest epoch with a reported result."""
        return max((int(r["epoch"]) for r in self.results), default=0)

    def score(self, metric: str) -> float | None:
        """The metric at the largest observed epoch (finite), else None."""
        at_budget = [r for r in self.results if int(r["epoch"]) == self.observed_budget]
        for result in reversed(at_budget):
            value = result.get(metric)
            if isinstance(value, (int, float)) and math.isfinite(value):
                return float(value)
        return None

    def add_result(self, epoch: int, kpis: dict[str, Any]) -> None:
        """Record a validation result; a re-run of the same epoch (resume) replaces the old one."""
        clean = {k: float(v) for k, v in kpis.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.results = [r for r in self.results if int(r["epoch"]) != epoch]
        self.results.append({"epoch": epoch, **clean})
        self.results.sort(key=lambda r: r["epoch"])

    def to_json(self) -> dict[str, Any]:
        return _finite(asdict(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: write them as strings so the file stays standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def atomic_write_json(path: Path, data: Any) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(data, indent=1, default=str).encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """:func:`atomic_write_json` for bytes (a searcher's pickled state: Tune restores the newest
    file, so a torn one would make the experiment impossible to resume)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_history(path: Path, experiment: dict[str, Any], records: list[TrialRecord]) -> None:
    """Compaction: ``history.json`` := these records, then the journal is emptied.

    A crash between the two steps leaves journal lines that repeat what history.json holds
    (snapshots: replaying them changes nothing), never a lost event.
    """
    atomic_write_json(path, {"version": HISTORY_VERSION, "experiment": experiment,
                             "trials": [r.to_json() for r in sorted(records, key=lambda r: r.index)]})
    journal = journal_path(path)
    if journal.exists():
        os.truncate(journal, 0)


def read_history(path: Path) -> tuple[dict[str, Any], list[TrialRecord]]:
    """history.json with the journal's newer record snapshots laid over it.

    A compaction between reading the two files (the run ending) would show a stale state: then
    history.json has been replaced, and the pair is read again.
    """
    journal = journal_path(path)
    for _ in range(5):
        before = _identity(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = read_journal(journal)
        if _identity(path) == before:
            break
    found = problem(data, HISTORY)
    if found:  # callers report a torn or foreign file as unreadable, as a JSON error
        raise ValueError(found)
    trials = {str(t.get("rec_id")): t for t in data.get("trials", [])}
    for entry in entries:
        trial = entry.get("trial")
        if isinstance(trial, dict) and "rec_id" in trial:
            trials[str(trial["rec_id"])] = trial
    records = [TrialRecord.from_json(t) for t in trials.values()]
    records.sort(key=lambda r: r.index)
    return data.get("experiment", {}), records


def _identity(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns
