#!/usr/bin/env python3
"""A zero-compute trainer honouring the TAO container contract, for measuring controller overhead.

``zero_trainer.py train -e spec.yaml`` writes, for every epoch and without any computation, a
checkpoint ``results_dir/train/model_epoch_EEE_step_SSSSS.pth`` and one validation line in
``results_dir/train/status.json`` (JSON Lines, TAO's format), then ``SUCCESS``. Resumes from
``train.resume_training_checkpoint_path`` like a TAO trainer.

Every line carries timing fields the benchmarks read back:

* ``written_at`` (top level and in ``kpi``): ``time.time()`` just before the line is written, so
  the driver can measure status line -> scheduler latency (the engine forwards ``kpi`` to Tune);
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


def main() -> int:
    action, spec_path = sys.argv[1], Path(sys.argv[sys.argv.index("-e") + 1])
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(spec_path.read_text(), Loader=loader)  # noqa: S506 - safe loader
    train = spec["train"]
    zero = spec.get("zero") or {}
    epoch_s = float(zero.get("epoch_s", 0.0))
    out = Path(spec["results_dir"]) / action
    out.mkdir(parents=True, exist_ok=True)
    status = (out / "status.json").open("a")
    ids = {"pid": os.getpid(), "ppid": os.getppid(), "t_exec": T_EXEC}

    def line(**obj):
        now = time.time()
        local = time.localtime(now)
        obj = {"date": f"{local.tm_mon}/{local.tm_mday}/{local.tm_year}",
               "time": f"{local.tm_hour}:{local.tm_min}:{local.tm_sec}", "verbosity": "INFO",
               "written_at": now, **ids, **obj}
        if "kpi" in obj:
            obj["kpi"] = {**obj["kpi"], "written_at": now}
        status.write(json.dumps(obj) + "\n")
        status.flush()

    x = float((spec.get("hp") or {}).get("x", 0.5))
    epochs = int(train["num_epochs"])
    steps_per_epoch = 10
    start = 0
    resume = train.get("resume_training_checkpoint_path") or ""
    if resume:
        start = int(json.loads(Path(resume).read_text())["epoch"])
    line(status="STARTED", message="Starting zero-compute training")
    interval = int(train.get("checkpoint_interval", 1) or 1)
    for epoch in range(start + 1, epochs + 1):
        if epoch_s > 0:
            time.sleep(epoch_s)
        score = (1.0 - (x - 0.7) ** 2) * (1.0 - 0.5 / (1 + epoch))
        step = epoch * steps_per_epoch
        if epoch % interval == 0 or epoch == epochs:
            ckpt = out / f"model_epoch_{epoch:03d}_step_{step:05d}.pth"
            ckpt.write_text(json.dumps({"epoch": epoch, "step": step, "x": x}))
        line(status="RUNNING", epoch=epoch, max_epoch=epochs,
             kpi={"val_miou": score, "val_loss": 1.0 - score})
    line(status="SUCCESS", message="Training finished successfully")
    status.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
