"""Write perturbed learning rates and weight decay into a torch checkpoint's optimizer state.

Why this exists: a PBT (or PB2) child resumes from a copy of its parent's checkpoint, and a
trainer that resumes - TAO's Lightning trainers, the bundled SegFormer trainer - restores the
optimizer's param groups (lr, weight decay) and the LR scheduler's state from that file. A
perturbed ``train.optim.lr`` written to the child's spec therefore never takes effect: the child
trains on with its parent's learning rate. This step rewrites the copy, so that the restored
state *is* the perturbed one, before the trainer starts. It keeps everything else the parent
had: the model, the optimizer's moments (Adam's running averages), the schedule's position
(steps taken, warm-up done), the epoch and step counters and the RNG states. That is PBT as
Jaderberg et al. describe it (weights and training state copied, hyperparameters changed), and
it keeps TAO's epoch numbering and checkpoint names, which the engine reads.

It runs where the trainer runs (a local process, or a short container of the trial's image
started by the same launcher: ``python3 -m checkpoint_hparams``), because the engine itself
never imports torch. It imports nothing but torch and the standard library, so that this package
folder alone, mounted into a TAO container, is enough.

What it changes, in every optimizer state (a dict with ``param_groups``) and every LR-scheduler
state (a dict with ``base_lrs``) found in the checkpoint, whatever its layout (Lightning's
``optimizer_states`` / ``lr_schedulers`` lists, the bundled trainer's ``optimizer`` /
``scheduler.state``, nested chained schedulers):

* **Learning rates.** Each param group's *base* learning rate (the scheduler's ``base_lrs``
  entry, else the group's ``initial_lr``, else its ``lr``) is matched to the searched learning-
  rate parameters' old values: a group whose base equals one of them (DINO's ``lr`` and
  ``lr_backbone`` groups) is scaled by that parameter's new/old ratio; any other group (a
  multiple of the base learning rate, as a decoder head at 10x) by the first (primary) one's.
  Scaled together: the group's ``lr`` (the schedule's current value), ``initial_lr``,
  ``max_lr``/``min_lr`` (OneCycleLR), and the scheduler's ``base_lrs`` and ``_last_lr``. So the
  schedule continues from where the parent was, with the new base: a linear decay at 40 % stays
  at 40 % of the new learning rate.
* **Weight decay.** Each group's non-zero ``weight_decay`` is scaled by the matching
  parameter's new/old ratio (the primary one's when none matches); groups without decay (biases
  and norms, ``weight_decay`` 0) keep none.

The old values come from the hyperparameters that produced the checkpoint (the parent's,
handed over by the engine). The step records what it wrote in the checkpoint under
:data:`MARKER`; run again on the same copy (a trial restarted before it reported), it takes its
old values from there, so a second run changes nothing. Lightning and the bundled trainer ignore
an unknown top-level key.

The checkpoint is read with ``torch.load(weights_only=True)`` and, when that refuses the file
(Lightning checkpoints keep the experiment config as objects), with ``weights_only=False``: the
file is a copy of one this experiment's own trainer wrote. It is written back atomically
(temporary file, fsync, rename).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = "automl_optimizer_hparams"
# Learning-rate-valued keys of a param group (torch's schedulers add initial_lr; OneCycleLR max/min).
GROUP_LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")
_MAX_DEPTH = 4  # optimizer/scheduler states sit at most this deep in any known layout


@dataclass(frozen=True)
class Change:
    """One searched parameter: its name (a spec key), the value the state holds, the new value."""

    name: str
    old: float
    new: float

    @property
    def ratio(self) -> float:
        return self.new / self.old


@dataclass
class Summary:
    """What :func:`apply` did (written as the step's report)."""

    lr: list[Change] = field(default_factory=list)
    weight_decay: list[Change] = field(default_factory=list)
    optimizer_groups: int = 0
    schedulers: int = 0
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"lr": {c.name: [c.old, c.new] for c in self.lr},
                "weight_decay": {c.name: [c.old, c.new] for c in self.weight_decay},
                "optimizer_groups": self.optimizer_groups, "schedulers": self.schedulers,
                "note": self.note}


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=0.0)


def _factor(value: float, changes: list[Change]) -> float:
    """The ratio for a group whose base is ``value``: the matching parameter's, else the primary's."""
    for change in changes:
        if _close(value, change.old):
            return change.ratio
    return changes[0].ratio


def _scaled(value: Any, factor: float) -> Any:
    """``value * factor`` for a number or a 0-d tensor (torch may keep lr as a tensor)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value) * factor
    if hasattr(value, "mul") and getattr(value, "ndim", 1) == 0:
        return value.mul(factor)
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return float(value.item())
    return None


def _states(node: Any, depth: int = 0):
    """(kind, dict) for every optimizer ("optimizer") and scheduler ("scheduler") state in ``node``."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, dict):
        groups = node.get("param_groups")
        if isinstance(groups, list) and groups and all(isinstance(g, dict) and "lr" in g for g in groups):
            yield "optimizer", node
            return
        if isinstance(node.get("base_lrs"), list):
            yield "scheduler", node
        for key, value in node.items():
            if key != MARKER and isinstance(value, (dict, list)):
                yield from _states(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, (dict, list)):
                yield from _states(value, depth + 1)


def apply(ckpt: dict[str, Any], lr: list[Change], weight_decay: list[Change]) -> Summary:
    """Rewrite ``ckpt``'s optimizer and scheduler states in place (see the module docstring).

    ``lr`` and ``weight_decay`` give the searched parameters with the values that produced the
    checkpoint as ``old`` (the primary learning rate first); :data:`MARKER` overrides those.
    """
    written = ckpt.get(MARKER) if isinstance(ckpt.get(MARKER), dict) else {}
    lr = [Change(c.name, float(written.get("lr", {}).get(c.name, c.old)), c.new) for c in lr]
    weight_decay = [Change(c.name, float(written.get("weight_decay", {}).get(c.name, c.old)), c.new)
                    for c in weight_decay]
    summary = Summary(lr=[c for c in lr if c.old > 0], weight_decay=[c for c in weight_decay if c.old > 0])
    skipped = [c.name for c in (*lr, *weight_decay) if c.old <= 0]
    if skipped:
        summary.note = f"old value 0 (nothing to scale): {', '.join(skipped)} left as restored"
    states = list(_states(ckpt))
    optimizers = [s for kind, s in states if kind == "optimizer"]
    schedulers = [s for kind, s in states if kind == "scheduler"]
    if not optimizers:
        summary.note = "no optimizer state in the checkpoint: the trainer takes these from its spec"
        return summary
    for scheduler in schedulers:
        bases = [_number(b) for b in scheduler["base_lrs"]]
        if summary.lr:
            factors = [_factor(b, summary.lr) if b is not None else 1.0 for b in bases]
            scheduler["base_lrs"] = [_scaled(b, f) for b, f in zip(scheduler["base_lrs"], factors)]
            if isinstance(scheduler.get("_last_lr"), list) and len(scheduler["_last_lr"]) == len(factors):
                scheduler["_last_lr"] = [_scaled(v, f) for v, f in zip(scheduler["_last_lr"], factors)]
        summary.schedulers += 1
    for optimizer in optimizers:
        for group in optimizer["param_groups"]:
            summary.optimizer_groups += 1
            base = _number(group.get("initial_lr", group["lr"]))
            if summary.lr and base is not None:
                factor = _factor(base, summary.lr)
                for key in GROUP_LR_KEYS:
                    if key in group:
                        group[key] = _scaled(group[key], factor)
            decay = _number(group.get("weight_decay"))
            if summary.weight_decay and decay:
                group["weight_decay"] = _scaled(group["weight_decay"], _factor(decay, summary.weight_decay))
    ckpt[MARKER] = {"lr": {**written.get("lr", {}), **{c.name: c.new for c in lr}},
                    "weight_decay": {**written.get("weight_decay", {}),
                                     **{c.name: c.new for c in weight_decay}}}
    return summary


def load(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path`` (see the module docstring on ``weights_only``)."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        return torch.load(path, map_location="cpu", weights_only=False)


def save(ckpt: dict[str, Any], path: Path) -> None:
    """Write ``ckpt`` to ``path`` atomically (a reader never sees a partial file)."""
    import torch

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as handle:
        torch.save(ckpt, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
