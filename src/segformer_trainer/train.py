"""``segformer train``: the training loop, TAO's status.json and checkpoint contract.

Epoch numbering: in status.json lines and in checkpoint names, ``epoch`` is the **1-based count of
completed epochs** (``epoch: 1`` is reported after the first epoch; ``model_epoch_001_step_00012.pth``
holds the state after one epoch), and ``step`` is the number of optimizer steps done so far.

Per epoch, in this order: a RUNNING train line (``kpi: {train_loss}``); validation (every
``train.validation_interval`` epochs, and always after the last epoch); the checkpoint (every
``train.checkpoint_interval`` epochs, and always after the last epoch) plus a copy as
``segformer_model_latest.pth``; then the RUNNING validation line (``kpi: {val_loss, val_acc,
val_miou, val_mf1, val_mprecision, val_mrecall}``). So when a reader sees an epoch's validation
metrics, that epoch's checkpoint is already on disk. ``checkpoint_interval_unit: step`` saves a
checkpoint every ``checkpoint_interval`` optimizer steps instead (a mid-epoch checkpoint resumes
mid-epoch).

Learning-rate policy, a pure function of training progress ``p = (completed epochs + batches done
in the current epoch / batches per epoch)`` and of ``train.num_epochs`` **as set for the current
run**: ``linear``: ``lr * (1 - p / num_epochs)``; ``step``: ``lr``, times 0.1 from epoch
``ceil(num_epochs / 2)`` on, times 0.01 from epoch ``ceil(3 * num_epochs / 4)`` on (0-based epoch
index). Resuming with the same ``num_epochs`` reproduces the uninterrupted run exactly; resuming
with a larger one (an AutoML promotion from a 3-epoch to a 9-epoch budget) continues from the
checkpoint with the schedule stretched to the new horizon (the linear lr rises back to
``lr * (1 - 3/9)`` and decays to 0 at epoch 9). Hyperparameters of the resuming spec (lr,
momentum, weight decay, augmentation, freeze_backbone) take effect from the resumed epoch on;
the optimizer's moments are kept when the optimizer type is unchanged.

Resume (``train.resume_training_checkpoint_path``) restores model, optimizer, epoch, global step
and the torch/numpy/python RNG states; the data pipeline's randomness is derived from
``(seed, epoch, index)`` (see :mod:`segformer_trainer.data`), so training continues exactly as an
uninterrupted run would, up to ``train.num_epochs``.

A NaN/inf training loss stops the run with ``FAILURE diverged: loss is nan at epoch E``.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from .config import ExperimentConfig, action_results_dir, require
from .errors import DivergedError, SpecError
from .status import StatusLogger


def resolve_seed(seed: int) -> int:
    """``train.seed`` (< 0: a fresh random seed)."""
    if seed < 0:
        return int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
    return int(seed)


class LrPolicy:
    """Learning-rate factor as a function of training progress (see the module docstring)."""

    def __init__(self, policy: str, base_lr: float, num_epochs: int, steps_per_epoch: int) -> None:
        self.policy = policy
        self.base_lr = float(base_lr)
        self.num_epochs = int(num_epochs)
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.last_lr = self.base_lr

    def lr(self, epoch_index: int, batch_index: int) -> float:
        if self.policy == "linear":
            progress = epoch_index + batch_index / self.steps_per_epoch
            factor = max(0.0, 1.0 - progress / self.num_epochs)
        else:
            factor = 1.0
            if epoch_index >= math.ceil(self.num_epochs / 2):
                factor = 0.1
            if epoch_index >= math.ceil(3 * self.num_epochs / 4):
                factor = 0.01
        self.last_lr = self.base_lr * factor
        return self.last_lr

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "base_lr": self.base_lr, "num_epochs": self.num_epochs,
                "steps_per_epoch": self.steps_per_epoch, "last_lr": self.last_lr}


def check_intervals(cfg: ExperimentConfig) -> None:
    """TAO's assertions: intervals (in epochs) must not exceed num_epochs."""
    t = cfg.train
    if t.checkpoint_interval_unit == "epoch" and t.checkpoint_interval > t.num_epochs:
        raise SpecError(f"spec: train.checkpoint_interval ({t.checkpoint_interval}) must be <= "
                        f"train.num_epochs ({t.num_epochs})")
    if t.validation_interval > t.num_epochs:
        raise SpecError(f"spec: train.validation_interval ({t.validation_interval}) must be <= "
                        f"train.num_epochs ({t.num_epochs})")


def build_optimizer(model, cfg: ExperimentConfig):
    import torch

    o = cfg.train.optim
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if o.optim == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum)
    cls = torch.optim.AdamW if o.optim == "adamw" else torch.optim.Adam
    return cls(groups, lr=o.lr, betas=(o.momentum, 0.999))


def apply_hyperparameters(optimizer, cfg: ExperimentConfig) -> None:
    """Make the optimizer's groups follow the current spec (after loading a resumed state)."""
    o = cfg.train.optim
    for i, group in enumerate(optimizer.param_groups):
        group["weight_decay"] = o.weight_decay if i == 0 else 0.0
        if o.optim == "sgd":
            group["momentum"] = o.momentum
        else:
            group["betas"] = (o.momentum, group.get("betas", (o.momentum, 0.999))[1])


def _fmt(kpi: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in kpi.items())


def run_train(cfg: ExperimentConfig, status: StatusLogger, log=print) -> dict[str, Any]:
    """Train per the spec; returns the last validation metrics. Raises TrainerError subclasses."""
    check_intervals(cfg)
    seg = cfg.dataset.segment
    root = require(seg.root_dir, "dataset.segment.root_dir")
    out_dir = action_results_dir(cfg, "train")

    from .data import IGNORE_INDEX, SegDataset, batches

    status.write("STARTED", "Starting Segformer training")
    t_start = time.time()

    # The data is checked before torch is imported, so a data error fails fast.
    seed = resolve_seed(cfg.train.seed)
    train_ds = SegDataset(root, seg.train_split, seg, train=True, seed=seed)
    val_ds = SegDataset(root, seg.validation_split, seg, train=False, seed=seed)
    train_ds.validate_masks()
    val_ds.validate_masks()

    import torch.nn.functional as F

    from .model import (arch_summary, build_model, forward_logits, load_pretrained_backbone,
                        load_pretrained_model, set_backbone_frozen)
    from .runtime import (CHECKPOINT_FORMAT, LATEST_NAME, checkpoint_name, class_weights, evaluate_dataset,
                          iterate_batches, load_checkpoint, load_model_weights, pick_device, rng_state,
                          save_checkpoint, seed_everything, set_rng_state, setup_threads)

    threads = setup_threads()
    seed_everything(seed, cfg.train.cudnn.deterministic, cfg.train.cudnn.benchmark)
    device = pick_device(cfg.train.num_gpus, cfg.train.gpu_ids)
    if cfg.train.num_gpus > 1 or cfg.train.num_nodes > 1:
        log(f"train.num_gpus={cfg.train.num_gpus}, num_nodes={cfg.train.num_nodes}: this trainer runs on one "
            f"device ({device})")

    model = build_model(cfg)
    if cfg.model.backbone.pretrained_backbone_path:
        n = load_pretrained_backbone(model, cfg.model.backbone.pretrained_backbone_path)
        log(f"Loaded {n} encoder tensors from model.backbone.pretrained_backbone_path")
    if cfg.train.pretrained_model_path and not cfg.train.resume_training_checkpoint_path:
        n = load_pretrained_model(model, cfg.train.pretrained_model_path)
        log(f"Loaded {n} tensors from train.pretrained_model_path")
    set_backbone_frozen(model, cfg.model.backbone.freeze_backbone)
    model.to(device)
    optimizer = build_optimizer(model, cfg)

    bs = int(seg.batch_size)
    steps_per_epoch = math.ceil(len(train_ds) / bs)
    num_epochs = int(cfg.train.num_epochs)
    policy = LrPolicy(cfg.train.optim.policy, cfg.train.optim.lr, num_epochs, steps_per_epoch)
    weights = class_weights(cfg, device)
    if cfg.train.segment.weights and weights is None:
        log(f"train.segment.weights has {len(cfg.train.segment.weights)} entries, not num_classes="
            f"{seg.num_classes}: ignored (plain cross-entropy)")

    start_epoch, global_step, skip_batches = 0, 0, 0
    resume = cfg.train.resume_training_checkpoint_path
    if resume:
        ckpt = load_checkpoint(resume, "train.resume_training_checkpoint_path")
        load_model_weights(model, ckpt, cfg, "train.resume_training_checkpoint_path")
        if ckpt.get("optimizer") is not None and ckpt.get("optimizer_name") == cfg.train.optim.optim:
            optimizer.load_state_dict(ckpt["optimizer"])
        else:
            log("Resume: optimizer type changed or no optimizer state; starting a fresh optimizer state")
        apply_hyperparameters(optimizer, cfg)
        start_epoch = int(ckpt.get("epoch", 0))
        global_step = int(ckpt.get("global_step", 0))
        skip_batches = int(ckpt.get("batch_in_epoch", 0))
        if cfg.train.seed < 0 and "seed" in ckpt:  # a random seed: keep the resumed run's data stream
            seed = int(ckpt["seed"])
            train_ds.seed = val_ds.seed = seed
        if "rng" in ckpt:
            set_rng_state(ckpt["rng"])
        log(f"Resumed from {resume}: epoch {start_epoch}, step {global_step}")

    log(f"Training {cfg.model.backbone.type} on {device} ({threads} threads), {len(train_ds)} train / "
        f"{len(val_ds)} val images, {steps_per_epoch} steps per epoch, epochs {start_epoch + 1}..{num_epochs}")

    ckpt_unit = cfg.train.checkpoint_interval_unit
    ckpt_every = int(cfg.train.checkpoint_interval)
    val_every = int(cfg.train.validation_interval)
    last_val: dict[str, float] = {}
    epoch_times: list[float] = []

    def payload(completed: int, batch_in_epoch: int) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "optimizer_name": cfg.train.optim.optim,
            "scheduler": policy.state_dict(),
            "epoch": completed,
            "global_step": global_step,
            "batch_in_epoch": batch_in_epoch,
            "seed": seed,
            "rng": rng_state(),
            "arch": arch_summary(cfg),
            "config": cfg.redacted(),
        }

    def save(completed: int, batch_in_epoch: int = 0) -> Path:
        path = out_dir / checkpoint_name(completed, global_step)
        save_checkpoint(path, payload(completed, batch_in_epoch), out_dir / LATEST_NAME)
        return path

    for epoch_index in range(start_epoch, num_epochs):
        t0, c0 = time.time(), time.process_time()
        completed = epoch_index + 1
        model.train()
        order = train_ds.epoch_order(epoch_index, seg.shuffle)
        index_batches = batches(order, bs)
        first = skip_batches if epoch_index == start_epoch else 0
        loss_sum, loss_n = 0.0, 0
        for b, (x, y, _) in enumerate(iterate_batches(train_ds, index_batches[first:], epoch_index, seg.workers),
                                      start=first):
            lr = policy.lr(epoch_index, b)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = x.to(device), y.to(device)
            logits = forward_logits(model, x, y.shape[-2:], cfg.model.decode_head.align_corners)
            loss = F.cross_entropy(logits, y, weight=weights, ignore_index=IGNORE_INDEX)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise DivergedError(f"diverged: loss is {'nan' if math.isnan(value) else 'inf'} at epoch {completed}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            global_step += 1
            loss_sum += value
            loss_n += 1
            if ckpt_unit == "step" and global_step % ckpt_every == 0 and b + 1 < len(index_batches):
                save(epoch_index, b + 1)

        train_loss = loss_sum / max(1, loss_n)
        t_train = time.time() - t0
        remaining = num_epochs - completed
        status.write("RUNNING", "Train metrics generated.", kpi={"train_loss": train_loss}, epoch=completed,
                     max_epoch=num_epochs, time_per_epoch=t_train,
                     eta=(sum(epoch_times) / len(epoch_times) if epoch_times else t_train) * remaining)

        val = None
        if completed % val_every == 0 or completed == num_epochs:
            val = evaluate_dataset(model, val_ds, cfg, device, bs, seg.workers)
            last_val = val

        due = (completed % ckpt_every == 0) if ckpt_unit == "epoch" else (global_step % ckpt_every == 0)
        saved = save(completed) if (due or completed == num_epochs) else None

        dt = time.time() - t0
        epoch_times.append(dt)
        eta = sum(epoch_times) / len(epoch_times) * remaining
        msg = f"Epoch {completed}/{num_epochs} ({dt:.2f} s, cpu {time.process_time() - c0:.2f} s): " \
              f"train_loss={train_loss:.4f}"
        if val is not None:
            status.write("RUNNING", "Eval metrics generated.", kpi=val, epoch=completed, max_epoch=num_epochs,
                         time_per_epoch=dt, eta=eta)
            msg += " " + _fmt(val)
            if not math.isfinite(val["val_loss"]):
                raise DivergedError(f"diverged: loss is {'nan' if math.isnan(val['val_loss']) else 'inf'} "
                                    f"at epoch {completed}")
        if saved is not None:
            msg += f" -> {saved.name}"
        log(msg, flush=True)

    status.write("SUCCESS", "Training finished successfully")
    log(f"Training finished in {time.time() - t_start:.1f} s (process cpu {time.process_time():.1f} s); "
        f"results in {out_dir}")
    return last_val
