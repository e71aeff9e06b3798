"""``segformer train``: the training loop, TAO's status.json and checkpoint contract.

This follows TAO's Lightning-based SegFormer container (``SegFormerPlModel`` + TAO's
``TAOStatusLogger`` callback + Lightning's ``ModelCheckpoint``); the exact message strings are in
:mod:`segformer_trainer.status`.

Epoch numbering: ``epoch`` is Lightning's **0-based** ``current_epoch`` everywhere (status.json,
checkpoint names, the checkpoint's ``epoch`` entry); ``step`` is the global step (optimizer steps
done so far). "Epochs completed" = ``epoch + 1``.

status.json (``results_dir/train/status.json``), for a run of ``N = train.num_epochs`` epochs,
line for line as TAO 6.25's SegFormer container (``tests/fixtures/tao_golden``):

1. ``STARTED`` "Starting SegFormer train."; when resuming, ``RUNNING`` "Resuming training from
   checkpoint: <file>"; ``STARTED`` "Starting Training Loop.";
2. per epoch ``e`` (0-based), after its training batches:

   - when validation runs this epoch (Lightning's ``check_val_every_n_epoch``: ``(e + 1) %
     train.validation_interval == 0``; the last epoch is *not* forced, as in Lightning): a
     ``RUNNING`` "Eval metrics generated." line with ``kpi {val_loss, val_acc, val_miou, val_mf1,
     val_mprecision, val_mrecall, latency_ms, params_m}`` and no epoch key;
   - always, at train-epoch end: ``RUNNING`` "Training loop in progress" with ``epoch`` = e,
     ``step``, ``max_epoch`` = N - 1, ``max_step`` = N * steps per epoch, ``time_per_epoch``,
     ``time_per_step`` (average over this process), ``eta`` = (N - 1 - e) * time_per_epoch, and
     the logger's current kpi repeated (none before the first one of this process);
   - ``RUNNING`` "Train metrics generated." with ``kpi {train_loss, lr}``, which replaces the kept
     kpi (so later lines repeat the training loss);
   - then the epoch's checkpoint, when one is due (below). So a checkpoint appears on disk
     *after* the status lines of its epoch, as in TAO (Lightning's ModelCheckpoint runs after
     the status callback and the LightningModule's hook).
3. ``RUNNING`` "Training loop complete." and ``RUNNING`` "Train finished successfully." (TAO's
   train script writes no SUCCESS line: exit 0 says it); on an error a ``FAILURE`` line with a
   message (``data: ...``, ``diverged: loss is nan at epoch E``, ...), written by the CLI,
   repeating the kept kpi.

Beyond TAO's KPIs (the only differences from TAO's lines), for searches that trade accuracy
against cost and for PBT: the validation kpi adds ``latency_ms`` and ``params_m`` of the model just
validated (:func:`segformer_trainer.runtime.model_cost`: the median forward latency of one image
at ``img_size`` on the training device, and the parameter count in millions), and the train-metrics
kpi adds ``lr``, the learning rate (first param group) of the epoch's last optimizer step: what
the optimizer actually used, after the LR schedule and after any state restored on resume, so a
test can see whether a perturbed learning rate reached a resumed run.

Checkpoints (``results_dir/train/``): ``model_epoch_{e:03d}_step_{global_step:05d}.pth`` after
epoch ``e`` when ``(e + 1) % train.checkpoint_interval == 0`` (Lightning's ModelCheckpoint with
``every_n_epochs``; the last epoch is *not* forced: a 3-epoch run with interval 2 writes only
``model_epoch_001_...``; the AutoML engine clamps the interval to the trial's budget), and a copy
as ``segformer_model_latest.pth`` whenever one is written (TAO's ``save_last='link'``). With
``train.checkpoint_interval_unit: step`` a checkpoint is written every ``checkpoint_interval``
optimizer steps instead, named with the epoch in progress (a mid-epoch checkpoint resumes
mid-epoch). Each file is written to a temporary name, fsync'ed and renamed, so a reader never
sees a partial file. A checkpoint holds the model, optimizer and LR-scheduler state dicts, the
0-based ``epoch``, ``global_step``, whether the epoch was finished, the RNG states and the
(redacted) config.

Learning-rate schedule: a real ``torch.optim.lr_scheduler`` object built once for the run's
horizon (``train.num_epochs`` of the *current* spec), as TAO's ``configure_optimizers``:

- ``linear``: ``LambdaLR`` stepped after every optimizer step; with ``max_steps = num_epochs *
  steps_per_epoch`` and ``warmup = max_steps // 100`` the factor at step ``k`` is
  ``1 - (1 - 1e-6) * (warmup - k) / warmup`` during warm-up, then ``1 - (k - warmup) /
  (max_steps - warmup + 1)``.
- ``step``: ``StepLR(step_size=max(1, num_epochs // 3), gamma=0.1)`` stepped after every epoch.

Resume (``train.resume_training_checkpoint_path=<file>``), as Lightning's ``fit(ckpt_path=...)``:
training continues *after* the checkpoint's epoch (the checkpoint of epoch 0 resumes at
``current_epoch`` 1; a mid-epoch checkpoint resumes inside its epoch) up to ``train.num_epochs``.
The model, the optimizer state (including its param groups: the checkpoint's lr, momentum/betas
and weight decay win over the resuming spec's, as in Lightning) and the LR-scheduler state
(``last_epoch``, ``base_lrs``; for ``step`` also its ``step_size``) are restored from the
checkpoint. The schedule's *function* is rebuilt from the resuming spec, so a resumed run with a
larger ``num_epochs`` (an AutoML promotion) continues along the linear schedule of the new,
longer horizon from the restored step count (its first step still uses the lr stored in the
optimizer state). With the same ``num_epochs`` the resumed run reproduces the uninterrupted run
exactly: the torch/numpy/python RNG states are restored too, and the data pipeline's
randomness is derived from ``(seed, epoch, index)`` (see :mod:`segformer_trainer.data`).
When the optimizer type changed, the optimizer state starts fresh (the scheduler state is still
restored). A resumed run appends its own lines to status.json.

A NaN/inf training or validation loss stops the run with ``FAILURE diverged: loss is nan at
epoch E`` (E 0-based).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from .config import ExperimentConfig, action_results_dir, require
from .errors import DivergedError, SpecError
from .status import (MSG_EVAL, MSG_LOOP_COMPLETE, MSG_LOOP_STARTED, MSG_RESUMING, MSG_TRAIN_LOOP,
                     MSG_TRAIN_METRICS, MSG_TRAIN_STARTED, MSG_TRAIN_SUCCESS, SUCCESS_STATUS,
                     StatusLogger, fmt_duration)

WARMUP_RATIO = 1e-6


def resolve_seed(seed: int) -> int:
    """``train.seed`` (< 0: a fresh random seed)."""
    if seed < 0:
        return int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
    return int(seed)


def linear_lambda(max_steps: int):
    """TAO's linear policy (step interval): warm-up over 1% of the steps, then linear decay."""
    max_steps = max(1, int(max_steps))
    warmup_steps = max_steps // 100

    def factor(step: int) -> float:
        if step < warmup_steps:
            return 1 - (1 - WARMUP_RATIO) * (warmup_steps - step) / warmup_steps
        return 1 - (step - warmup_steps) / float(max_steps - warmup_steps + 1)

    return factor


def build_scheduler(optimizer, policy: str, num_epochs: int, steps_per_epoch: int):
    """(scheduler, interval): the run's LR schedule for ``num_epochs`` epochs (see the module docstring)."""
    import torch

    if policy == "linear":
        sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=linear_lambda(num_epochs * steps_per_epoch))
        return sched, "step"
    sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, int(num_epochs) // 3), gamma=0.1)
    return sched, "epoch"


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


def _fmt(kpi: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in kpi.items())


def _diverged(value: float, epoch_index: int) -> DivergedError:
    return DivergedError(f"diverged: loss is {'nan' if math.isnan(value) else 'inf'} at epoch {epoch_index}")


def run_train(cfg: ExperimentConfig, status: StatusLogger, log=print) -> dict[str, Any]:
    """Train per the spec; returns the last validation metrics. Raises TrainerError subclasses."""
    check_intervals(cfg)
    seg = cfg.dataset.segment
    root = require(seg.root_dir, "dataset.segment.root_dir")
    out_dir = action_results_dir(cfg, "train")

    from .data import IGNORE_INDEX, SegDataset, batches

    status.write("STARTED", MSG_TRAIN_STARTED)
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
                          iterate_batches, load_checkpoint, load_model_weights, model_cost, pick_device,
                          rng_state, save_checkpoint, seed_everything, set_rng_state, setup_threads)

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
    max_step = num_epochs * steps_per_epoch
    policy = cfg.train.optim.policy
    scheduler, sched_interval = build_scheduler(optimizer, policy, num_epochs, steps_per_epoch)
    weights = class_weights(cfg, device)
    if cfg.train.segment.weights and weights is None:
        log(f"train.segment.weights has {len(cfg.train.segment.weights)} entries, not num_classes="
            f"{seg.num_classes}: ignored (plain cross-entropy)")

    start_epoch, global_step, skip_batches = 0, 0, 0
    resume = cfg.train.resume_training_checkpoint_path
    if resume:
        ckpt = load_checkpoint(resume, "train.resume_training_checkpoint_path")
        load_model_weights(model, ckpt, cfg, "train.resume_training_checkpoint_path")
        optimizer_restored = False
        if ckpt.get("optimizer") is not None and ckpt.get("optimizer_name") == cfg.train.optim.optim:
            optimizer.load_state_dict(ckpt["optimizer"])  # param groups too (lr, betas, weight decay)
            optimizer_restored = True
        else:
            log("Resume: optimizer type changed or no optimizer state; starting a fresh optimizer state")
        global_step = int(ckpt.get("global_step", 0))
        if ckpt.get("format") == CHECKPOINT_FORMAT:
            ckpt_epoch = int(ckpt.get("epoch", 0))
            if ckpt.get("end_of_epoch", True):
                start_epoch, skip_batches = ckpt_epoch + 1, 0
            else:
                start_epoch, skip_batches = ckpt_epoch, int(ckpt.get("batch_in_epoch", 0))
        else:  # segformer_trainer/1: "epoch" counted completed epochs
            start_epoch, skip_batches = int(ckpt.get("epoch", 0)), int(ckpt.get("batch_in_epoch", 0))
        sched_state = ckpt.get("scheduler")
        if isinstance(sched_state, dict) and sched_state.get("policy") == policy and "state" in sched_state:
            scheduler.load_state_dict(sched_state["state"])
        else:  # an older checkpoint or another policy: the schedule's position from the counters
            log("Resume: no LR-scheduler state for this policy in the checkpoint; positioning the schedule "
                "from the checkpoint's step/epoch")
            for _ in range(global_step if sched_interval == "step" else start_epoch):
                scheduler.step()
        if not optimizer_restored:
            for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
                group["lr"] = lr
        if cfg.train.seed < 0 and "seed" in ckpt:  # a random seed: keep the resumed run's data stream
            seed = int(ckpt["seed"])
            train_ds.seed = val_ds.seed = seed
        if "rng" in ckpt:
            set_rng_state(ckpt["rng"])
        status.write("RUNNING", MSG_RESUMING.format(path=os.path.realpath(resume)))
        log(f"Resumed from {resume}: current_epoch {start_epoch}, step {global_step}")

    log(f"Training {cfg.model.backbone.type} on {device} ({threads} threads), {len(train_ds)} train / "
        f"{len(val_ds)} val images, {steps_per_epoch} steps per epoch, epochs {start_epoch}..{num_epochs - 1} "
        f"(0-based)")

    status.write("STARTED", MSG_LOOP_STARTED)
    ckpt_unit = cfg.train.checkpoint_interval_unit
    ckpt_every = int(cfg.train.checkpoint_interval)
    val_every = int(cfg.train.validation_interval)
    last_val: dict[str, float] = {}
    step_time_avg, steps_timed = 0.0, 0

    def save(epoch_index: int, end_of_epoch: bool, batch_in_epoch: int) -> Path:
        path = out_dir / checkpoint_name(epoch_index, global_step)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "optimizer_name": cfg.train.optim.optim,
            "scheduler": {"policy": policy, "interval": sched_interval, "state": scheduler.state_dict()},
            "epoch": epoch_index,
            "global_step": global_step,
            "end_of_epoch": end_of_epoch,
            "batch_in_epoch": batch_in_epoch,
            "seed": seed,
            "rng": rng_state(),
            "arch": arch_summary(cfg),
            "config": cfg.redacted(),
        }
        save_checkpoint(path, payload, out_dir / LATEST_NAME)
        return path

    for epoch_index in range(start_epoch, num_epochs):
        t0, c0 = time.time(), time.process_time()
        model.train()
        order = train_ds.epoch_order(epoch_index, seg.shuffle)
        index_batches = batches(order, bs)
        first = skip_batches if epoch_index == start_epoch else 0
        loss_sum, loss_n = 0.0, 0
        step_lr = float(optimizer.param_groups[0]["lr"])  # the lr of the epoch's last step
        for b, (x, y, _) in enumerate(iterate_batches(train_ds, index_batches[first:], epoch_index, seg.workers),
                                      start=first):
            ts = time.time()
            x, y = x.to(device), y.to(device)
            logits = forward_logits(model, x, y.shape[-2:], cfg.model.decode_head.align_corners)
            loss = F.cross_entropy(logits, y, weight=weights, ignore_index=IGNORE_INDEX)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise _diverged(value, epoch_index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            step_lr = float(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if sched_interval == "step":
                scheduler.step()
            global_step += 1
            loss_sum += value
            loss_n += 1
            step_time_avg = (time.time() - ts + steps_timed * step_time_avg) / (steps_timed + 1)
            steps_timed += 1
            if ckpt_unit == "step" and global_step % ckpt_every == 0 and b + 1 < len(index_batches):
                save(epoch_index, False, b + 1)
        train_loss = loss_sum / max(1, loss_n)

        val = None
        if (epoch_index + 1) % val_every == 0:  # Lightning's check_val_every_n_epoch
            val = {**evaluate_dataset(model, val_ds, cfg, device, bs, seg.workers),
                   **model_cost(model, cfg, device)}
            last_val = val
            status.write("RUNNING", MSG_EVAL, kpi=val)
            if not math.isfinite(val["val_loss"]):
                raise _diverged(val["val_loss"], epoch_index)

        dt = time.time() - t0
        status.write("RUNNING", MSG_TRAIN_LOOP, data={
            "epoch": epoch_index,
            "step": global_step,
            "max_epoch": num_epochs - 1,
            "max_step": max_step,
            "time_per_epoch": fmt_duration(dt),
            "time_per_step": fmt_duration(step_time_avg),
            "eta": fmt_duration((num_epochs - 1 - epoch_index) * dt),
        })

        status.write("RUNNING", MSG_TRAIN_METRICS, kpi={"train_loss": train_loss, "lr": step_lr})

        if sched_interval == "epoch":
            scheduler.step()  # before the save: the checkpoint holds the schedule of the next epoch
        if ckpt_unit == "epoch":
            due = (epoch_index + 1) % ckpt_every == 0  # Lightning's ModelCheckpoint(every_n_epochs)
        else:
            due = global_step % ckpt_every == 0
        saved = save(epoch_index, True, 0) if due else None

        msg = (f"Epoch {epoch_index}/{num_epochs - 1} ({dt:.2f} s, cpu {time.process_time() - c0:.2f} s): "
               f"train_loss={train_loss:.4f} lr={step_lr:.6g}")
        if val is not None:
            msg += " " + _fmt(val)
        if saved is not None:
            msg += f" -> {saved.name}"
        log(msg, flush=True)

    status.write("RUNNING", MSG_LOOP_COMPLETE)
    status.write(SUCCESS_STATUS, MSG_TRAIN_SUCCESS)
    log(f"Training finished in {time.time() - t_start:.1f} s (process cpu {time.process_time():.1f} s); "
        f"results in {out_dir}")
    return last_val
