#!/usr/bin/env python3
"""A zero-compute trainer honouring the TAO container contract, for measuring controller overhead.

``zero_trainer.py train -e spec.yaml`` writes exactly what TAO 6.25's SegFormer ``train`` writes
(``tao_status.py``, next to this file; ``tests/fixtures/tao_golden/``) without any computation:
STARTED ``"Starting Zero train."`` (then, when resuming, RUNNING ``"Resuming training from
checkpoint: <path>"``), STARTED ``"Starting Training Loop."``; per epoch (0-based ``e``), when
validation is due (``(e + 1) % train.validation_interval == 0``, default 1) ``"Eval metrics
generated."`` with ``kpi`` ``{val_loss, val_miou}`` (no ``epoch`` key), the epoch line
``"Training loop in progress"`` (``epoch`` = e, ``step``, ``max_epoch`` = num_epochs - 1, ...,
current kpi), ``"Train metrics generated."`` with ``{train_loss}``, and a checkpoint
``results_dir/train/model_epoch_{e:03d}_step_{S:05d}.pth`` when ``(e + 1) %
train.checkpoint_interval == 0`` (written atomically); then RUNNING ``"Training loop complete."``
and RUNNING ``"Train finished successfully."``, exit 0. ``train.resume_training_checkpoint_path``
resumes like a TAO trainer: at the epoch after the checkpoint's (0-based) epoch. The score is a
function of the epochs completed (e + 1).

Timing fields the benchmarks read back go to the sidecar ``results_dir/train/timing.jsonl`` (one
entry per status line, ``tao_status.py``), not on the status lines:

* ``written_at``: ``time.time()`` just before the line is written, so the driver can measure
  status line -> scheduler latency;
* ``t_exec``: ``time.time()`` at the first statement of this script (before any import but
  ``time``), i.e. the trainer process start minus interpreter start-up;
* ``pid`` / ``ppid``: the trainer and its parent (the Ray worker = the slot, actors are reused).

``zero.epoch_s`` in the spec sleeps that long per epoch (0 = zero compute) so the same trainer can
show the idle-slot fraction with trials of a realistic length.
"""

import time

T_EXEC = time.time()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402
from tao_status import StatusLogger, checkpoint_name, due, write_atomic  # noqa: E402


def main() -> int:
    action, spec_path = sys.argv[1], Path(sys.argv[sys.argv.index("-e") + 1])
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(spec_path.read_text(), Loader=loader)  # noqa: S506 - safe loader
    train = spec["train"]
    zero = spec.get("zero") or {}
    epoch_s = float(zero.get("epoch_s", 0.0))
    out = Path(spec["results_dir"]) / action
    out.mkdir(parents=True, exist_ok=True)
    status = StatusLogger(out / "status.json",
                          timing={"pid": os.getpid(), "ppid": os.getppid(), "t_exec": T_EXEC})

    x = float((spec.get("hp") or {}).get("x", 0.5))
    epochs = int(train["num_epochs"])
    steps_per_epoch = 10
    start, step = 0, 0
    status.started("Zero")
    resume = train.get("resume_training_checkpoint_path") or ""
    if resume:
        status.resuming(resume)
        state = json.loads(Path(resume).read_text())
        start, step = int(state["epoch"]) + 1, int(state["step"])
    status.loop_started()
    ckpt_every = train.get("checkpoint_interval", 1)
    val_every = train.get("validation_interval", 1)
    for epoch in range(start, epochs):
        began = time.time()
        if epoch_s > 0:
            time.sleep(epoch_s)
        step += steps_per_epoch
        score = (1.0 - (x - 0.7) ** 2) * (1.0 - 0.5 / (1 + (epoch + 1)))
        if due(epoch, val_every):
            status.eval_metrics({"val_loss": 1.0 - score, "val_miou": score})
        status.epoch_end(epoch, step, epochs, steps_per_epoch, time.time() - began)
        status.train_metrics(0.8 * (1.0 - score))
        if due(epoch, ckpt_every):
            write_atomic(out / checkpoint_name(epoch, step),
                         json.dumps({"epoch": epoch, "step": step, "x": x}))
    status.finished()
    status.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
