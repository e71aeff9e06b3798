"""PBT/PB2 perturbations reach a resumed trainer: the inherited checkpoint's optimizer state is
rewritten with the child's learning rate and weight decay (automl.run.perturbation,
checkpoint_hparams), and the trainer's own status lines show the lr it trained with."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from automl.contract import LINEAGE
from automl.run.perturbation import changes, kind, reach_trainer
from automl.run.trial import inherit
from checkpoint_hparams import MARKER
from checkpoint_hparams.__main__ import main as rewrite
from launchers.local import LocalLauncher

torch = pytest.importorskip("torch")

LR, WD = "train.optim.lr", "train.optim.weight_decay"


def test_which_parameters_are_optimizer_state():
    assert [kind(n) for n in (LR, "train.optim.lr_backbone", "train.optim.text_lr", "train.lr",
                              WD, "train.optm_weight_decay")] == ["lr"] * 4 + ["weight_decay"] * 2
    assert {kind(n) for n in ("train.optim.min_lr", "train.optim.lr_decay", "train.optim.momentum",
                              "dataset.segment.batch_size")} == {None}
    found = changes({"train.optim.lr_backbone": 1e-5, LR: 1e-4, WD: 0.01, "x": 1},
                    {"train.optim.lr_backbone": 2e-5, LR: 1.2e-4, WD: 0.008, "x": 2})
    # the primary learning rate first: groups that match no parameter follow its ratio
    assert found == {"lr": [(LR, 1e-4, 1.2e-4), ("train.optim.lr_backbone", 1e-5, 2e-5)],
                     "weight_decay": [(WD, 0.01, 0.008)]}


def _lightning_run(lr: float, wd: float, steps: int):
    """A model trained ``steps`` steps as a Lightning module configures it: AdamW with decay,
    no-decay and a 10x-lr head group, a per-step linear LambdaLR over 10 steps."""
    torch.manual_seed(0)
    body, head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW([
        {"params": [body.weight], "weight_decay": wd},
        {"params": [body.bias], "weight_decay": 0.0},
        {"params": head.parameters(), "lr": 10 * lr, "weight_decay": wd},
    ], lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 1 - k / 10)
    for _ in range(steps):
        loss = head(body(torch.ones(3, 4))).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return body, head, optimizer, scheduler


def test_rewrite_of_a_lightning_checkpoint_is_what_a_fresh_run_would_hold(tmp_path):
    """TAO's layout (optimizer_states / lr_schedulers lists, config objects beside): after the
    rewrite, a resumed optimizer and scheduler hold the new lr and weight decay at the parent's
    schedule position, with the parent's moments; a second run changes nothing."""
    body, _, optimizer, scheduler = _lightning_run(1e-3, 0.01, steps=4)
    path = tmp_path / "model_epoch_001_step_00004.pth"
    torch.save({"state_dict": {**body.state_dict()}, "epoch": 1, "global_step": 4,
                "optimizer_states": [optimizer.state_dict()], "lr_schedulers": [scheduler.state_dict()],
                "hyper_parameters": {"experiment_spec": Path("spec.yaml")}}, path)  # not weights-only
    moments = optimizer.state_dict()["state"][0]["exp_avg"].clone()
    args = [str(path), "--lr", LR, "0.001", "0.0015", "--weight-decay", WD, "0.01", "0.02",
            "--report", str(tmp_path / "report.json")]
    assert rewrite(args) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["lr"] == {LR: [0.001, 0.0015]} and report["optimizer_groups"] == 3
    assert report["schedulers"] == 1
    ckpt = torch.load(path, weights_only=False)
    assert ckpt[MARKER] == {"lr": {LR: 0.0015}, "weight_decay": {WD: 0.02}}
    # Lightning's restore: the optimizer built from the child's spec, then the saved states loaded.
    _, _, fresh, _ = _lightning_run(1.5e-3, 0.02, steps=0)
    fresh_sched = torch.optim.lr_scheduler.LambdaLR(fresh, lambda k: 1 - k / 10)
    fresh.load_state_dict(ckpt["optimizer_states"][0])
    fresh_sched.load_state_dict(ckpt["lr_schedulers"][0])
    groups = fresh.param_groups
    assert [g["lr"] for g in groups] == pytest.approx([1.5e-3 * 0.6, 1.5e-3 * 0.6, 1.5e-2 * 0.6])
    assert [g["initial_lr"] for g in groups] == pytest.approx([1.5e-3, 1.5e-3, 1.5e-2])
    assert [g["weight_decay"] for g in groups] == pytest.approx([0.02, 0.0, 0.02])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], moments)  # Adam's moments kept
    assert fresh_sched.last_epoch == 4
    fresh_sched.step()  # the schedule goes on from step 4 with the new base
    assert [g["lr"] for g in fresh.param_groups] == pytest.approx([1.5e-3 * 0.5, 1.5e-3 * 0.5, 1.5e-2 * 0.5])
    # Run again (a child restarted before it reported): the marker says it is done.
    assert rewrite(args) == 0
    again = torch.load(path, weights_only=False)
    assert [g["lr"] for g in again["optimizer_states"][0]["param_groups"]] == \
        pytest.approx([g["lr"] for g in ckpt["optimizer_states"][0]["param_groups"]])
    assert again["lr_schedulers"][0]["base_lrs"] == pytest.approx([1.5e-3, 1.5e-3, 1.5e-2])


def test_a_file_that_is_not_a_torch_checkpoint_is_left_alone(tmp_path):
    path = tmp_path / "model_epoch_000_step_00001.pth"
    path.write_text('{"epoch": 0}')
    assert rewrite([str(path), "--lr", LR, "1", "2", "--report", str(tmp_path / "r.json")]) == 3
    assert path.read_text() == '{"epoch": 0}'
    with pytest.raises(SystemExit):
        rewrite([str(path), "--lr", LR, "one", "2", "--report", str(tmp_path / "r.json")])


# -- the bundled trainer (TAO's dialect): the lr a resumed run trains with ----------------------

def _resumed_lr(results: Path) -> tuple[float, float]:
    """(lr the trainer reported, lr it would have had at base 1.0) for the resumed run's first
    epoch, from its status.json: the last step's lr along TAO's linear schedule of that run."""
    from segformer_trainer.status import read_status
    from segformer_trainer.train import linear_lambda

    lines = read_status(results / "train" / "status.json")
    assert any(ln.get("message", "").startswith("Resuming training from checkpoint") for ln in lines)
    loop = next(ln for ln in lines if ln.get("message") == "Training loop in progress")
    train = next(ln for ln in lines if ln.get("message") == "Train metrics generated.")
    return train["kpi"]["lr"], linear_lambda(loop["max_step"])(loop["step"] - 1)


def test_a_child_of_the_bundled_trainer_trains_with_its_perturbed_lr(tmp_path):
    from segformer_trainer import cli
    from segformer_trainer.synth import generate
    from tests.segformer_trainer.test_trainer import write_spec

    data = generate(tmp_path / "ds", num_train=16, num_val=8, num_test=4, num_classes=3, img_size=32, seed=7)
    parent, child = tmp_path / "trials" / "p", tmp_path / "trials" / "c"
    old = {LR: 3e-3, WD: 0.01}
    new = {LR: 3e-3 * 1.2, WD: 0.01 * 0.8}
    spec = write_spec(tmp_path / "parent.yaml", data, parent / "results", train__num_epochs=1,
                      train__optim__weight_decay=old[WD])
    assert cli.main(["train", "-e", str(spec)]) == 0
    source = parent / "results" / "train" / "model_epoch_000_step_00002.pth"
    pointer = {"path": str(source), "epoch": 1, "step": 2, "rec_id": "p", "params": old}

    def resume(results: Path, checkpoint: str) -> tuple[float, float]:
        results.parent.mkdir(parents=True, exist_ok=True)
        spec = write_spec(results.parent / "child.yaml", data, results, train__num_epochs=2,
                          train__optim__lr=new[LR], train__optim__weight_decay=new[WD])
        assert cli.main(["train", "-e", str(spec), f"train.resume_training_checkpoint_path={checkpoint}"]) == 0
        return _resumed_lr(results)

    # As TAO does: resumed from the parent's file as it is, the child trains with the parent's lr.
    control = tmp_path / "control"
    shutil.copyfile(source, control.with_suffix(".pth"))
    lr, factor = resume(control / "results", str(control.with_suffix(".pth")))
    assert lr == pytest.approx(old[LR] * factor, rel=1e-6)

    # PBT's exploit: the copy in the child's folder, rewritten through the trial's launcher.
    child.mkdir(parents=True)
    own = inherit(child, "c", pointer, new)
    step = (LocalLauncher(), {}, tmp_path.name)  # the trial's launcher, env, experiment
    report = reach_trainer(*step, child, "c", own, new)
    assert report["lr"] == {LR: [old[LR], new[LR]]} and report["weight_decay"] == {WD: [old[WD], new[WD]]}
    assert json.loads((child / LINEAGE).read_text())[-1]["optimizer"] == report
    assert "checkpoint_hparams:" in (child / "train.log").read_text()
    lr, factor = resume(child / "results", own["path"])
    assert lr == pytest.approx(new[LR] * factor, rel=1e-6)  # the perturbed lr, read back
    saved = torch.load(child / "results" / "train" / "model_epoch_001_step_00004.pth", weights_only=True)
    assert [g["weight_decay"] for g in saved["optimizer"]["param_groups"]] == pytest.approx([new[WD], 0.0])
    # Restarted before reporting: the same inheritance, the rewrite is not applied twice.
    assert reach_trainer(*step, child, "c", inherit(child, "c", pointer, new), new)["lr"] == \
        {LR: [new[LR], new[LR]]}
    assert json.loads((child / LINEAGE).read_text())[-1]["optimizer"] == report
    # Nothing perturbed that the optimizer holds: no step at all.
    assert reach_trainer(*step, child, "c", {**own, "params": new}, new) is None


# -- end to end: automl run --algo pbt|pb2 on the bundled trainer ------------------------------

def _space_file(tmp_path: Path) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"only": [LR, WD],
                                    "parameters": {WD: {"valid_min": 0.001, "valid_max": 0.1}}}))
    return path


@pytest.mark.slow  # 2-3 minutes per algorithm on 2 cores: 4 members x 5 trainer starts
@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("algo", ["pbt", "pb2"])
def test_pbt_children_of_the_bundled_trainer_train_with_their_perturbed_lr(algo, tmp_path):
    """automl run on the bundled trainer (TAO's dialect): every exploited child's resumed run
    reports, in its own status lines, the lr of its lineage entry - not its parent's."""
    from automl.cli import main
    from automl.results.records import read_history
    from automl.tao.lines import read_status
    from automl.tao.progress import runs
    from segformer_trainer.synth import generate
    from segformer_trainer.train import linear_lambda

    data = generate(tmp_path / "ds", num_train=16, num_val=8, num_test=4, num_classes=4, img_size=32, seed=0)
    workspace = tmp_path / "ws"
    assert main(["run", "--root-dir", str(data), "--workspace", str(workspace), "--algo", algo,
                 "--max-epochs", "5", "--population-size", "4", "--cpus-per-trial", "0.5",
                 "--space-file", str(_space_file(tmp_path)), "--seed", "5", "--progress", "none",
                 "--set", "dataset.segment.img_size=32", "--set", "dataset.segment.batch_size=8"]) == 0
    _, records = read_history(workspace / "history.json")
    assert all(r.status == "completed" for r in records)
    checked = 0
    for record in records:
        folder = Path(record.folder)
        if not (folder / LINEAGE).exists():
            continue
        lineage = json.loads((folder / LINEAGE).read_text())
        latest = lineage[-1]
        assert latest["optimizer"]["lr"][LR][1] == latest["params"][LR]
        # the trainer run that resumed from the (rewritten) copy
        run = next(r for r in reversed(runs(read_status(folder / "results" / "train" / "status.json")))
                   if any(f"Resuming training from checkpoint: {latest['path']}" == ln.message for ln in r))
        loop = next(ln.raw for ln in run if ln.message == "Training loop in progress")
        lr = next(ln.kpi["lr"] for ln in run if ln.message == "Train metrics generated.")
        factor = linear_lambda(loop["max_step"])(loop["step"] - 1)
        assert lr == pytest.approx(latest["params"][LR] * factor, rel=1e-6)
        parent_lr = latest["optimizer"]["lr"][LR][0]
        if not math.isclose(parent_lr, latest["params"][LR], rel_tol=1e-6):
            assert lr != pytest.approx(parent_lr * factor, rel=1e-6)
        checked += 1
    assert checked >= 1, "a 4-member population exploits in 4 perturbation steps"
