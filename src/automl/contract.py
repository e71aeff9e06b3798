"""The engine's internal contract: names and files that the engine's parts agree on.

The trial (a Ray worker), the schedulers, PBT, the recorder and the resume code talk through
these keys and files; they live here, once, so that none of them has to import another to learn
a file name. TAO's own dialect (status.json lines, checkpoint names, 0-based epochs) is *not*
here: it is owned by :mod:`automl.tao`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# -- reserved keys of a trial's Tune config (not hyperparameters) ------------------------------
EPOCHS_KEY = "__epochs__"  # the epoch budget of the trial's next segment
PARENT_KEY = "__parent__"  # PBT: the trial whose checkpoint this one continues from
# Set by the bracket schedulers; reported with every result as "rung" / "bracket".
RUNG_KEY = "__rung__"
BRACKET_KEY = "__bracket__"
# Set by the bracket searcher: which model proposed the configuration (random, tpe, prior, de).
PROPOSER_KEY = "__proposer__"
# Set by PBT/PB2 (perturbation interval): each trainer run stops at the next multiple of it
# after the epoch it resumes from, i.e. at the next exploit/explore decision.
STOP_EVERY_KEY = "__stop_every__"
RESERVED_PREFIX = "__"

# -- keys of a trial's reported result (besides the KPIs themselves) ----------------------------
# The names of the trainer's KPIs in the result: TAO's names are free-form (``loss``, ``mIoU``,
# ``[bbox] val_mAP@50``), so they cannot be told from Tune's own result keys by their look.
KPI_NAMES_KEY = "__kpi_names__"


def hyperparameters(config: dict[str, Any]) -> dict[str, Any]:
    """A trial config without the engine's reserved keys."""
    return {k: v for k, v in config.items() if not k.startswith(RESERVED_PREFIX)}


# -- a trial's folder -----------------------------------------------------------------------------
RESULTS = "results"  # the trial's TAO results_dir (its spec's results_dir points here)


def results_dir(trial_folder: str | Path) -> Path:
    """``<trial folder>/results``: the results_dir every segment of the trial writes to."""
    return Path(trial_folder) / RESULTS


def train_dir(trial_folder: str | Path) -> Path:
    """``<trial folder>/results/train``: where TAO's train action writes its checkpoints and
    status.json (:func:`automl.tao.lines.status_path` also finds an older version's
    ``results/status.json``)."""
    return results_dir(trial_folder) / "train"


# -- files in a trial folder (besides TAO's results/) -----------------------------------------
POINTER = "automl_checkpoint.json"  # inside a Tune checkpoint: which TAO checkpoint file it means
INHERITED = "inherited"  # a trial's copies of the checkpoints it inherited (PBT exploit)
# [{parent, epoch, step, source, path, params, time, optimizer?}], one per exploit; optimizer: the
# report of the rewrite of the copy's lr/weight decay (automl.run.perturbation), when one ran.
LINEAGE = "lineage.json"
OUTCOME = "outcome.json"  # how the trial ended, written by the trial itself (survives a driver crash)

# -- trial statuses (TrialRecord.status) --------------------------------------------------------
# A trial that has ended, for good or bad (counted as done by progress displays).
FINISHED = ("completed", "recovered", "failed", "stopped")
# Trials that may still write or resume: never pruned, whatever the caller says.
UNFINISHED = frozenset({"pending", "running", "paused"})
# The statuses best_rec.json counts (a pending trial has not started: not counted).
COUNTED = ("completed", "recovered", "stopped", "failed", "running", "paused")
# Display order of statuses (reports).
STATUS_ORDER = ("completed", "recovered", "failed", "stopped", "running", "paused", "pending")
