#!/usr/bin/env python3
"""A TAO-contract trainer whose per-epoch metric is a published multi-fidelity test function.

``mf_trainer.py train -e spec.yaml`` behaves like a TAO trainer (and like ``zero_trainer.py``)
and writes exactly what TAO 6.25's SegFormer ``train`` writes (``tao_status.py``, next to this
file): STARTED ``"Starting MultiFidelity train."`` (then, when resuming, RUNNING ``"Resuming
training from checkpoint: <path>"``), STARTED ``"Starting Training Loop."``; per epoch (0-based
``e``), when validation is due (``(e + 1) % train.validation_interval == 0``, default 1), an
``"Eval metrics generated."`` line with ``kpi`` (no ``epoch`` key), the epoch line ``"Training loop
in progress"`` (``epoch`` = e, ``step``, ``max_epoch`` = num_epochs - 1, ..., current kpi),
``"Train metrics generated."`` with ``{train_loss}`` (= the epoch's f value) and a checkpoint
``model_epoch_{e:03d}_step_{S:05d}.pth`` when ``(e + 1) % train.checkpoint_interval == 0`` (written
atomically); then RUNNING ``"Training loop complete."`` and ``"Train finished successfully."``.
``train.resume_training_checkpoint_path`` resumes at the epoch after the checkpoint's (0-based)
epoch. Instead of training, epoch ``e`` reports ``kpi.objective = f(x, s)`` with the fidelity
``s = (e + 1) / mf.max_epochs`` (epochs completed over R, the benchmark's full budget - not
``train.num_epochs``, which a bracket algorithm lowers), ``x`` = ``x.x1 .. x.xd`` from the spec.
``kpi.f_full`` is ``f(x, 1)`` (what the benchmark needs for the regret; searchers ignore it).
Every status line has an entry in the sidecar ``timing.jsonl`` (``written_at`` = ``time.time()``
when written, ``pid``; ``tao_status.py``): timing stays off the status lines.

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
from tao_status import StatusLogger, checkpoint_name, due, write_atomic


def main() -> int:
    action, spec_path = sys.argv[1], Path(sys.argv[sys.argv.index("-e") + 1])
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(spec_path.read_text(), Loader=loader)  # noqa: S506 - safe loader
    train, mf = spec["train"], spec["mf"]
    out = Path(spec["results_dir"]) / action
    out.mkdir(parents=True, exist_ok=True)
    status = StatusLogger(out / "status.json", timing={"pid": os.getpid()})

    xs = spec["x"]
    x = [float(xs[f"x{i}"]) for i in range(1, len(xs) + 1)]
    full = int(mf["max_epochs"])
    epochs = int(train["num_epochs"])
    epoch_s = float(mf.get("epoch_s", 0.0))
    steps_per_epoch = 10
    start, step = 0, 0
    status.started("MultiFidelity")
    resume = train.get("resume_training_checkpoint_path") or ""
    if resume:
        status.resuming(resume)
        state = json.loads(Path(resume).read_text())
        start, step = int(state["epoch"]) + 1, int(state["step"])
    status.loop_started()
    wanted = list(range(start, epochs))  # 0-based epochs; fidelity from epochs completed
    with Client(mf["address"], authkey=Path(mf["authkey_file"]).read_bytes()) as conn:
        conn.send([[*x, (e + 1) / full] for e in wanted] + [[*x, 1.0]])
        values = conn.recv()
    f_full = values[-1]
    ckpt_every = train.get("checkpoint_interval", 1)
    val_every = train.get("validation_interval", 1)
    for epoch, value in zip(wanted, values):
        began = time.time()
        if epoch_s > 0:
            time.sleep(epoch_s)
        step += steps_per_epoch
        if due(epoch, val_every):
            status.eval_metrics({"objective": value, "f_full": f_full})
        status.epoch_end(epoch, step, epochs, steps_per_epoch, time.time() - began)
        status.train_metrics(value)
        if due(epoch, ckpt_every):
            write_atomic(out / checkpoint_name(epoch, step),
                         json.dumps({"epoch": epoch, "step": step, "x": x}))
    status.finished()
    status.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
