"""The registries are the one list of algorithms, launchers and settings: everything derived
from them (settings literal, CLI flags and help, README table) must agree with them."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from automl.algorithms import ALGORITHMS, DEFAULT, get_algorithm, markdown_table
from automl.cli import build_parser
from automl.errors import UserError
from automl.study import Settings, flag_name, load_study
from launchers import LAUNCHERS
from launchers.base import Launcher

ROOT = Path(__file__).resolve().parents[2]


def _run_parser():
    return build_parser()._subparsers._group_actions[0].choices["run"]


def test_settings_literals_are_the_registries():
    assert typing.get_args(Settings.model_fields["algo"].annotation) == tuple(ALGORITHMS)
    assert typing.get_args(Settings.model_fields["launcher"].annotation) == tuple(LAUNCHERS)
    assert Settings().algo == DEFAULT


def test_every_setting_is_a_run_flag_and_every_run_flag_a_setting():
    actions = {a.dest: a for a in _run_parser()._actions if a.dest not in ("help", "study", "server")}
    assert set(actions) == set(Settings.model_fields)
    for field, action in actions.items():
        assert flag_name(field) in action.option_strings


def test_algo_help_lists_every_algorithm():
    (algo,) = [a for a in _run_parser()._actions if a.dest == "algo"]
    assert algo.help.split(" | ") == list(ALGORITHMS)


def test_readme_table_is_the_registry():
    assert markdown_table() in (ROOT / "README.md").read_text(), \
        "README's algorithm table differs from automl.algorithms.ALGORITHMS: paste markdown_table()"


def test_algorithm_modules_exist_and_plan():
    for name, algorithm in ALGORITHMS.items():
        module = __import__(f"automl.algorithms.{algorithm.module}", fromlist=["plan"])
        assert callable(module.plan), name


def test_trial_count_comes_from_the_entry():
    assert get_algorithm("pbt").trial_count(20, 4) == 4
    assert get_algorithm("asha").trial_count(20, 4) == 20
    with pytest.raises(UserError, match="--algo nope"):
        get_algorithm("nope")


def test_study_file_refuses_an_unregistered_algorithm(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text("algo: hyperbnad\n")
    with pytest.raises(UserError, match="'algo' = 'hyperbnad'"):
        load_study(study)


def test_launchers_declare_the_cleanup_verbs():
    for name, launcher in LAUNCHERS.items():
        assert issubclass(launcher, Launcher) and launcher.name == name
        for verb in ("close", "cleanup_all", "cleanup_leftovers", "from_settings"):
            assert callable(getattr(launcher, verb)), (name, verb)
    assert LAUNCHERS["local"]().close("exp") == 0 and LAUNCHERS["local"]().cleanup_all({}) == 0
