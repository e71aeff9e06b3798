"""What ``automl resume`` settles before it launches anything: leftover trainers, stale records.

**Leftover trainers.** When only the controller is killed (SIGKILL, OOM killer, a lost
terminal), Ray's workers die with it within seconds and a local trainer leader dies with its
worker (``PR_SET_PDEATHSIG``), but that signal is not inherited: the trainer's own children
(torchrun workers, data loaders) keep running and writing checkpoints and status lines into the
trial folder, and containers keep running until removed. A resumed trial would then share its
folder with a ghost. So, once the resumed controller holds the workspace lock (no live automl
process can own a trainer of this workspace any more), :func:`stop_leftover_trainers` stops
them:

* local trainers: each segment records ``trainer.json`` in its trial folder (pid, the kernel's
  start time of that pid, boot id, argv). The leader started its own session, so its pid is also
  the session id of everything it spawned. A process is stopped only if it is in that session
  *and* started no earlier than the leader (on the same boot), and, when a process with the
  leader's pid is alive, its start time and command line match the record. A pid reused by an
  unrelated process has another start time (and the kernel does not reuse a pid while it is
  the id of a session with a live member), so it is never signalled.
* containers: every container labelled with this experiment (``automl.experiment``) is removed.

**Stale records.** The journal has every event the controller saw, but a controller killed
between a trainer's status line and Tune's result event leaves records that lack the last
results (or whole trials). The trial folders are the durable truth (status lines are appended by the trainer itself):
:func:`refresh_records` merges every validation result found there into the records of trials
that had not ended, and adds records for trial folders the history never saw, before Tune
restores its trials.

**Trials Tune never saved.** A controller killed after it created a trial and before Tune saved
its experiment state leaves a trial folder (and perhaps a record) that the restored Tune and its
searcher know nothing about. For the algorithms whose searcher can propose a configuration again
(FIFO: Tune's saves are deferred there, so such trials are common) automl.resume.replay creates
them again with their ids. Otherwise the searcher, restored from before that suggestion, proposes
anew under a new trial id: :func:`set_aside` moves such folders to ``abandoned/`` and drops their
records, so the experiment keeps its number of recommendations and no record waits forever as
``pending``. Nothing reported by such a trial ever reached the searcher or the scheduler.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

from automl.contract import FINISHED
from automl.results.records import TrialRecord, atomic_write_json
from launchers.base import Launcher

TRAINER_FILE = "trainer.json"


# -- local processes ---------------------------------------------------------------------------
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_stat(pid: int) -> tuple[int, int] | None:
    """(session id, start time in clock ticks since boot) of ``pid`` from /proc, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    fields = raw[raw.rindex(")") + 2:].split()
    state, session, start = fields[0], int(fields[3]), int(fields[19])
    if state == "Z":
        return None  # a zombie holds no resources and writes nothing
    return session, start


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def record_trainer(folder: Path, pid: int, argv: list[str] | tuple[str, ...]) -> None:
    """Write ``trainer.json`` for a local trainer just started (see the module docstring)."""
    stat = process_stat(pid)
    atomic_write_json(folder / TRAINER_FILE, {
        "kind": "local", "pid": pid, "start_ticks": stat[1] if stat else None,
        "boot_id": _boot_id(), "host": socket.gethostname(), "argv": list(argv),
        "time": time.time()})


def _sessions() -> dict[int, list[tuple[int, int]]]:
    """Every live process on this machine by session id: {sid: [(pid, start ticks)]}."""
    out: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := process_stat(int(entry.name))) is not None:
            out.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    return out


def leftover_processes(folder: Path, sessions: dict[int, list[tuple[int, int]]] | None = None
                       ) -> list[int]:
    """Pids of the processes of the trainer recorded in ``folder`` that are still alive
    (``sessions``: :func:`_sessions`, read once for many folders)."""
    try:
        info = json.loads((folder / TRAINER_FILE).read_text())
        leader, started = int(info["pid"]), int(info["start_ticks"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if info.get("kind") != "local" or info.get("boot_id") != _boot_id() \
            or not Path("/proc").is_dir():
        return []  # another machine or an earlier boot: nothing of it can run here
    stat = process_stat(leader)
    if stat is not None and stat[1] != started:
        # The pid was reused. (While a member of the old session lives, the kernel keeps its
        # id, the leader's pid, from being reused: so no member of ours can be alive either.)
        return []
    args = list(info.get("argv", []))[1:]  # argv[0] may show as an interpreter + script path
    if stat is not None and args and _cmdline(leader)[-len(args):] != args:
        return []  # same start time but another command line: not ours after all
    members = (sessions if sessions is not None else _sessions()).get(leader, [])
    return sorted(pid for pid, start in members if start >= started)


def _stop_local(pids: list[int], grace_s: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(process_stat(p) is not None for p in pids):
            time.sleep(0.05)


def stop_leftover_trainers(workspace: Path, launcher: Launcher, grace_s: float = 5.0) -> str:
    """Stop the trainers the interrupted run left in ``workspace``; a one-line report ('' when
    there were none). Call it only while holding the workspace lock."""
    stopped_pids = 0
    trials = 0
    records = sorted((workspace / "trials").glob(f"*/{TRAINER_FILE}"))
    sessions = _sessions() if records and Path("/proc").is_dir() else {}
    for folder in (path.parent for path in records):
        pids = leftover_processes(folder, sessions)
        if pids:
            _stop_local(pids, grace_s)
            stopped_pids += len(pids)
            trials += 1
        (folder / TRAINER_FILE).unlink(missing_ok=True)
    containers = launcher.cleanup_all({"automl.experiment": workspace.name})
    parts = []
    if stopped_pids:
        parts.append(f"{stopped_pids} trainer process{'es' if stopped_pids != 1 else ''} of "
                     f"{trials} trial{'s' if trials != 1 else ''}")
    if containers:
        parts.append(f"{containers} trainer container{'s' if containers != 1 else ''}")
    return f"stopped {' and '.join(parts)} left by the interrupted run" if parts else ""


# -- records -----------------------------------------------------------------------------------
def _tune_index(workspace: Path, rec_id: str) -> int | None:
    """A trial's creation index from Tune's trial folder name (``run_trial_<id>_<index>_...``)."""
    for path in (workspace / "ray" / "tune").glob(f"*_{rec_id}_*"):
        tail = path.name.split(f"_{rec_id}_", 1)[1].split("_", 1)[0]
        if tail.isdigit():
            return int(tail)
    return None


def tune_trial_ids(workspace: Path) -> set[str] | None:
    """The trial ids in Tune's latest saved experiment state; None when there is none to read."""
    states = sorted((workspace / "ray" / "tune").glob("experiment_state-*.json"))
    if not states:
        return None
    try:
        data = json.loads(states[-1].read_text(encoding="utf-8"))
        return {json.loads(entry[0])["trial_id"] for entry in data["trial_data"]}
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None  # the torn-state check (engine) refuses such a workspace before this


def unsaved_trials(workspace: Path, records: dict[str, TrialRecord]) -> list[str]:
    """The trials (folders or records) Tune's saved state does not know, in creation order."""
    known = tune_trial_ids(workspace)
    trials = workspace / "trials"
    if known is None:
        return []
    folders = {p.name for p in trials.iterdir() if p.is_dir()} if trials.is_dir() else set()

    def order(rec_id: str) -> tuple[int, str]:
        record = records.get(rec_id)
        index = record.index if record is not None else _tune_index(workspace, rec_id)
        return (index if index is not None else 1 << 30), rec_id

    return sorted((folders | set(records)) - known, key=order)


def set_aside(workspace: Path, records: dict[str, TrialRecord], rec_ids: list[str]) -> str:
    """Move these trials' folders to ``abandoned/`` and drop their records (a record journaled
    as started may have no folder yet); returns a one-line note ("" for none)."""
    if not rec_ids:
        return ""
    for rec_id in rec_ids:
        folder = workspace / "trials" / rec_id
        if folder.is_dir():
            target = workspace / "abandoned" / rec_id
            target.parent.mkdir(exist_ok=True)
            os.replace(folder, target)
        records.pop(rec_id, None)
    count = len(rec_ids)
    return (f"{count} trial{'s' if count != 1 else ''} started just before the interruption "
            f"never reached Tune's saved state ({', '.join(rec_ids)}): the search proposes "
            f"again; folders kept in {workspace / 'abandoned'}")


def refresh_records(workspace: Path, records: dict[str, TrialRecord], metric: str,
                    names: list[str], budget: int) -> int:
    """Bring the records of trials that had not ended up to date with their folders; return how
    many records changed or were added."""
    from automl.resume.recover import rebuild_record

    changed = 0
    folders = sorted((workspace / "trials").glob("*")) if (workspace / "trials").is_dir() else []
    for folder in folders:
        if not folder.is_dir():
            continue
        old = records.get(folder.name)
        if old is not None and old.status in FINISHED:
            continue
        fresh = rebuild_record(folder, metric, names, budget, old)
        if old is None:
            fresh.index = _tune_index(workspace, folder.name) or len(records) + 1
            fresh.status = "pending"  # Tune's callbacks decide from here
            fresh.failure_class, fresh.failure_message, fresh.ended_at = None, "", None
            records[folder.name] = fresh
            changed += 1
            continue
        before = list(old.results)
        for result in fresh.results:
            old.add_result(int(result["epoch"]), {k: v for k, v in result.items() if k != "epoch"})
        old.budget = max(old.budget, fresh.budget)
        changed += old.results != before
    return changed
