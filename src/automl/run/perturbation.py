"""Make a PBT/PB2 exploit's perturbed learning rate and weight decay reach the trainer.

A child that exploited a parent resumes from a copy of the parent's checkpoint
(``train.resume_training_checkpoint_path``), and TAO's Lightning trainers (and the bundled one)
restore the optimizer's param groups and the LR scheduler from it: the perturbed
``train.optim.lr`` in the child's spec would be ignored, and PBT on TAO would be random restarts
with extra copying. Two ways out were possible:

1. rewrite the copy's optimizer and scheduler state with the perturbed values, then resume as
   now; or
2. start the child from the parent's weights as pretrained weights, with the epoch count carried
   over.

This module does (1). It is what PBT means: the child continues the parent's *training*, not
only its weights - Adam's moments, the schedule's position (warm-up done, decay so far), the
step counter - with the new hyperparameters. (2) would restart the optimizer cold and the LR
schedule from warm-up at every exploit, and TAO would number the child's epochs and checkpoint
files from 0 again, so the engine's epoch accounting (results, rung and perturbation boundaries,
``model_epoch_EEE`` names, retention) would need an offset per trial; and the key that takes
pretrained weights differs per network. (1) touches one file the child owns, before its
trainer starts, and nothing else changes.

The rewrite is :mod:`checkpoint_hparams` (torch only; the engine never imports torch), run where
the trainer runs: through the trial's own launcher, as a local process with this Python, or as a
short container of the trial's image (``python3 -m checkpoint_hparams``, with that package's
folder mounted read-only and on ``PYTHONPATH``). Its report goes to the trial's ``train.log`` and
into the exploit's ``lineage.json`` entry (``optimizer``).

Which searched parameters are optimizer state, by the last part of their spec key:
:data:`LR_NAMES` and names ending in ``_lr`` (``text_lr``, ``lr_backbone``; not ``min_lr``, a
schedule floor the trainer reads from its spec) are learning rates, :data:`WEIGHT_DECAY_NAMES`
weight decay. Any other perturbed parameter (batch size, augmentation, loss weights) the trainer
reads from the spec it is started with, so it already took effect.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import checkpoint_hparams
from automl.contract import INHERITED, LINEAGE
from automl.results.records import atomic_write_json
from launchers.base import Launcher, LaunchError, LaunchSpec

PRIMARY_LR_NAMES = ("lr", "learning_rate", "base_lr")  # the base learning rate of a network
LR_NAMES = (*PRIMARY_LR_NAMES, "lr_backbone")
NOT_LR_NAMES = ("min_lr",)
WEIGHT_DECAY_NAMES = ("weight_decay", "wd")
# The key, in the pointer PBT hands a child, of the hyperparameters that produced the checkpoint.
PARAMS_KEY = "params"
REPORT = ".checkpoint_hparams.json"  # in the trial's inherited/ folder (a dot name: kept there)
STEP_TIMEOUT_S = 600.0


class StepFailed(RuntimeError):
    """The rewrite could not run or failed; the child would train with its parent's values."""


def _last(name: str) -> str:
    """The last part of a dotted spec key (``train.optim.lr`` -> ``lr``), lower case."""
    return [part for part in re.split(r"[.\[\]]", name) if part][-1].lower()


def kind(name: str) -> str | None:
    """``"lr"``, ``"weight_decay"`` or None for a searched parameter's dotted spec key."""
    last = _last(name)
    if last in NOT_LR_NAMES:
        return None
    if last in LR_NAMES or last.endswith("_lr"):
        return "lr"
    if last in WEIGHT_DECAY_NAMES or last.endswith("_weight_decay"):
        return "weight_decay"
    return None


def changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[tuple[str, float, float]]]:
    """The learning rates and weight decays both configurations give, as (name, old, new);
    the primary learning rate (``...lr``, ``learning_rate``, ``base_lr``) first."""
    out: dict[str, list[tuple[str, float, float]]] = {"lr": [], "weight_decay": []}
    for name in sorted(new, key=lambda n: (_last(n) not in PRIMARY_LR_NAMES, n)):
        group = kind(name)
        value, before = new.get(name), old.get(name)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, before))
        if group and numeric:
            out[group].append((name, float(before), float(value)))
    return out


def step_argv(launcher_on_host: bool, checkpoint: Path, found: dict[str, list[tuple[str, float, float]]],
              report: Path) -> tuple[str, ...]:
    """The rewrite's command: this Python on the host, ``python3`` in an image."""
    argv = [sys.executable if launcher_on_host else "python3", "-m", "checkpoint_hparams",
            str(checkpoint), "--report", str(report)]
    for flag, group in (("--lr", "lr"), ("--weight-decay", "weight_decay")):
        for name, before, value in found[group]:
            argv += [flag, name, repr(before), repr(value)]
    return tuple(argv)


def reach_trainer(launcher: Launcher, env: dict[str, str], experiment: str, folder: Path,
                  rec_id: str, pointer: dict[str, Any],
                  params: dict[str, Any]) -> dict[str, Any] | None:
    """Rewrite the inherited checkpoint ``pointer`` names with ``params``' learning rates and
    weight decay; the step's report, or None when nothing differs from the parent's values.
    It runs through the trial's ``launcher`` with the trial's ``env``, labelled with the
    ``experiment`` (the workspace name) and ``rec_id`` like the trial's own process.

    ``pointer[PARAMS_KEY]`` holds the parent's hyperparameters (set by PBT at exploit time); a
    pointer without them (written by an older version) is resumed as it is, with a note in
    ``train.log``. Raises :class:`StepFailed`.
    """
    log_path = folder / "train.log"
    parent = pointer.get(PARAMS_KEY)
    if not isinstance(parent, dict):
        with log_path.open("a", encoding="utf-8") as log:
            log.write("[automl] PBT: the inherited checkpoint does not say which hyperparameters "
                      "produced it; its optimizer state is resumed unchanged\n")
        return None
    found = changes(parent, params)
    if not any(before != value for group in found.values() for _, before, value in group):
        return None
    checkpoint = Path(pointer["path"])
    report_path = folder / INHERITED / REPORT
    report_path.unlink(missing_ok=True)
    package = Path(checkpoint_hparams.__file__).resolve().parent
    job = LaunchSpec(
        argv=step_argv(launcher.runs_on_host, checkpoint, found, report_path), cwd=folder,
        log_path=log_path,
        env={**env, **({} if launcher.runs_on_host else {"PYTHONPATH": str(package.parent)})},
        name=f"{experiment}-{rec_id}-hparams",
        labels={"automl.experiment": experiment, "automl.trial": rec_id},
        read_paths=() if launcher.runs_on_host else (package,), write_paths=(folder,))
    try:
        handle = launcher.start(job)
    except LaunchError as exc:
        raise StepFailed(f"cannot start the step that writes the perturbed learning rate into "
                         f"the inherited checkpoint: {exc}") from exc
    code = handle.wait(STEP_TIMEOUT_S)
    if code is None:
        handle.stop()
        raise StepFailed(f"the step that writes the perturbed learning rate into {checkpoint.name} "
                         f"did not end within {STEP_TIMEOUT_S:g}s")
    if code == 3:  # not a torch checkpoint: nothing this step can rewrite
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"[automl] PBT: {checkpoint.name} is not a torch checkpoint; resumed "
                      f"unchanged (the trainer must read lr/weight decay from its spec)\n")
        return None
    if code != 0 or not report_path.exists():
        raise StepFailed(f"the step that writes the perturbed learning rate into "
                         f"{checkpoint.name} failed (exit {code}); see {log_path}")
    report = json.loads(report_path.read_text())
    _record(folder, report)
    return report


def _record(folder: Path, report: dict[str, Any]) -> None:
    """Add the step's report to the exploit's lineage entry (once: a restart's no-op run of the
    same rewrite keeps the first report)."""
    path = folder / LINEAGE
    try:
        lineage = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if lineage and "optimizer" not in lineage[-1]:
        lineage[-1]["optimizer"] = report
        atomic_write_json(path, lineage)
