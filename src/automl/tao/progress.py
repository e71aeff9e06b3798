"""What a TAO ``status.json`` *means*: validation results keyed by epochs completed.

TAO's PyTorch containers (Lightning) write through one StatusLogger per process whose ``kpi``
dict persists until replaced; per epoch, in Lightning's hook order (sources and the exact lines
in ``tests/fixtures/tao_golden/README.md``):

1. ``"Eval metrics generated."`` with the validation KPIs and **no** ``epoch`` key (only in
   epochs that validate: ``train.validation_interval``);
2. ``"Training loop in progress"`` with ``epoch`` = Lightning's **0-based** ``current_epoch``,
   ``step``, ``max_epoch`` = num_epochs - 1, and the current kpi repeated;
3. ``"Train metrics generated."`` with ``{"train_loss": x}``, which *replaces* the kpi, so the
   later lines ("Training loop complete.", "Train finished successfully.", non-validating epoch
   lines) repeat the training loss;
4. the checkpoint (``automl.tao.checkpoints``).

A process starts with STARTED "Starting <Net> train." (then, when resuming, RUNNING "Resuming
training from checkpoint: <file>") and STARTED "Starting Training Loop."; a successful run ends
with RUNNING "Train finished successfully." and exit 0 - SUCCESS is written only by TAO's API
container handler, and many failures (RuntimeError, OOM, asserts) write no FAILURE line at all:
the exit code is the truth, the lines are evidence.

The rules this module owns (nothing else in the engine interprets TAO's epoch numbers):

* epochs completed = ``epoch + 1`` of an epoch line;
* KPIs without an epoch belong to the epoch in progress, which the next epoch line closes and
  numbers (a later KPI line in the same epoch supersedes an earlier one);
* "Train metrics generated." belongs to the epoch just closed (it follows its epoch line);
* a line whose KPIs equal the logger's persisted ones is a repetition, not a new result; only
  TAO's eval message marks a new result even when the values repeat;
* KPIs written as strings parse (:mod:`automl.tao.lines`); NaN/inf stay, so a diverged run is
  still seen as one;
* a run that dies between its validation and its epoch line: the KPIs count for the epoch in
  progress (its training had finished); where that epoch is unknown they are dropped, not guessed;
* each process appends to the same file (resume); Lightning restores ``current_epoch`` from the
  checkpoint, so epoch numbers stay absolute across runs, and a new process (a STARTED line
  after progress) starts with an empty kpi.

TAO's own AutoML files every KPI under the *last seen* epoch, which credits each validation to
the previous epoch (tao-core ``StatusParser``): we follow the source's hook order instead.

The engine's unit everywhere else is *epochs completed* (a budget: a rung at 3 epochs means
three epochs trained), in Tune results (``epoch``), records, pointers and ``observed_budget``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from automl.tao.lines import StatusLine

EVAL_MESSAGE = "Eval metrics generated."  # the LightningModule, at validation epoch end
TRAIN_MESSAGE = "Train metrics generated."  # the LightningModule, at train epoch end
EPOCH_MESSAGE = "Training loop in progress"  # TAO's status callback, at train epoch end
RESUME_PREFIX = "Resuming training from checkpoint:"  # the train script, when resuming
SUCCESS_SUFFIX = "finished successfully."  # monitor_status: f"{Action} finished successfully."
FINAL = ("SUCCESS", "FAILURE")


@dataclass(frozen=True)
class EpochResult:
    """KPIs measured after ``epochs`` epochs of training."""

    epochs: int
    kpi: dict[str, float]
    validation: bool = True  # a validation ran (TAO's eval line, or val_* KPIs), not only training KPIs

    def metric(self, name: str) -> float | None:
        value = self.kpi.get(name)
        return None if value is None else float(value)


def _progress(line: StatusLine) -> bool:
    """Whether a line shows training under way or over (so a later STARTED is a new process)."""
    return line.epoch is not None or bool(line.kpi) or line.status in FINAL


class ResultReader:
    """Turns status lines, fed in file order, into :class:`EpochResult` s.

    Feed it live (a trial tailing its trainer) or a whole file (post mortem). ``start`` is the
    number of epochs completed before the first process it is fed (the resume checkpoint's):
    it places KPIs that no epoch line closed. A validation result is emitted when the epoch line
    closing its epoch arrives.
    """

    def __init__(self, start: int = 0, history: Iterable[StatusLine] = ()) -> None:
        from automl.tao.checkpoints import epoch_ends

        # Where epochs ended (earlier processes' lines in ``history``, then the lines fed): a
        # resume line naming TAO's exception checkpoint is placed at the epochs it holds.
        self._ends = epoch_ends(history)
        self._next_start: int | None = start
        self._completed: int | None = None  # epochs completed so far (None: unknown)
        self._last_epoch_line: StatusLine | None = None
        self._persisted: dict[str, float] = {}
        self._fresh: dict[str, float] | None = None  # new KPIs not yet closed by an epoch line
        self._evaluated = False  # an eval line contributed to ``_fresh``
        self._in_run = False  # a process has started and shown progress

    def feed(self, line: StatusLine) -> list[EpochResult]:
        out: list[EpochResult] = []
        if self._next_start is not None or (line.status == "STARTED" and self._in_run):
            out += self.finish()
            self._new_process()
        if line.message.startswith(RESUME_PREFIX):
            from automl.tao.checkpoints import CheckpointFile, epochs_held

            resumed = CheckpointFile.parse(Path(line.message[len(RESUME_PREFIX):].strip()))
            if resumed is not None:
                self._completed = epochs_held(resumed, self._ends)
        self._in_run = self._in_run or _progress(line)
        kpi = dict(line.kpi)
        new = bool(kpi) and (line.message == EVAL_MESSAGE or kpi != self._persisted)
        if kpi:
            self._persisted = kpi
        if new and line.message == TRAIN_MESSAGE:
            if self._completed is not None:
                out.append(EpochResult(self._completed, kpi, validation=False))
        elif new:
            # Several KPI lines in one epoch (e.g. a sanity-check validation, then the real one)
            # make one result, the later values winning.
            self._fresh = {**(self._fresh or {}), **kpi}
            self._evaluated = self._evaluated or line.message == EVAL_MESSAGE
        if line.epoch is not None and line.epoch >= 0:
            self._ends.add((line.epoch + 1, line.step))
            self._completed = line.epoch + 1
            self._last_epoch_line = line
            if self._fresh is not None:
                out.append(self._result(self._completed))
        return out

    def finish(self) -> list[EpochResult]:
        """KPIs still open at the end of a process (it exited, or the file ends)."""
        if self._fresh is None or self._completed is None:
            self._fresh, self._evaluated = None, False
            return []
        last = self._last_epoch_line
        if last is not None and last.max_epoch is not None and last.epoch is not None \
                and last.epoch >= last.max_epoch:
            return [self._result(self._completed)]  # a final validation after training
        return [self._result(self._completed + 1)]  # validated, epoch line never written

    def _result(self, epochs: int) -> EpochResult:
        kpi = self._fresh or {}
        validation = self._evaluated or any(key.startswith("val") for key in kpi)
        self._fresh, self._evaluated = None, False
        return EpochResult(epochs, kpi, validation)

    def _new_process(self) -> None:
        self._completed, self._next_start = self._next_start, None
        self._last_epoch_line = None
        self._persisted, self._fresh, self._evaluated, self._in_run = {}, None, False, False


def read_results(lines: list[StatusLine], start: int = 0) -> list[EpochResult]:
    """Every result of a whole status file (all runs in it), in file order."""
    reader = ResultReader(start)
    out = [result for line in lines for result in reader.feed(line)]
    return out + reader.finish()


def join_train_kpis(validation: EpochResult, following: EpochResult) -> EpochResult | None:
    """The validation result with the ``train_*`` KPIs of the result that follows it, when that
    one is the same epoch's "Train metrics generated." (TAO writes it just after the epoch line
    that closes a validation); None when it is not. The engine reports the two as one result,
    so that train_loss travels with the score and never counts as a score of its own."""
    if following.validation or following.epochs != validation.epochs:
        return None
    train = {k: v for k, v in following.kpi.items() if k.startswith("train_")}
    return EpochResult(validation.epochs, {**train, **validation.kpi}, validation.validation)


def with_train_kpis(results: list[EpochResult]) -> list[EpochResult]:
    """A whole file's results with each validation joined to its epoch's train KPIs."""
    out: list[EpochResult] = []
    for result in results:
        joined = join_train_kpis(out[-1], result) if out and out[-1].validation else None
        if joined is not None:
            out[-1] = joined
        else:
            out.append(result)
    return out


def runs(lines: list[StatusLine]) -> list[list[StatusLine]]:
    """The file split into trainer processes (each appends its own lines, from its STARTED)."""
    out: list[list[StatusLine]] = []
    for line in lines:
        if not out or (line.status == "STARTED" and any(map(_progress, out[-1]))):
            out.append([])
        out[-1].append(line)
    return out


def final_status(run: list[StatusLine]) -> str | None:
    """SUCCESS or FAILURE as far as a process's lines tell, None when they do not.

    TAO's train scripts end a good run with RUNNING "Train finished successfully." (SUCCESS
    comes only from TAO's API handler), and write FAILURE for some exceptions only; where the
    exit code is known it decides, this is for reading a file post mortem.
    """
    for line in reversed(run):
        if line.status in FINAL:
            return line.status
        if line.message.endswith(SUCCESS_SUFFIX):
            return "SUCCESS"
    return None


def reported_kpis(lines: list[StatusLine]) -> list[str]:
    """Every KPI name the trainer wrote (for "the metric is never written" messages)."""
    return sorted({key for line in lines for key in line.kpi})
