"""``automl cleanup [--experiment NAME]``: remove trial containers an experiment left behind.

Every trial container is labelled ``automl=1`` and ``automl.experiment=<workspace folder name>``.
The controller removes its containers when it exits, is interrupted or is terminated; only a hard
kill (SIGKILL, power loss, a node lost) can leave some running. This command removes them: all of
one experiment (``--experiment`` takes the workspace name or its path), or every automl container
of this Docker engine (``DOCKER_HOST`` is honoured).
"""

from __future__ import annotations

import argparse
from pathlib import Path

LABEL_EXPERIMENT = "automl.experiment"


def experiment_label(experiment: str | Path) -> str:
    """The label value of an experiment given as a workspace name or a workspace path."""
    text = str(experiment).rstrip("/")
    return Path(text).name if "/" in text else text


def cleanup(experiment: str | None = None) -> int:
    """Force-remove leftover containers labelled ``automl=1`` (and ``experiment``); the count.

    Raises :class:`~automl.errors.UserError` when no Docker engine can be reached.
    """
    from launchers import LAUNCHERS

    labels = {LABEL_EXPERIMENT: experiment_label(experiment)} if experiment else {}
    return sum(launcher.cleanup_leftovers(labels) for launcher in LAUNCHERS.values())


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``cleanup`` on the CLI's subparsers."""
    parser = sub.add_parser("cleanup", help="remove trial containers left by killed experiments")
    parser.add_argument("--experiment", metavar="NAME",
                        help="only this experiment (workspace name or path); default: all")
    parser.set_defaults(func=main_cleanup)
    return parser


def main_cleanup(args: argparse.Namespace) -> int:
    experiment = getattr(args, "experiment", None)
    removed = cleanup(experiment)
    scope = f"experiment {experiment_label(experiment)}" if experiment else "all experiments"
    print(f"removed {removed} container(s) of {scope}")
    return 0
