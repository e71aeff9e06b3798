"""CLI surface: study files, `space`, `best`, `status`, `list` (on real fake-trainer experiments)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from automl.cli import main
from tests.helpers.processes import cli, start_run, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_studies_validate():
    """Every shipped study loads, and each of its keys reaches the settings with its value
    (a key dropped or renamed on the way would run a different experiment)."""
    import yaml

    from automl.study import load_study, make_settings

    studies = sorted((ROOT / "studies").glob("*.yaml"))
    assert len(studies) >= 4
    for path in studies:
        written = yaml.safe_load(path.read_text())
        settings = make_settings(load_study(path), {}).model_dump(mode="json")
        assert written, path
        for key, value in written.items():
            resolved = settings[key]
            if isinstance(value, str) and key in ("skill_dir", "root_dir", "workspace",
                                                  "workspace_root", "space_file"):
                # relative paths are resolved beside the study file when they exist there
                assert Path(resolved) in (Path(value), path.parent / value), (path, key)
            else:
                assert resolved == value, (path, key, resolved, value)


def test_study_unknown_key_and_syntax_error(tmp_path, capsys):
    bad = tmp_path / "s.yaml"
    bad.write_text("algo: random\nmax_epoch: 3\n")
    assert main(["run", "--study", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'max_epoch'" in err and "max_epochs" in err
    bad.write_text("algo: random\nmax_epochs: [3\n")
    assert main(["run", "--study", str(bad)]) == 2
    assert "s.yaml:3:" in capsys.readouterr().err


def test_space_command_prints_every_param(capsys):
    from tests.helpers.skills import shared_tao

    skill = shared_tao() / "tao-train-segformer"
    assert main(["space", "--skill-dir", str(skill), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    searched = [r for r in rows if r.get("status", "search") == "search"]
    assert len(searched) == 16
    lr = next(r for r in rows if r["name"] == "train.optim.lr")
    assert lr["scale"] == "log" and "Infinity" in lr["source"]


@pytest.mark.usefixtures("ray_session")
def test_flags_override_study_and_best_status_list(fake_skill, tmp_path, capsys):
    study = tmp_path / "study.yaml"
    study.write_text(f"skill_dir: {fake_skill}\nalgo: bayesian\nmax_recommendations: 5\n"
                     f"max_epochs: 2\nprogress: none\nseed: 3\n")
    ws = tmp_path / "exps" / "one"
    assert main(["run", "--study", str(study), "--workspace", str(ws), "--algo", "random",
                 "--max-recommendations", "2"]) == 0
    experiment = (ws / "experiment.yaml").read_text()
    assert "algo: random" in experiment and "max_recommendations: 2" in experiment
    capsys.readouterr()
    assert main(["best", str(ws), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["best"]["observed_budget"] == 2
    assert main(["status", str(ws)]) == 0
    out = capsys.readouterr().out
    assert "completed" in out and "2/2 trials finished" in out
    assert main(["list", str(tmp_path / "exps")]) == 0
    assert "one" in capsys.readouterr().out
    assert main(["best", str(tmp_path)]) == 2  # not a workspace


def test_status_of_a_running_experiment(fake_skill, tmp_path):
    ws = tmp_path / "running"
    proc = start_run(fake_skill, ws, "--algo", "random", "--max-recommendations", "3",
                     "--max-epochs", "4", "--max-concurrent", "1", "--set", "fake.epoch_s=0.7",
                     "--seed", "1")
    try:
        def running() -> str:
            out = cli("status", str(ws)).stdout if (ws / "history.json").exists() else ""
            return out if "running" in out and "epoch" in out else ""

        out = wait_until(running, proc, timeout=90, what="a running trial in `automl status`",
                         poll_s=0.5)
        assert ": running" in out and " running epoch" in out, out
        # A second run on the same workspace is refused while the first holds it.
        res = cli("run", "--skill-dir", str(fake_skill), "--workspace", str(ws))
        assert res.returncode == 2 and "already holds an experiment" in res.stderr
        assert proc.wait(timeout=120) == 0
        assert "completed" in cli("list", str(tmp_path)).stdout
    finally:
        proc.kill()


def test_abbreviated_flags_are_refused(capsys):
    assert main(["run", "--max-epoch", "3"]) == 2
    assert "unrecognized arguments: --max-epoch" in capsys.readouterr().err


def test_failing_trials_print_no_traceback(fake_skill, tmp_path):
    """Trial failures are classified lines; Ray's 'Unhandled error' tracebacks stay hidden."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("AUTOML_DEBUG", None)
    res = subprocess.run([sys.executable, "-m", "automl.cli", "run", "--skill-dir", str(fake_skill),
                          "--workspace", str(tmp_path / "ws"), "--progress", "plain",
                          "--max-recommendations", "4", "--max-concurrent", "2",
                          "--set", "fake.mode=crash_early"],
                         capture_output=True, text=True, env=env, timeout=240)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "failed" in res.stdout + res.stderr
    # (the fake trainer's own one-line message is "Traceback: RuntimeError: boom")
    assert "most recent call last" not in res.stdout + res.stderr, res.stderr
    assert "Unhandled error" not in res.stderr, res.stderr


@pytest.mark.parametrize("argv", [["space", "--json"], ["space"]], ids=["print", "rich-table"])
def test_output_piped_into_a_reader_that_leaves_is_no_traceback(argv):
    """``automl space --json | head -1``: the reader closes the pipe while automl still writes;
    automl exits 1 with nothing on stderr (plain print here, rich's own handling for tables)."""
    proc = subprocess.Popen([sys.executable, "-m", "automl.cli", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "200"})
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1, err
    assert err == "", err
