"""TAO's status.json dialect for the benchmark trainers (standard library only, on purpose).

Shared by ``zero_trainer.py`` and ``mf_trainer.py`` (both run as scripts from this folder, so
``import tao_status`` finds this file). :class:`StatusLogger` writes exactly what TAO 6.25's
SegFormer ``train`` writes (``tests/fixtures/tao_golden/``, whose README names TAO's source):
``json.dumps(obj)`` per line, appended; the logger's ``kpi`` persists until replaced and goes on
every line once set. One process writes, in order:

* :meth:`~StatusLogger.started`: STARTED ``"Starting <Net> train."``; then, only when resuming,
  :meth:`~StatusLogger.resuming`: RUNNING ``"Resuming training from checkpoint: <path>"``; then
  :meth:`~StatusLogger.loop_started`: STARTED ``"Starting Training Loop."``;
* per epoch (0-based ``e``): :meth:`~StatusLogger.eval_metrics` (only when validating): RUNNING
  ``"Eval metrics generated."`` with the validation ``kpi``, no ``epoch`` key;
  :meth:`~StatusLogger.epoch_end`: the epoch line, keys ``epoch, step, max_epoch, max_step,
  time_per_epoch, time_per_step, eta`` first, then ``date, time, status, verbosity, message``
  (``"Training loop in progress"``) and the current ``kpi``; :meth:`~StatusLogger.train_metrics`:
  RUNNING ``"Train metrics generated."`` with ``kpi`` = ``{"train_loss": x}`` (replaces it);
  then the checkpoint when :func:`due` (only then: TAO does not force one at the last epoch);
* :meth:`~StatusLogger.finished`: RUNNING ``"Training loop complete."`` and RUNNING ``"Train
  finished successfully."`` (no SUCCESS line: only TAO's API container handler writes one).

The benchmarks' own timing fields (``written_at``, ``pid``, ``ppid``, ``t_exec``...) are NOT put on
status lines: with ``timing`` set, every status line gets an entry in the sidecar
``timing.jsonl`` next to status.json, ``{"n": its 0-based line number in status.json, "written_at":
time.time() just before the line is written, **timing}``, written (and flushed) before the status
line. :func:`read_timing` and :func:`timed_results` read them back (the latter through the engine's
own reader, ``automl.tao``).

Checkpoints: :func:`checkpoint_name` (``model_epoch_{E:03d}_step_{S:05d}.pth``, E the 0-based
epoch just completed) and :func:`write_atomic` (temp file + ``os.replace``, so a reader never sees
a half-written checkpoint). :func:`due` is Lightning's ``(epoch + 1) % interval == 0``.
"""

import datetime
import json
import os
import time
from pathlib import Path

TIMING_FILE = "timing.jsonl"
EPOCH_MESSAGE = "Training loop in progress"


def checkpoint_name(epoch: int, step: int) -> str:
    """``model_epoch_{epoch:03d}_step_{step:05d}.pth``; ``epoch`` is 0-based."""
    return f"model_epoch_{epoch:03d}_step_{step:05d}.pth"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a hidden temp file in the same folder + os.replace."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
    os.replace(tmp, path)


def due(epoch: int, interval) -> bool:
    """Lightning's every-n-epochs test for the 0-based ``epoch`` (interval < 1 counts as 1)."""
    return (epoch + 1) % max(1, int(interval or 1)) == 0


def duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=max(0.0, float(seconds))))


class StatusLogger:
    """Appends TAO status lines to ``path`` (see the module docstring); ``timing``: extra fields
    of the sidecar entries (None: no sidecar)."""

    def __init__(self, path: Path, timing: dict | None = None) -> None:
        self.fh = open(path, "a", encoding="utf-8")
        self.kpi: dict = {}
        self.timing = None
        if timing is not None:
            self.timing = open(path.parent / TIMING_FILE, "a", encoding="utf-8")
            self.timing_extra = dict(timing)
            with open(path, "rb") as existing:
                self.n = existing.read().count(b"\n")  # lines other processes wrote before

    def write(self, status: str, message: str, data: dict | None = None) -> dict:
        now = time.time()
        local = time.localtime(now)
        obj = dict(data or {})  # the epoch line's data keys come first
        obj.update(date=f"{local.tm_mon}/{local.tm_mday}/{local.tm_year}",
                   time=f"{local.tm_hour}:{local.tm_min}:{local.tm_sec}", status=status,
                   verbosity="INFO", message=message)
        if self.kpi:
            obj["kpi"] = dict(self.kpi)
        if self.timing is not None:
            self.timing.write(json.dumps({"n": self.n, "written_at": now, **self.timing_extra})
                              + "\n")
            self.timing.flush()
            self.n += 1
        self.fh.write(json.dumps(obj) + "\n")
        self.fh.flush()
        return obj

    def started(self, net: str) -> dict:
        return self.write("STARTED", f"Starting {net} train.")

    def resuming(self, checkpoint: str) -> dict:
        return self.write("RUNNING", f"Resuming training from checkpoint: {checkpoint}")

    def loop_started(self) -> dict:
        return self.write("STARTED", "Starting Training Loop.")

    def eval_metrics(self, kpi: dict) -> dict:
        """The validation line: the new kpi, no ``epoch`` key."""
        self.kpi = dict(kpi)
        return self.write("RUNNING", "Eval metrics generated.")

    def epoch_end(self, epoch: int, step: int, num_epochs: int, steps_per_epoch: int,
                  seconds: float) -> dict:
        """The epoch line of the 0-based ``epoch`` (with the current kpi)."""
        return self.write("RUNNING", EPOCH_MESSAGE, {
            "epoch": epoch, "step": step, "max_epoch": num_epochs - 1,
            "max_step": num_epochs * steps_per_epoch, "time_per_epoch": duration(seconds),
            "time_per_step": duration(seconds / max(1, steps_per_epoch)),
            "eta": duration((num_epochs - 1 - epoch) * seconds)})

    def train_metrics(self, train_loss: float) -> dict:
        """The train-epoch-end KPI line: ``{"train_loss": x}`` replaces the kpi."""
        self.kpi = {"train_loss": float(train_loss)}
        return self.write("RUNNING", "Train metrics generated.")

    def finished(self) -> None:
        self.write("RUNNING", "Training loop complete.")
        self.write("RUNNING", "Train finished successfully.")

    def close(self) -> None:
        self.fh.close()
        if self.timing is not None:
            self.timing.close()


# --- reading back (benchmark drivers; these import the engine's reader, not the trainers) ---

def read_timing(train_dir: Path) -> list[dict]:
    """The sidecar entries of ``train_dir`` in file order ([] when absent)."""
    out = []
    try:
        text = (Path(train_dir) / TIMING_FILE).read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def timed_results(train_dir: Path) -> list[tuple[float | None, object]]:
    """``(written_at, EpochResult)`` for every result of ``train_dir/status.json`` as the engine
    reads it (``automl.tao``: epochs completed, KPIs), ``written_at`` being the sidecar time of the
    status line that produced the result (the epoch line closing its epoch; None if unknown)."""
    from automl.tao.lines import parse_text
    from automl.tao.progress import ResultReader

    when = {entry.get("n"): entry.get("written_at") for entry in read_timing(train_dir)}
    try:
        text = (Path(train_dir) / "status.json").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    reader, out = ResultReader(), []
    for n, raw in enumerate(text.split("\n")):
        for line in parse_text(raw):
            out += [(when.get(n), result) for result in reader.feed(line)]
    return out + [(None, result) for result in reader.finish()]
