"""Live progress of an experiment: a rich table on a terminal, plain log lines elsewhere.

``rich`` (a live table: trial, status, epoch/budget, current and best metric, the
hyperparameters, elapsed) when stdout is a TTY; ``plain`` (one line per event, for CI logs and
pipes); ``none`` (quiet). Both are observers of the :class:`~automl.run.recorder.Recorder`.

They run in the controller (the plain lines at every event, the table four times a second), so
their cost must not grow with the trial count: the counts per status are kept up to date as
events arrive, and the table picks its last 30 trials without sorting them all.
"""

from __future__ import annotations

import heapq
import functools
import math
import sys
import threading
import time
from collections import Counter
from typing import Any, TextIO

from automl.contract import FINISHED
from automl.results.records import TrialRecord
from automl.secrets import redact


SHOWN = 30  # rows of the rich table: the newest trials


def show_value(value: Any) -> str:
    """A KPI or hyperparameter as progress lines show it: 4 decimals, 3 significant digits for
    very small or large numbers."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.3g}" if (abs(value) < 1e-2 or abs(value) >= 1e4) and value else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


@functools.lru_cache(maxsize=64)
def short_names(names: tuple[str, ...]) -> dict[str, str]:
    """Each dotted name's shortest tail of at least two parts that no other name ends with:
    ``dataset.segment.augmentation.random_flip.enable`` → ``random_flip.enable``, but
    ``model.backbone.freeze_backbone`` and ``distill.teacher.backbone.freeze_backbone`` keep
    enough parts to stay apart (``model.backbone...`` / ``teacher.backbone...``)."""
    out: dict[str, str] = {}
    for name in names:
        parts = name.split(".")
        for size in range(min(2, len(parts)), len(parts) + 1):
            tail = ".".join(parts[-size:])
            if not any(other != name and (other == tail or other.endswith("." + tail))
                       for other in names):
                break
        out[name] = tail
    return out


def short_name(name: str, names: tuple[str, ...] = ()) -> str:
    """``name`` as :func:`short_names` shows it among ``names`` (the space's parameters)."""
    return short_names(tuple(sorted({name, *names})))[name]


class _Base:
    def __init__(self, metric: str, direction: str, total: int) -> None:
        self.metric = metric
        self.direction = direction
        self.total = total
        self.best: tuple[str, float] | None = None
        self.records: dict[str, TrialRecord] = {}
        self.started = time.monotonic()
        self._lock = threading.Lock()  # the rich table renders from its own thread
        self._status: dict[str, str] = {}  # rec_id -> the status counted for it
        self._counts: Counter[str] = Counter()

    def _track(self, record: TrialRecord) -> None:
        """Keep the record and move its count to its current status (O(1) per event)."""
        with self._lock:
            self.records[record.rec_id] = record
            old = self._status.get(record.rec_id)
            if old != record.status:
                if old is not None:
                    self._counts[old] -= 1
                self._counts[record.status] += 1
                self._status[record.rec_id] = record.status

    def _update_best(self, record: TrialRecord) -> None:
        value = record.results[-1].get(self.metric) if record.results else None
        if value is None or not math.isfinite(value):
            return
        better = self.best is None or (value > self.best[1] if self.direction == "max" else value < self.best[1])
        if better:
            self.best = (record.rec_id, value)

    def trial_status(self, record: TrialRecord) -> None:
        """Paused at a rung, or pending again: only the counts change (no line, no row)."""
        self._track(record)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {status: n for status, n in self._counts.items() if n}

    def summary_line(self) -> str:
        counts = self.counts()
        done = sum(counts.get(s, 0) for s in FINISHED)
        best = f"best {self.metric}={show_value(self.best[1])} ({self.best[0]})" if self.best else "best: -"
        elapsed = time.monotonic() - self.started
        extra = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s not in ("completed",))
        return (f"[{elapsed:6.1f}s] trials {done}/{self.total} done"
                f"{', ' + extra if extra else ''} | {best}")


class PlainProgress(_Base):
    """One line per event."""

    def __init__(self, metric: str, direction: str, total: int, stream: TextIO | None = None) -> None:
        super().__init__(metric, direction, total)
        self.stream = stream or sys.stdout

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def trial_started(self, record: TrialRecord) -> None:
        self._track(record)
        names = tuple(sorted(record.params))
        params = ", ".join(f"{short_name(k, names)}={show_value(v)}"
                           for k, v in redact(record.params).items())
        by = f", proposed by {record.proposed_by}" if record.proposed_by else ""
        self._print(f"{record.rec_id} started (budget {record.budget} epochs{by}): {params}")

    def trial_result(self, record: TrialRecord, result: dict[str, Any]) -> None:
        self._track(record)
        self._update_best(record)
        where = f" rung {result['rung']}" if "rung" in result else ""
        self._print(f"{record.rec_id} epoch {result.get('epoch')}/{record.budget}{where}: "
                    f"{self.metric}={show_value(result.get(self.metric))} | {self.summary_line()}")

    def trial_ended(self, record: TrialRecord) -> None:
        self._track(record)
        note = f" [{record.failure_class}: {record.failure_message}]" if record.failure_class else ""
        score = record.score(self.metric)
        self._print(f"{record.rec_id} {record.status} at epoch {record.observed_budget}"
                    f" {self.metric}={show_value(score)}{note} | {self.summary_line()}")

    def close(self) -> None:
        pass


class RichProgress(_Base):
    """A live table, refreshed a few times a second."""

    def __init__(self, metric: str, direction: str, total: int) -> None:
        super().__init__(metric, direction, total)
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self.live = Live(self._render(), console=self.console, refresh_per_second=4,
                         get_renderable=self._render, transient=False)
        self.live.start()

    def _render(self):
        from rich.table import Table

        table = Table(title=self.summary_line(), title_justify="left", expand=False)
        with self._lock:
            shown = heapq.nlargest(SHOWN, self.records.values(), key=lambda r: r.index)
        records = shown[::-1]
        by = any(r.proposed_by for r in records)  # bracket family: which model proposed it
        for column in ("trial", "status", "epoch", self.metric, "best of trial",
                       *(("proposed by",) if by else ()), "params"):
            table.add_column(column, overflow="fold")
        varying = self._varying(records)
        for record in records:
            values = [r.get(self.metric) for r in record.results if r.get(self.metric) is not None]
            best = (max if self.direction == "max" else min)(values) if values else None
            current = values[-1] if values else None
            style = {"failed": "red", "recovered": "yellow", "running": "cyan"}.get(record.status, "")
            status = record.status + (f" ({record.failure_class})" if record.failure_class else "")
            names = tuple(sorted(varying))
            params = ", ".join(f"{short_name(k, names)}={show_value(record.params.get(k))}"
                               for k in varying)
            table.add_row(record.rec_id, status, f"{record.observed_budget}/{record.budget}",
                          show_value(current), show_value(best),
                          *((record.proposed_by or "",) if by else ()), params, style=style)
        return table

    @staticmethod
    def _varying(records: list[TrialRecord]) -> list[str]:
        """Only hyperparameters whose values differ between the trials shown are worth the width."""
        keys: dict[str, set[str]] = {}
        for record in records:
            for key, value in redact(record.params).items():
                keys.setdefault(key, set()).add(repr(value))
        return [k for k, seen in keys.items() if len(seen) > 1 or len(records) == 1][:6]

    def trial_started(self, record: TrialRecord) -> None:
        self._track(record)

    def trial_result(self, record: TrialRecord, result: dict[str, Any]) -> None:
        self._track(record)
        self._update_best(record)

    def trial_ended(self, record: TrialRecord) -> None:
        self._track(record)

    def close(self) -> None:
        self.live.stop()


class NoProgress(_Base):
    def trial_started(self, record: TrialRecord) -> None: ...
    def trial_result(self, record: TrialRecord, result: dict[str, Any]) -> None: ...
    def trial_ended(self, record: TrialRecord) -> None: ...
    def close(self) -> None: ...


def make_progress(mode: str, metric: str, direction: str, total: int):
    if mode == "auto":
        mode = "rich" if sys.stdout.isatty() else "plain"
    cls = {"rich": RichProgress, "plain": PlainProgress, "none": NoProgress}[mode]
    return cls(metric, direction, total)
