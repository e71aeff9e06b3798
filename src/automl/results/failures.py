"""Trial outcome: success, recovered, or a classified failure with a one-line hint.

A trial process can fail in ways that call for different reactions: an out-of-memory trial needs
a smaller batch, a data error will fail every trial (stop early), an infrastructure error (the
launcher or container could not start) is worth one retry, a full disk (``disk``: ENOSPC while
writing a checkpoint) needs space freed, not a retry. The class is derived from the exit
code, the ``FAILURE`` messages in status.json and the tail of the trial's log, in that order of
trust.

Metric recovery (TAO behaviour, kept): a process that exits non-zero *after* reaching its epoch
budget with a finite metric counts with that metric and is marked ``recovered``.

Interruptions (TAO 7.3.0 + Lightning 2.x): a SIGTERM from outside (``docker stop``, an eviction,
a preemption) makes TAO save an exception checkpoint and exit **0** without its closing line
("Train finished successfully."). So a process whose last run wrote no closing line and that
stopped short of its budget is ``interrupted`` - not completed - when it exited 0 or by a
termination signal (SIGTERM, SIGINT, SIGHUP): the trial continues from its last complete
checkpoint (automl.run.trial). A non-zero exit with a traceback stays a failure: TAO writes no
line for a crash either, and running it again would crash again.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from automl.tao.lines import StatusLine
from automl.tao.progress import EpochResult, final_status, reported_kpis, runs

# Failure classes and what the user should do about each.
HINTS: dict[str, str] = {
    "oom": "out of memory: reduce the batch size (--set batch_size=N, or the network's batch "
    "size key) or the input size, or give each trial more memory",
    "disk": "no space left on device: free disk space where the workspace is, or keep fewer "
    "checkpoints (--keep-checkpoints best, a larger train.checkpoint_interval)",
    "data": "dataset problem: check the data inputs (--root-dir / --data KEY=PATH: the layout "
    "the network expects) and that the number of classes matches the data",
    "spec": "the trainer rejected the spec: check the key/value named in the message",
    "diverged": "the metric or loss became NaN/inf: lower the learning rate or narrow its range",
    "timeout": "the trial exceeded --trial-timeout without finishing: raise the timeout "
    "or check that the trainer is not hanging",
    "infrastructure": "the launcher/container could not run the trial: check the command, "
    "image and resources (retried automatically)",
    "checkpoint": "the trainer wrote no complete checkpoint at an epoch where the scheduler "
    "pauses or exploits trials: check disk space and train.checkpoint_interval",
    "metric": "the trainer never reports this metric: choose one it writes (the message lists "
    "them) with --metric",
    "interrupted": "the trainer was stopped from outside (SIGTERM: docker stop, eviction, "
    "preemption) more often than --max-retries allows: check what stops it",
    "error": "the trainer failed: see the trial's log",
}

# Exit codes of a process ended by SIGHUP, SIGINT or SIGTERM (a shell's 128+n, Popen's -n).
TERMINATED = frozenset({129, 130, 143, -1, -2, -15})

RETRYABLE = frozenset({"infrastructure"})

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("oom", re.compile(r"out of memory|CUDA error: out of memory|OutOfMemoryError|"
                       r"Cannot allocate memory|MemoryError|std::bad_alloc", re.I)),
    # Not retried: another attempt on the same full disk fails the same way.
    ("disk", re.compile(r"No space left on device|Disk quota exceeded|\bENOSPC\b|Errno 28\b",
                        re.I)),
    ("diverged", re.compile(r"\bdiverged\b|\bnan\b|\binf\b|non-finite|not finite", re.I)),
    ("data", re.compile(r"\bdata\b:|split .* not found|No such file or directory.*(images|masks)|"
                        r"num_classes|class id|mask", re.I)),
    ("spec", re.compile(r"\bspec\b:|unknown key|Extra inputs are not permitted|"
                        r"validation error|invalid value|ConfigKeyError|MissingMandatoryValue",
                        re.I)),
    ("infrastructure", re.compile(r"command not found|executable file not found|"
                                  r"No such image|image .* not found|Cannot connect to the Docker "
                                  r"daemon|OCI runtime|exec format error|\[automl\] infrastructure:", re.I)),
)


@dataclass(frozen=True)
class Outcome:
    """How a trial process ended, as the engine will record it."""

    status: str  # "completed" | "recovered" | "failed" | "stopped" | "interrupted"
    failure_class: str | None = None
    message: str = ""

    @property
    def hint(self) -> str:
        return HINTS.get(self.failure_class or "", "")


def classify(exit_code: int | None, lines: list[StatusLine], log_tail: str) -> tuple[str, str]:
    """(failure class, message) for a failed process.

    Exit 137 (SIGKILL, usually the kernel's OOM killer) and 127 (command not found) are decided
    by the code alone; otherwise the FAILURE messages are matched first, then the log tail.
    """
    failure_messages = [line.message for line in lines if line.status == "FAILURE" and line.message]
    message = failure_messages[-1] if failure_messages else _last_line(log_tail)
    if exit_code in (137, -9):
        return "oom", message or "killed with SIGKILL (exit 137), most likely out of memory"
    if exit_code in (126, 127):
        return "infrastructure", message or f"command could not be executed (exit {exit_code})"
    for text in (*failure_messages, log_tail):
        for name, pattern in _PATTERNS:
            if pattern.search(text):
                return name, message
    return "error", message or f"exit code {exit_code}"


def _last_line(text: str) -> str:
    for line in reversed(text.strip().splitlines()):
        if line.strip():
            return line.strip()[:300]
    return ""


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def decide(
    exit_code: int | None,
    lines: list[StatusLine],
    results: list[EpochResult],
    log_tail: str,
    metric: str,
    budget: int,
    stopped: bool,
) -> Outcome:
    """The outcome of one trial segment.

    ``results``: the trial's validation results (epochs completed, KPIs), in order; ``lines``:
    its status lines (FAILURE messages, the KPIs it does write). ``stopped``: the engine itself
    stopped the process (scheduler decision, pause, cancel); such a process is never counted as
    failed.
    """
    if stopped:
        return Outcome("stopped")
    values = [(r.epochs, r.metric(metric)) for r in results if r.metric(metric) is not None]
    last_epochs, last_value = values[-1] if values else (None, None)
    if (exit_code == 0 or exit_code in TERMINATED) and not closed(lines) \
            and (last_epochs is None or last_epochs < budget):
        reached = f"after {last_epochs} of {budget} epochs" if last_epochs else "before an epoch"
        return Outcome("interrupted", None,
                       f"the trainer stopped {reached} without its closing status line "
                       f"(exit {exit_code}: stopped from outside)")
    if exit_code == 0:
        if values and not is_finite(last_value):
            return Outcome("failed", "diverged",
                           f"{metric} is {last_value} after {last_epochs} epoch(s)")
        if not values:
            return Outcome("failed", "metric", missing_metric_message(metric, lines))
        return Outcome("completed")
    failure_class, message = classify(exit_code, lines, log_tail)
    reached = last_epochs is not None and last_epochs >= budget and is_finite(last_value)
    if reached:
        return Outcome("recovered", failure_class, message)
    if values and not is_finite(last_value):
        failure_class = "diverged"
    return Outcome("failed", failure_class, message)


def closed(lines: list[StatusLine]) -> bool:
    """Whether the last trainer process wrote a closing line (TAO's "Train finished
    successfully.", or SUCCESS/FAILURE)."""
    last = runs(lines)[-1:] or [[]]
    return final_status(last[0]) is not None


def missing_metric_message(metric: str, lines: list[StatusLine]) -> str:
    """One line: the metric is not in status.json, and which KPIs the trainer does write."""
    keys = reported_kpis(lines)
    return (f"the trainer never reported '{metric}' in status.json (it writes: "
            f"{', '.join(keys) if keys else 'no KPIs'})")
