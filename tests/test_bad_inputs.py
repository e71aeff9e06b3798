"""Every user mistake is one line on stderr and exit code 2: no traceback, nothing launched.

Each case asserts: exit code 2; exactly one stderr line (``error: ...``) naming the offending
key/file and saying what to do; no "Traceback" anywhere; no trainer launched (``engine.execute``
and the launchers' ``start`` fail the test if reached); no workspace folder when the mistake is
caught before it is created (everything except the workspace checks themselves: ``prepare()``
creates the workspace last); and nothing written anywhere under the test's folder (which holds
the skill, the dataset, the target workspace and the working directory).

Most cases run in-process through ``automl.cli.main`` (no Ray needed: prepare() fails first);
a few run ``python -m automl.cli`` in a subprocess to prove that no traceback reaches a terminal.
Cases that need an experiment (resume/best/hand-off on finished or failed ones, a metric the
trainer never reports, GPUs Ray does not have) use the session's Ray instance.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from automl.cli import main
from launchers.gpus import free_port
from tests.helpers.skills import FAKE_TRAINER, make_fake_skill

# --------------------------------------------------------------------------------------------
# helpers


def snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``root`` with (is_dir, size, mtime_ns): equal snapshots = nothing written."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        out[str(path.relative_to(root))] = (path.is_dir(), st.st_size if path.is_file() else 0,
                                            st.st_mtime_ns if path.is_file() else 0)
    return out


def assert_one_line_error(code: int, out: str, err: str, needles: tuple[str, ...] = (),
                          pattern: str | None = None) -> str:
    assert "Traceback" not in out and "Traceback" not in err, out + err
    assert code == 2, f"exit code {code}; stderr: {err!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {err!r}"
    line = lines[0]
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    if pattern:
        assert re.search(pattern, line, re.I), f"/{pattern}/ not in {line!r}"
    return line


def _edit_info(skill: Path, edit: Callable[[dict], None]) -> Path:
    path = skill / "references" / "skill_info.yaml"
    info = yaml.safe_load(path.read_text())
    edit(info)
    path.write_text(yaml.safe_dump(info))
    return skill


def segformer_skill(folder: Path) -> Path:
    """A copy of the bundled SegFormer skill whose train command is the fake trainer (so the
    trainer-on-PATH check passes however the tests are started)."""
    from automl.skill.folder import bundled_skill_dir

    skill = folder / "segformer-skill"
    if not skill.exists():
        shutil.copytree(bundled_skill_dir(), skill)
        _edit_info(skill, lambda info: info["actions"]["train"].update(
            command=f"{sys.executable} {FAKE_TRAINER} train -e {{config_path}}"))
    return skill


def tiny_dataset(folder: Path) -> Path:
    from segformer_trainer.synth import generate

    root = folder / "data"
    generate(root, num_train=2, num_val=2, num_test=1, img_size=16)
    return root


def _listening(c: Ctx) -> int:
    """A port another program listens on, for as long as the case runs."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    c.held.append(sock)
    return sock.getsockname()[1]


@dataclass
class Ctx:
    """The case's folder: ``tmp`` holds the skill, inputs, the working directory and ``ws``."""

    tmp: Path
    skill: Path
    ws: Path
    expect_workspace: bool = False  # the workspace existed before (it must be left untouched)
    held: list[object] = field(default_factory=list)  # kept open while the case runs (a socket)

    def run(self, *extra: str, skill: Path | None = None) -> list[str]:
        return ["run", "--skill-dir", str(skill or self.skill), "--workspace", str(self.ws),
                "--progress", "none", "--seed", "1", *extra]

    def serve(self, *extra: str) -> list[str]:
        return ["serve", "--root", str(self.tmp / "srv"), *extra]

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    def fake(self, name: str, edit: Callable[[dict], None] | None = None) -> Path:
        skill = make_fake_skill(self.tmp / name)
        return _edit_info(skill, edit) if edit else skill


@dataclass
class Case:
    id: str
    argv: Callable[[Ctx], list[str]]
    needles: tuple[str, ...] = ()
    pattern: str | None = None


# --------------------------------------------------------------------------------------------
# the cases caught before anything is launched


def _other_experiment(ctx: Ctx) -> list[str]:
    ctx.ws.mkdir()
    (ctx.ws / "experiment.yaml").write_text("experiment_id: other\n")
    ctx.expect_workspace = True
    return ctx.run()


def _not_empty_workspace(ctx: Ctx) -> list[str]:
    ctx.ws.mkdir()
    (ctx.ws / "notes.txt").write_text("mine")
    ctx.expect_workspace = True
    return ctx.run()


def _split_missing(ctx: Ctx) -> list[str]:
    root = tiny_dataset(ctx.tmp)
    shutil.rmtree(root / "masks" / "val")
    return ctx.run("--root-dir", str(root), skill=segformer_skill(ctx.tmp))


def _too_many_classes(ctx: Ctx) -> list[str]:
    root = tiny_dataset(ctx.tmp)  # masks use class ids 0..3
    return ctx.run("--root-dir", str(root), "--set", "dataset.segment.num_classes=2",
                   skill=segformer_skill(ctx.tmp))


def _corrupt_mask(ctx: Ctx) -> list[str]:
    root = tiny_dataset(ctx.tmp)
    (root / "masks" / "train" / "00000.png").write_text("not a png")
    return ctx.run("--root-dir", str(root), skill=segformer_skill(ctx.tmp))


def _class_ids_read_with_norm(ctx: Ctx) -> list[str]:
    root = tiny_dataset(ctx.tmp)  # class-id masks (0..3); TAO's norm would read them as 0
    return ctx.run("--root-dir", str(root), "--set", "dataset.segment.num_classes=4",
                   "--set", "dataset.segment.label_transform=norm", skill=segformer_skill(ctx.tmp))


def _without(ctx: Ctx, relative: str, *extra: str) -> list[str]:
    """The fake skill without one of its files."""
    skill = ctx.fake("partial-skill")
    (skill / relative).unlink()
    return ctx.run(*extra, skill=skill)


def _docker_without_image(ctx: Ctx) -> list[str]:
    pytest.importorskip("launchers.docker", reason="the Docker launcher is not in this checkout")
    return ctx.run("--launcher", "docker")  # the fake skill names no container_image


def _docker_image_unavailable(ctx: Ctx) -> list[str]:
    pytest.importorskip("launchers.docker", reason="the Docker launcher is not in this checkout")
    # No Docker engine: "cannot reach the Docker engine"; an engine without the image and no
    # registry: "pull failed". Either way one line before anything runs.
    return ctx.run("--launcher", "docker", "--image", "automl-test/no-such-image:0",
                   "--set", "fake.mode=ok")


def _empty_folder(ctx: Ctx, name: str) -> Path:
    (ctx.tmp / name).mkdir()
    return ctx.tmp / name


def _broken(ctx: Ctx, relative: str, content: str | bytes) -> Path:
    """A copy of the fake skill with one of its files replaced by ``content``."""
    skill = ctx.fake("broken-skill")
    (skill / relative).write_bytes(content if isinstance(content, bytes) else content.encode())
    return skill


def _space(ctx: Ctx, text: str, name: str = "space.yaml") -> list[str]:
    return ctx.run("--space-file", str(ctx.write(name, text)))


def _study(ctx: Ctx, text: str | bytes) -> list[str]:
    study = ctx.write("study.yaml", text)
    return ["run", "--study", str(study), "--skill-dir", str(ctx.skill), "--workspace",
            str(ctx.ws), "--progress", "none"]


NO_TRAIN = lambda info: info.update(actions={"evaluate": info["actions"]["train"]})  # noqa: E731

CASES = [
    # -- the skill folder
    Case("skill-dir-missing", lambda c: c.run(skill=c.tmp / "no-such-skill"),
         ("no-such-skill", "skill directory not found", "expected a folder with")),
    Case("skill-dir-is-a-file", lambda c: c.run(skill=c.write("skill.txt", "x")),
         ("skill.txt", "skill directory not found")),
    Case("skill-info-missing", lambda c: c.run(skill=_empty_folder(c, "empty-skill")),
         ("empty-skill/references/skill_info.yaml", "not found", "TAO skill folder")),
    Case("schema-not-json",
         lambda c: c.run(skill=_broken(c, "schemas/train.schema.json", '{"properties": {,}}')),
         ("train.schema.json:1:", "invalid JSON")),
    Case("schema-not-utf8",
         lambda c: c.run(skill=_broken(c, "schemas/train.schema.json", b'{"properties": "\xff"}')),
         ("train.schema.json", "not UTF-8", "save the file as UTF-8")),
    Case("skill-info-yaml-error",
         lambda c: c.run(skill=_broken(c, "references/skill_info.yaml", "name: x\nactions: [\n")),
         ("skill_info.yaml:3:", "invalid YAML")),
    Case("no-train-action", lambda c: c.run(skill=c.fake("s4", NO_TRAIN)),
         ("no 'train' action", "skill_info.yaml", "(actions: evaluate)", "add actions.train.command")),
    Case("no-actions-section", lambda c: c.run(skill=c.fake("s5", lambda i: i.pop("actions"))),
         ("skill_info.yaml", "no 'actions' section", "add actions.train.command")),
    Case("automl-disabled",
         lambda c: c.run(skill=c.fake("s6", lambda i: i.update(automl_enabled=False))),
         ("AutoML is not enabled", "automl_enabled: false", "skill_info.yaml")),
    Case("automl-disabled-policy-off",
         lambda c: c.run("--policy", "off", skill=c.fake("s6b", lambda i: i.update(
             automl_enabled=False))),
         ("fake-skill: AutoML is not enabled for this model", "automl_enabled: false")),
    Case("train-schema-missing", lambda c: _without(c, "schemas/train.schema.json"),
         ("fake-skill: AutoML is enabled but not runnable for this model",
          "schemas/train.schema.json is missing")),
    Case("train-template-missing",
         lambda c: _without(c, "references/spec_template_train.yaml", "--policy", "off"),
         ("fake-skill: AutoML is enabled but not runnable for this model",
          "references/spec_template_train.yaml is missing")),
    Case("trainer-not-on-path",
         lambda c: c.run(skill=c.fake("s7", lambda i: i["actions"]["train"].update(
             command="no-such-trainer train -e {config_path}"))),
         ("'no-such-trainer' not found on PATH", "install it")),
    Case("shell-command",
         lambda c: c.run(skill=c.fake("s8", lambda i: i["actions"]["train"].update(
             command="trainer train -e {config_path} | tee log"))),
         ("actions.train.command is a shell script",)),
    # -- spec overrides
    Case("unknown-override-key", lambda c: c.run("--set", "hp.xx=1"),
         ("'hp.xx'", "unknown spec key", "did you mean 'hp.x'?")),
    Case("override-wrong-type", lambda c: c.run("--set", "fake.epoch_s=abc"),
         ("'fake.epoch_s'", "'abc'", "expected a number")),
    Case("override-wrong-type-searched", lambda c: c.run("--set", "hp.x=abc"),
         ("hp.x", "expected a number for a float parameter")),
    Case("override-not-integer", lambda c: c.run("--set", "hp.y=1.5"), ("hp.y", "expected an integer")),
    Case("set-without-equals", lambda c: c.run("--set", "hp.x"),
         ("--set 'hp.x'", "expected KEY=VALUE")),
    Case("results-dir-traversal", lambda c: c.run("--set", "results_dir=../../etc"),
         ("'results_dir'", "managed by automl", "remove it")),
    Case("train-results-dir", lambda c: c.run("--set", f"train.results_dir={c.tmp}/elsewhere"),
         ("'train.results_dir'", "managed by automl", "remove it")),
    Case("resume-path-override",
         lambda c: c.run("--set", "train.resume_training_checkpoint_path=/x.pth"),
         ("'train.resume_training_checkpoint_path'", "managed by automl")),
    # -- search-space overrides
    Case("range-not-a-number", lambda c: c.run("--range", "hp.x=abc:1"),
         ("hp.x", "valid_min must be a finite number", "'abc'")),
    Case("range-bad-shape", lambda c: c.run("--range", "hp.x=0:1:lin"),
         ("range 'hp.x=0:1:lin'", "expected NAME=MIN:MAX")),
    Case("range-min-above-max", lambda c: c.run("--range", "hp.x=0.5:0.1"),
         ("hp.x", "valid_min 0.5 > valid_max 0.1", "swap")),
    Case("range-outside-schema", lambda c: c.run("--range", "hp.x=0:5"),
         ("hp.x", "valid_max 5 is outside the schema's range [0, 1]")),
    Case("range-unknown-parameter", lambda c: c.run("--range", "hp.nope=0:1"),
         ("hp.nope", "not a parameter of this schema", "automl space")),
    Case("range-on-categorical", lambda c: c.run("--range", "hp.c=0:1"),
         ("hp.c", "categorical", "use valid_options")),
    Case("options-empty", lambda c: c.run("--options", "hp.c="), ("options 'hp.c='", "NAME=a,b,c")),
    Case("pin-outside-enum", lambda c: c.run("--pin", "hp.c=z"),
         ("hp.c", "'z' is not one of the schema's options ['a', 'b']")),
    Case("pin-and-range", lambda c: c.run("--pin", "hp.x=0.5", "--range", "hp.x=0:1"),
         ("hp.x", "'value' pins the parameter", "drop")),
    Case("space-file-min-max", lambda c: _space(c, "parameters:\n  hp.x: {min: 0.1, max: 0.2}\n"),
         ("space.yaml", "hp.x", "unknown key 'min'", "did you mean 'valid_min'?")),
    Case("space-file-string-for-float",
         lambda c: _space(c, "parameters:\n  hp.x: {valid_min: low, valid_max: 0.2}\n"),
         ("space.yaml", "hp.x", "valid_min must be a finite number", "'low'")),
    Case("space-file-min-above-max",
         lambda c: _space(c, "parameters:\n  hp.x: {valid_min: 0.9, valid_max: 0.2}\n"),
         ("space.yaml", "hp.x", "valid_min 0.9 > valid_max 0.2", "swap")),
    Case("space-file-empty-options", lambda c: _space(c, "parameters:\n  hp.c: {valid_options: []}\n"),
         ("space.yaml", "hp.c", "valid_options is empty", "list at least one option")),
    Case("space-file-unknown-top-key", lambda c: _space(c, "paramters:\n  hp.x: 0.1\n"),
         ("space.yaml", "unknown key 'paramters'", "did you mean 'parameters'?")),
    Case("space-file-yaml-error", lambda c: _space(c, "parameters:\n  hp.x: {valid_min: 0.1\n"),
         ("space.yaml:3:", "invalid YAML")),
    Case("space-file-json-error", lambda c: _space(c, "{bad json", "space.json"),
         ("space.json:1:2", "invalid JSON")),
    Case("space-file-not-found", lambda c: c.run("--space-file", str(c.tmp / "nope.yaml")),
         ("nope.yaml", "overrides file not found", "--space-file")),
    Case("space-file-is-a-folder", lambda c: c.run("--space-file", str(c.tmp)),
         ("cannot read the overrides file (Is a directory)", "pass a YAML or JSON file")),
    Case("space-file-not-utf8", lambda c: _space(c, b"parameters:\n  hp.x: {valid_min: \xff}\n"),
         ("space.yaml", "not UTF-8", "save the file as UTF-8")),
    # -- settings (flags and study files)
    Case("metric-empty", lambda c: c.run("--metric", ""),
         ("--metric ''", "the metric name is empty", "--metric val_miou")),
    Case("metric-blank", lambda c: c.run("--metric", "  "), ("--metric '", "metric name is empty")),
    Case("study-metric-empty", lambda c: _study(c, 'metric: ""\n'),
         ("study.yaml", "'metric' = ''", "the metric name is empty", "--metric val_miou")),
    Case("policy-unknown", lambda c: c.run("--policy", "sometimes"),
         ("--policy 'sometimes'", "'on', 'off' or 'auto'")),
    Case("study-policy-unknown", lambda c: _study(c, "automl_policy: maybe\n"),
         ("study.yaml", "'automl_policy' = 'maybe'", "'on', 'off' or 'auto'")),
    Case("unknown-algorithm", lambda c: c.run("--algo", "nope"),
         ("--algo 'nope'", "'random'", "'bayesian'")),
    Case("max-epochs-zero", lambda c: c.run("--max-epochs", "0"),
         ("--max-epochs 0", "greater than or equal to 1")),
    Case("max-epochs-negative", lambda c: c.run("--max-epochs", "-3"),
         ("--max-epochs -3", "greater than or equal to 1")),
    Case("max-epochs-not-a-number", lambda c: c.run("--max-epochs", "abc"),
         ("--max-epochs", "invalid int value: 'abc'", "--help")),
    Case("min-epochs-above-max", lambda c: c.run("--min-epochs", "5", "--max-epochs", "2"),
         ("--min-epochs 5", "--max-epochs 2", "lower --min-epochs")),
    Case("reduction-factor-one", lambda c: c.run("--reduction-factor", "1"),
         ("--reduction-factor 1", "greater than or equal to 2")),
    Case("max-concurrent-zero", lambda c: c.run("--max-concurrent", "0"),
         ("--max-concurrent 0", "greater than or equal to 1")),
    Case("direction-typo", lambda c: c.run("--direction", "maximise"),
         ("--direction 'maximise'", "'max' or 'min'")),
    Case("keep-checkpoints-some", lambda c: c.run("--keep-checkpoints", "some"),
         ("--keep-checkpoints 'some'", "'best' or 'all'")),
    Case("progress-fancy", lambda c: c.run("--progress", "fancy"),
         ("--progress 'fancy'", "'plain'")),
    Case("launcher-unknown", lambda c: c.run("--launcher", "kube"),
         ("--launcher 'kube'", "'local' or 'docker'")),
    Case("trial-timeout-zero", lambda c: c.run("--trial-timeout", "0"),
         ("--trial-timeout 0.0", "greater than 0")),
    Case("unknown-cli-flag", lambda c: c.run("--epochs", "3"),
         ("unrecognized arguments: --epochs 3", "--help")),
    Case("unknown-command", lambda c: ["frobnicate"], ("invalid choice: 'frobnicate'", "'run'")),
    Case("study-unknown-key", lambda c: _study(c, "algo: random\nmax_epoch: 3\n"),
         ("study.yaml", "unknown key 'max_epoch'", "did you mean 'max_epochs'?")),
    Case("study-yaml-error", lambda c: _study(c, "algo: random\nmax_epochs: [3\n"),
         ("study.yaml:3:", "invalid YAML")),
    Case("study-not-a-mapping", lambda c: _study(c, "- random\n"), ("study.yaml", "expected a mapping")),
    Case("study-bad-value", lambda c: _study(c, "max_epochs: many\n"),
         ("study.yaml", "'max_epochs' = 'many'", "valid integer")),
    Case("study-not-found", lambda c: ["run", "--study", str(c.tmp / "nope.yaml")],
         ("nope.yaml", "study file not found", "check the --study path")),
    Case("study-not-utf8", lambda c: _study(c, b"algo: \xff\n"), ("study.yaml", "not UTF-8")),
    # -- the dataset
    Case("dataset-root-missing",
         lambda c: c.run("--root-dir", str(c.tmp / "no-data"), skill=segformer_skill(c.tmp)),
         ("--root-dir", "no-data", "dataset folder not found", "images/<split> and masks/<split>")),
    Case("dataset-root-required", lambda c: c.run(skill=segformer_skill(c.tmp)),
         ("dataset.segment.root_dir is required", "pass --root-dir")),
    Case("split-missing", _split_missing,
         ("split 'val'", "dataset.segment.validation_split", "masks/val/", "create it or set")),
    Case("masks-more-classes-than-num-classes", _too_many_classes,
         ("masks/train/", "class id 3", "num_classes=2", "--set dataset.segment.num_classes=4")),
    Case("class-id-masks-read-with-norm", _class_ids_read_with_norm,
         ("masks/train/", "mask has value", "label_transform is norm", "value // 255",
          "--set dataset.segment.label_transform=None")),
    Case("mask-not-a-png", _corrupt_mask,
         ("masks/train/00000.png", "not a readable PNG mask", "replace or remove")),
    # -- the workspace
    Case("workspace-parent-is-a-file", lambda c: c.run("--workspace", str(c.write("f", "x") / "ws")),
         ("f/ws", "cannot write there", "choose another --workspace")),
    Case("workspace-root-is-a-file",
         lambda c: ["run", "--skill-dir", str(c.skill), "--workspace-root", str(c.write("root", "x")),
                    "--progress", "none"],
         ("root/", "cannot write there", "--workspace-root")),
    Case("workspace-of-another-experiment", _other_experiment,
         ("already holds an experiment", "automl resume", "choose a new --workspace")),
    Case("workspace-not-empty", _not_empty_workspace,
         ("exists and is not empty", "choose a new --workspace")),
    # -- the launcher
    Case("docker-image-missing", _docker_without_image,
         ("--launcher docker needs an image", "--image", "container_image")),
    Case("docker-image-unavailable", _docker_image_unavailable, pattern=r"docker"),
    # -- where Ray runs (ray.init would retry a silent address for minutes)
    Case("address-nobody-listens", lambda c: c.run("--address", f"127.0.0.1:{free_port('127.0.0.1')}"),
         ("--address 127.0.0.1:", "no Ray cluster answers there", "ray start --head")),
    Case("address-not-host-port", lambda c: c.run("--address", "headnode"),
         ("--address headnode", "HOST:PORT")),
    # -- automl serve: refused before the store is created or the admin token printed
    Case("serve-port-taken", lambda c: c.serve("--port", str(_listening(c))),
         ("--port", "cannot bind", "already in use", "0 picks a free one")),
    Case("serve-port-out-of-range", lambda c: c.serve("--port", "70000"),
         ("--port 70000", "must be 0-65535")),
    Case("serve-host-unknown", lambda c: c.serve("--host", "no-such-host.invalid", "--port", "0"),
         ("--host no-such-host.invalid", "not an address this machine can bind")),
    Case("serve-mlflow-ui-not-a-url", lambda c: c.serve("--port", "0", "--mlflow-ui", "mlflow:5000"),
         ("--mlflow-ui mlflow:5000", "http:// or https://")),
    Case("serve-address-nobody-listens",
         lambda c: c.serve("--port", "0", "--address", f"127.0.0.1:{free_port('127.0.0.1')}"),
         ("--address 127.0.0.1:", "no Ray cluster answers there")),
    # -- commands on something that is not a workspace
    Case("resume-not-a-workspace", lambda c: ["resume", str(c.tmp)], ("not an automl workspace",)),
    Case("best-not-a-workspace", lambda c: ["best", str(c.tmp)], ("not an automl workspace",)),
    Case("handoff-not-a-workspace", lambda c: ["handoff", "evaluate", str(c.tmp)],
         ("not an automl workspace",)),
]


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ctx:
    """A fresh folder with the fake skill; the working directory is inside it; launching fails."""
    import automl.run.engine
    from launchers.local import LocalLauncher

    def launched(*args, **kwargs):
        raise AssertionError("a user mistake got as far as launching trials")

    monkeypatch.setattr(automl.run.engine, "execute", launched)
    monkeypatch.setattr(LocalLauncher, "start", launched)
    try:
        from launchers.docker import DockerLauncher

        monkeypatch.setattr(DockerLauncher, "start", launched)
    except ImportError:
        pass
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return Ctx(tmp=tmp_path, skill=make_fake_skill(tmp_path / "skill"), ws=tmp_path / "ws")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_user_mistake_is_one_line(case: Case, ctx: Ctx, capsys) -> None:
    argv = case.argv(ctx)
    before = snapshot(ctx.tmp)
    code = main(argv)
    out, err = capsys.readouterr()
    assert_one_line_error(code, out, err, case.needles, case.pattern)
    assert ctx.ws.exists() == ctx.expect_workspace
    assert snapshot(ctx.tmp) == before, "something was written"


def test_cases_cover_enough_mistakes() -> None:
    assert len(CASES) >= 30


# --------------------------------------------------------------------------------------------
# through a real process: the terminal never sees a traceback


@pytest.mark.parametrize("extra, needles", [
    (["--set", "hp.xx=1"], ("did you mean 'hp.x'?",)),
    (["--space-file", "."], ("cannot read the overrides file",)),  # was an IsADirectoryError
    (["--max-epochs", "0"], ("--max-epochs 0: Input should be greater than or equal to 1",)),
    (["--metric", ""], ("--metric '': the metric name is empty",)),  # was: trained, then exit 1
], ids=["unknown-key", "space-file-folder", "max-epochs-zero", "metric-empty"])
def test_subprocess_one_line(extra, needles, tmp_path: Path) -> None:
    skill = make_fake_skill(tmp_path / "skill")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = snapshot(tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "automl.cli", "run", "--skill-dir", str(skill), "--workspace",
         str(tmp_path / "ws"), *extra], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    assert_one_line_error(res.returncode, res.stdout, res.stderr, needles)
    assert res.stdout == ""
    assert snapshot(tmp_path) == before


def test_subprocess_trainer_not_on_path(tmp_path: Path) -> None:
    skill = _edit_info(make_fake_skill(tmp_path / "skill"), lambda i: i["actions"]["train"].update(
        command="no-such-trainer train -e {config_path}"))
    before = snapshot(tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "automl.cli", "run", "--skill-dir", str(skill), "--workspace-root",
         str(tmp_path / "workspaces")], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    assert_one_line_error(res.returncode, res.stdout, res.stderr,
                          ("'no-such-trainer' not found on PATH",))
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------
# mistakes that need Ray or a finished experiment


def _evaluate_skill(folder: Path) -> Path:
    """The fake skill with an ``evaluate`` action, so a hand-off can be asked for."""
    skill = make_fake_skill(folder)
    (skill / "references" / "spec_template_evaluate.yaml").write_text(yaml.safe_dump(
        {"results_dir": "", "hp": {"x": 0.5}, "evaluate": {"checkpoint": "", "results_dir": ""}}))

    def add(info: dict) -> None:
        info["actions"]["evaluate"] = {
            "command": f"{sys.executable} {FAKE_TRAINER} evaluate -e {{config_path}}"}
        info["spec_templates"]["evaluate"] = "../references/spec_template_evaluate.yaml"

    return _edit_info(skill, add)


@pytest.fixture(scope="module")
def experiments(tmp_path_factory, ray_session):
    """Two real experiments: one completed, one whose only trial failed (a metric the trainer
    never reports, which is itself a user mistake: the CLI's answer is recorded)."""
    import contextlib
    import io

    base = tmp_path_factory.mktemp("experiments")
    skill = _evaluate_skill(base / "skill")
    common = ["--skill-dir", str(skill), "--progress", "plain", "--seed", "3", "--algo", "random",
              "--max-epochs", "1", "--max-concurrent", "1"]
    done = base / "done"
    # (MLflow elsewhere: a fresh sqlite store costs seconds; the failed run below keeps the
    # default store, inside its workspace.)
    tracking = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", *common, "--workspace", str(done), "--max-recommendations", "1",
                     "--tracking-uri", tracking]) == 0
    failed = base / "failed"
    cwd = base / "cwd"
    cwd.mkdir()
    before = snapshot(base)
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["run", *common, "--workspace", str(failed), "--max-recommendations", "4",
                         "--set", "fake.mode=no_metric"])
    finally:
        os.chdir(old)
    after = snapshot(base)
    return {"done": done, "failed": failed, "metric_run": (code, out.getvalue(), err.getvalue()),
            "written": {p for p in set(after) - set(before)}, "changed_before": before, "after": after}


def test_metric_never_reported_stops_after_the_first_trial(experiments) -> None:
    code, out, err = experiments["metric_run"]
    line = assert_one_line_error(code, out, err, ("--metric val_miou", "never reported 'val_miou'",
                                                  "val_accuracy_typo", "choose a metric"))
    assert line
    history = json.loads((experiments["failed"] / "history.json").read_text())
    trials = history["trials"]
    assert len(trials) == 1, "the experiment goes on after the metric is known to be missing"
    assert trials[0]["status"] == "failed" and trials[0]["failure_class"] == "metric"
    assert "metric:" in out  # the progress line names the class
    # Everything it wrote is inside its workspace.
    assert experiments["written"] and all(p.startswith("failed") for p in experiments["written"])
    unchanged = {p: v for p, v in experiments["changed_before"].items() if not p.startswith("failed")}
    assert {p: experiments["after"][p] for p in unchanged} == unchanged


def test_resume_finished_experiment(experiments, capsys) -> None:
    ws = experiments["done"]
    before = snapshot(ws)
    code = main(["resume", str(ws)])
    out, err = capsys.readouterr()
    assert_one_line_error(code, out, err, ("already completed", "automl run", f"automl best {ws}"))
    assert snapshot(ws) == before


@pytest.mark.parametrize("argv, needles", [
    (["best"], ("no trial of this experiment produced a finite val_miou", "no checkpoint",
                "automl status")),
    (["handoff", "evaluate"], ("no trial of this experiment produced a finite val_miou",
                               "no checkpoint to hand off", "automl status")),
], ids=["best", "handoff-evaluate"])
def test_checkpoint_of_a_failed_experiment(experiments, argv, needles, capsys) -> None:
    ws = experiments["failed"]
    before = snapshot(ws)
    code = main([*argv, str(ws)])
    out, err = capsys.readouterr()
    assert_one_line_error(code, out, err, needles)
    assert snapshot(ws) == before and not (ws / "handoff").exists()


def test_unknown_handoff_action(experiments, capsys) -> None:
    ws = experiments["done"]
    before = snapshot(ws)
    code = main(["handoff", "evaluat", str(ws)])
    out, err = capsys.readouterr()
    assert_one_line_error(code, out, err, ("unknown hand-off action 'evaluat'",
                                           "did you mean 'evaluate'?", "has: evaluate"))
    assert snapshot(ws) == before


def test_address_auto_without_a_cluster(tmp_path, capsys, monkeypatch) -> None:
    """Ray's own refusal of ``--address auto`` (no cluster on this machine) is one line, and the
    workspace it was prepared in says why in ``automl status``. Ray's lookup is replaced by its
    refusal (the test session's own Ray instance would otherwise be found or reused)."""
    import ray

    message = ("Could not find any running Ray instance. Please specify the one to connect to "
               "by setting `--address` flag or `RAY_ADDRESS` environment variable.")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: (_ for _ in ()).throw(ConnectionError(message)))
    skill = make_fake_skill(tmp_path / "skill")
    ws = tmp_path / "ws"
    code = main(["run", "--skill-dir", str(skill), "--workspace", str(ws), "--progress", "none",
                 "--address", "auto"])
    out, err = capsys.readouterr()
    assert_one_line_error(code, out, err, ("--address auto", "Could not find any running Ray",
                                           "ray start --head"))
    state = json.loads((ws / "state.json").read_text())
    assert state["state"] == "failed" and "--address auto" in state["failures"]
    assert not (ws / "trials").exists() and not (ws / "ray").exists()  # nothing launched
    assert main(["status", str(ws)]) == 0
    assert "never started" in capsys.readouterr().out


def test_ray_start_up_timeout_is_one_line(ray_session, tmp_path, capsys, monkeypatch) -> None:
    """An overloaded machine where Ray's local start times out (Ray raises a bare Exception after
    30 s) gets one line and exit code 1, not Ray's traceback, and the workspace says why. The
    timeout is Ray's exception, raised by a stand-in for ``ray.init``: a real one needs a machine
    too busy for Ray to start. Then ``automl resume`` (with Ray back) starts the experiment from
    the beginning: it used to send the user back to ``automl run``, which refused the workspace."""
    import ray

    message = ("The current node timed out during startup. This could happen because some of "
               "the raylet failed to startup or the GCS has become overloaded.")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: (_ for _ in ()).throw(Exception(message)))
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    ws = tmp_path / "ws"
    code = main(["run", "--skill-dir", str(make_fake_skill(tmp_path / "skill")), "--workspace",
                 str(ws), "--progress", "none", "--max-recommendations", "1", "--max-epochs", "1"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err, (code, out, err)
    assert err.strip().splitlines() == [err.strip()] and err.startswith("error: Ray did not start"), err
    assert "timed out during startup" in err and "ray start --head" in err
    state = json.loads((ws / "state.json").read_text())
    assert state["state"] == "failed" and "Ray did not start in time" in state["failures"]

    monkeypatch.undo()
    assert main(["resume", str(ws), "--progress", "none"]) == 0
    assert "no trial was launched before: starting the experiment" in capsys.readouterr().out
    assert json.loads((ws / "state.json").read_text())["state"] == "completed"
    assert len(json.loads((ws / "best_rec.json").read_text())["all_recs"]) == 1


def test_gpus_per_trial_without_gpus_fails_fast(ray_session, tmp_path, capsys, monkeypatch) -> None:
    import time

    if ray_session.cluster_resources().get("GPU", 0) >= 1:
        pytest.skip("this machine has a GPU: --gpus-per-trial 1 is satisfiable")
    import automl.run.engine

    monkeypatch.setattr(automl.run.engine, "execute", lambda *a, **k: pytest.fail("launched"))
    skill = make_fake_skill(tmp_path / "skill")
    before = snapshot(tmp_path)
    started = time.monotonic()
    code = main(["run", "--skill-dir", str(skill), "--workspace", str(tmp_path / "ws"),
                 "--progress", "none", "--gpus-per-trial", "1"])
    out, err = capsys.readouterr()
    assert time.monotonic() - started < 10
    assert_one_line_error(code, out, err, ("--gpus-per-trial 1", "0 GPU(s)", "--gpus-per-trial 0"))
    assert not (tmp_path / "ws").exists() and snapshot(tmp_path) == before


def test_resume_an_experiment_whose_trials_all_failed(experiments, capsys) -> None:
    """It would run nothing (Tune does not rerun errored trials) and end without an answer."""
    ws = experiments["failed"]
    before = snapshot(ws)
    code = main(["resume", str(ws)])
    out, err = capsys.readouterr()
    assert_one_line_error(code, out, err, (str(ws), "every trial of this experiment failed",
                                           "resuming would run nothing", f"automl status {ws}",
                                           "automl run"))
    assert snapshot(ws) == before


@pytest.mark.parametrize("name, content", [
    ("history.json", '{"version": 1, "trials": [{"rec_id": "a", "par'),  # torn
    ("history.json", "[]"),
    ("state.json", '{"state": "runn'),
    ("state.json", ""),
])
def test_resume_with_a_corrupted_state_file(experiments, tmp_path, capsys, name, content) -> None:
    """A torn history.json/state.json (ours are written atomically; another tool or a disk
    error can still break them) is one line naming the file and `automl recover`, which repairs
    it so that the experiment can be resumed."""
    from automl.run.engine import _check_resumable
    from automl.results.workspace import Workspace

    ws = tmp_path / "ws"
    shutil.copytree(experiments["done"], ws)
    (ws / "state.json").write_text(json.dumps({"state": "running", "pid": 1}))
    (ws / name).write_text(content)
    before = snapshot(ws)
    code = main(["resume", str(ws)])
    out, err = capsys.readouterr()
    assert_one_line_error(code, out, err, (f"{ws / name}: unreadable", f"automl recover {ws}",
                                           "then resume"))
    assert snapshot(ws) == before
    assert main(["recover", str(ws)]) == 0
    capsys.readouterr()
    _check_resumable(Workspace.open(ws))  # resumable now
    assert json.loads((ws / "state.json").read_text())["state"] in ("running", "interrupted")
