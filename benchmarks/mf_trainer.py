#!/usr/bin/env python3
"""A TAO-contract trainer whose per-epoch metric is a published multi-fidelity test function.

``mf_trainer.py train -e spec.yaml`` behaves like a TAO trainer (and like ``zero_trainer.py``):
for every epoch it writes one validation line to ``results_dir/train/status.json`` (JSON Lines,
TAO's keys) and a checkpoint ``model_epoch_EEE_step_SSSSS.pth`` every ``train.checkpoint_interval``
epochs, then ``SUCCESS``; ``train.resume_training_checkpoint_path`` resumes after the epoch stored
in that checkpoint. Instead of training, epoch ``e`` reports ``kpi.objective = f(x, s)`` with the
fidelity ``s = e / mf.max_epochs`` (R, the benchmark's full budget - not ``train.num_epochs``,
which a bracket algorithm lowers), ``x`` = ``x.x1 .. x.xd`` from the spec. ``kpi.f_full`` is
``f(x, 1)`` (what the benchmark needs for the regret; searchers ignore it).

f comes from BoTorch (``botorch.test_functions.multi_fidelity``), evaluated by the benchmark's
evaluation server (``multifidelity.py``) at ``mf.address`` (a Unix socket; authkey in the file
``mf.authkey_file``), through ``multiprocessing.connection``. Why a server: importing botorch
(torch) costs ~3 s of CPU per process and a benchmark starts thousands of trial processes on two
cores; this script imports only the standard library and PyYAML (~0.1 s), and the server imports
botorch once per problem. One request per process: all epochs of this run at once.

``mf.epoch_s`` sleeps that long per epoch (simulated training time: it keeps epochs of
concurrent trials interleaved roughly in proportion to their length).
"""

import json
import os
import sys
import time
from multiprocessing.connection import Client
from pathlib import Path

import yaml


def main() -> int:
    action, spec_path = sys.argv[1], Path(sys.argv[sys.argv.index("-e") + 1])
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(spec_path.read_text(), Loader=loader)  # noqa: S506 - safe loader
    train, mf = spec["train"], spec["mf"]
    out = Path(spec["results_dir"]) / action
    out.mkdir(parents=True, exist_ok=True)
    status = (out / "status.json").open("a")

    def line(**obj):
        now = time.time()
        local = time.localtime(now)
        obj = {"date": f"{local.tm_mon}/{local.tm_mday}/{local.tm_year}",
               "time": f"{local.tm_hour}:{local.tm_min}:{local.tm_sec}", "verbosity": "INFO",
               "written_at": now, "pid": os.getpid(), **obj}
        status.write(json.dumps(obj) + "\n")
        status.flush()

    xs = spec["x"]
    x = [float(xs[f"x{i}"]) for i in range(1, len(xs) + 1)]
    full = int(mf["max_epochs"])
    epochs = int(train["num_epochs"])
    epoch_s = float(mf.get("epoch_s", 0.0))
    steps_per_epoch = 10
    start = 0
    resume = train.get("resume_training_checkpoint_path") or ""
    if resume:
        start = int(json.loads(Path(resume).read_text())["epoch"])
    line(status="STARTED", message="Starting multi-fidelity benchmark training")
    wanted = list(range(start + 1, epochs + 1))
    with Client(mf["address"], authkey=Path(mf["authkey_file"]).read_bytes()) as conn:
        conn.send([[*x, e / full] for e in wanted] + [[*x, 1.0]])
        values = conn.recv()
    f_full = values[-1]
    interval = int(train.get("checkpoint_interval", 1) or 1)
    for epoch, value in zip(wanted, values):
        if epoch_s > 0:
            time.sleep(epoch_s)
        step = epoch * steps_per_epoch
        if epoch % interval == 0 or epoch == epochs:
            ckpt = out / f"model_epoch_{epoch:03d}_step_{step:05d}.pth"
            ckpt.write_text(json.dumps({"epoch": epoch, "step": step, "x": x}))
        line(status="RUNNING", epoch=epoch, max_epoch=epochs,
             kpi={"objective": value, "f_full": f_full})
    line(status="SUCCESS", message="Training finished successfully")
    status.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
