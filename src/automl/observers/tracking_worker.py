"""MLflow in its own process (``automl-mlflow``), fed through a pipe: out of the controller's way.

Why a process: in the driver, MLflow's import (~1.5 s) and every ``log_batch`` (SQLAlchemy,
sqlite) ran in a thread that competed with Ray Tune's controller for the GIL (most of the 2.2×
wall against plain Ray Tune at 1 slot, ``benchmarks/README.md``). Here the driver only pickles
each observer event onto an in-memory queue (microseconds); a feeder thread writes the frames to
the worker's stdin; the worker (``python -m automl.observers.tracking_worker``) runs the unchanged
:class:`automl.observers.tracking.MlflowTracker` on them in order. It starts before Ray does and opens the
store (MLflow import, sqlite set-up) while ``ray.init`` runs.

The interface is generic: an event is ``(observer method name, args)``; a Tune result travels as
its numeric entries (whatever metrics a trainer reports: ``val_*``, ``train_*``, ...).

No result is lost:

* :meth:`TrackingProcess.close` waits until the worker has written everything queued (the CLI
  closes it when the run ends: completed, canceled/paused or failed);
* the worker runs in its own session, so Ctrl-C reaches the driver only (which then closes it);
  when the driver dies (SIGKILL), the worker reads what reached the pipe, ends the open runs
  as KILLED and exits on end-of-file;
* what was still in the driver's memory at a crash is *replayed* by ``automl resume``: it sends
  every finished record of the journal (:meth:`TrackingProcess.replay`), and the worker writes
  the trial's end (with every result it lacks) for each one whose MLflow run did not end with
  that status (:meth:`automl.observers.tracking.MlflowTracker.replay`).

A frame is a 4-byte big-endian length and a pickle. Only the driver writes to the pipe and
only its own worker reads it (pickle is safe between the two ends of one pipe; nothing else
can write to it).
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO

from automl.contract import KPI_NAMES_KEY

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
_EVENTS = ("experiment_started", "trial_started", "trial_result", "trial_ended",
           "experiment_ended", "replay", "trials_set_aside")


class TrackingProcess:
    """Experiment observer (see :mod:`automl.run.recorder`) whose MLflow work runs in a child process.

    Same constructor as :class:`automl.observers.tracking.MlflowTracker`; starting it spawns the worker,
    which opens the store at once.
    """

    def __init__(self, tracking_uri: str, experiment_name: str, workspace: Path,
                 template_dir: Path | None = None) -> None:
        config = {"tracking_uri": tracking_uri, "experiment_name": experiment_name,
                  "workspace": str(workspace),
                  "template_dir": str(template_dir) if template_dir is not None else None}
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "automl.observers.tracking_worker"], stdin=subprocess.PIPE, env=env,
            start_new_session=True)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._feeder = threading.Thread(target=self._feed, name="automl-mlflow-feeder",
                                        daemon=True)
        self._feeder.start()
        self._send(("__init__", config))
        atexit.register(self.close)

    # -- observer API (driver thread: enqueue only) ----------------------------------------
    def experiment_started(self, experiment: dict[str, Any]) -> None:
        self._send(("experiment_started", experiment))

    def trial_started(self, record: Any) -> None:
        self._send(("trial_started", record))

    def trial_result(self, record: Any, result: dict[str, Any]) -> None:
        # The trainer's KPIs (named by the trial) and the epoch: Tune's bookkeeping stays here.
        names = [k for k in result.get(KPI_NAMES_KEY) or () if isinstance(k, str)]
        numbers = {k: result[k] for k in (*names, "epoch") if k in result
                   and isinstance(result[k], (int, float)) and not isinstance(result[k], bool)}
        self._send(("trial_result", record, {**numbers, KPI_NAMES_KEY: names}))

    def trial_ended(self, record: Any) -> None:
        self._send(("trial_ended", record))

    def experiment_ended(self, best_rec: dict[str, Any]) -> None:
        self._send(("experiment_ended", best_rec))

    def replay(self, records: list[Any]) -> None:
        """Resume: make sure MLflow has the end (and every result) of these finished trials."""
        self._send(("replay", list(records)))

    def trials_set_aside(self, rec_ids: list[str]) -> None:
        """Resume: these trials never reached Tune's saved state; their runs say so."""
        self._send(("trials_set_aside", list(rec_ids)))

    def close(self, timeout: float = 120.0) -> None:
        """Write everything queued, end runs still open (KILLED), stop the worker. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._queue.put(None)  # the feeder closes the pipe after the last frame
        self._feeder.join(timeout)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("MLflow tracking: the logging process did not finish in %.0f s; "
                        "stopping it (`automl resume` or a rerun logs what is missing)", timeout)
            self._proc.kill()
            self._proc.wait()

    # -- plumbing --------------------------------------------------------------------------
    def _send(self, event: tuple[Any, ...]) -> None:
        if not self._closed:
            self._queue.put(event)

    def _feed(self) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            while (event := self._queue.get()) is not None:
                try:
                    data = pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL)
                except Exception as exc:  # noqa: BLE001 - an unpicklable value: skip the event
                    log.warning("MLflow tracking: event %s not sent (%s)", event[0], exc)
                    continue
                stdin.write(_HEADER.pack(len(data)) + data)
                stdin.flush()
        except (BrokenPipeError, OSError):
            self._closed = True  # nothing reads the queue any more: stop filling it
            log.warning("MLflow tracking: the logging process ended early; tracking is off "
                        "(`automl resume` logs the trial ends it missed)")
        finally:
            try:
                stdin.close()
            except OSError:
                pass


def _frames(stream: BinaryIO):
    while True:
        header = stream.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return  # end of file: the driver closed the pipe or died
        (size,) = _HEADER.unpack(header)
        data = stream.read(size)
        if len(data) < size:
            return  # the driver died in the middle of a frame
        yield pickle.loads(data)


def _exclusive(workspace: Path) -> Any:
    """One logging process per workspace at a time, in order: the worker of a killed controller
    may still be writing what reached its pipe when ``automl resume`` starts the next one, which
    must see those writes before it decides what to replay. Returns the open, locked file; the
    kernel releases the lock however the process ends."""
    import fcntl

    workspace.mkdir(parents=True, exist_ok=True)
    handle = open(workspace / ".tracking.lock", "a")  # noqa: SIM115 - held while logging
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def main() -> int:
    """The worker: ``python -m automl.observers.tracking_worker`` (frames on stdin)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when tracking ends
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from automl.observers.tracking import MlflowTracker

    frames = _frames(sys.stdin.buffer)
    first = next(frames, None)
    if first is None or first[0] != "__init__":
        return 0
    config = first[1]
    workspace = Path(config["workspace"])
    with _exclusive(workspace):
        tracker = MlflowTracker(config["tracking_uri"], config["experiment_name"], workspace,
                                Path(config["template_dir"]) if config["template_dir"] else None)
        tracker.open_store()  # MLflow's import and the store, while the driver starts Ray
        for event in frames:
            if event[0] in _EVENTS:
                getattr(tracker, event[0])(*event[1:])
        tracker.close(timeout=3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
