"""``automl`` command line.

Every user mistake surfaces as :class:`~automl.errors.UserError`: one line on stderr, exit 2, no
traceback, nothing launched. Commands are thin: they parse, call one module, print.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from automl.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line (exit 2) instead of usage + message, and
    takes no abbreviations (``--max-epoch 3`` must not silently mean ``--max-epochs``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message} (see {self.prog} --help)")


def cmd_run(args: argparse.Namespace) -> int:
    from automl.commands.run import main_run

    return main_run(args)


def cmd_resume(args: argparse.Namespace) -> int:
    from automl.commands.run import main_resume

    return main_resume(args)


def cmd_space(args: argparse.Namespace) -> int:
    from automl.commands.space import main_space

    return main_space(args)


def cmd_best(args: argparse.Namespace) -> int:
    from automl.commands.best import main_best

    return main_best(args)


def cmd_status(args: argparse.Namespace) -> int:
    from automl.commands.status import print_status

    return print_status(Path(args.workspace))


def cmd_ui(args: argparse.Namespace) -> int:
    from automl.commands.ui import main_ui

    return main_ui(args)


def cmd_handoff(args: argparse.Namespace) -> int:
    from automl.commands.handoff import main_handoff

    return main_handoff(args)


def cmd_recover(args: argparse.Namespace) -> int:
    from automl.commands.recover import main_recover

    return main_recover(args)


def cmd_report(args: argparse.Namespace) -> int:
    from automl.commands.report import main_report

    return main_report(args)


def cmd_list(args: argparse.Namespace) -> int:
    from automl.commands.status import print_list

    return print_list(Path(args.root))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="automl", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="run an experiment (default: bundled SegFormer on generated data)")
    from automl.commands.run import add_run_flags

    add_run_flags(run)
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="continue an interrupted or canceled experiment")
    resume.add_argument("workspace", type=Path)
    resume.add_argument("--progress", help="auto | rich | plain | none")
    resume.add_argument("--address", help="Ray cluster to resume on (default: the one it ran on)")
    resume.set_defaults(func=cmd_resume)

    space = sub.add_parser("space", help="print the search space derived from a skill's schema")
    space.add_argument("--skill-dir", type=Path)
    space.add_argument("--space-file", type=Path)
    space.add_argument("--range", dest="ranges", action="append", metavar="NAME=MIN:MAX")
    space.add_argument("--options", action="append", metavar="NAME=A,B")
    space.add_argument("--pin", dest="pins", action="append", metavar="NAME=VALUE")
    space.add_argument("--json", action="store_true")
    space.set_defaults(func=cmd_space)

    best = sub.add_parser("best", help="print the best trial of a workspace")
    best.add_argument("workspace", type=Path)
    best.add_argument("--json", action="store_true", help="print best_rec.json")
    best.add_argument("--pareto", action="store_true",
                      help="print the Pareto front (every member's objectives and checkpoint)")
    best.set_defaults(func=cmd_best)

    status = sub.add_parser("status", help="progress of a running or finished experiment")
    status.add_argument("workspace", type=Path)
    status.set_defaults(func=cmd_status)

    handoff = sub.add_parser("handoff", help="write (and --run) evaluate/export/inference/"
                                             "quantize for the best trial's exact checkpoint")
    handoff.add_argument("action", help="evaluate | export | inference | quantize")
    handoff.add_argument("workspace", type=Path)
    handoff.add_argument("--root-dir", type=Path, help="dataset for the action (default: training's)")
    handoff.add_argument("--data", action="append", metavar="KEY=PATH",
                         help="an input the action declares (repeatable; default: training's)")
    handoff.add_argument("--run", action="store_true", help="run the action and report its KPIs")
    handoff.add_argument("--checkpoint", default="best", help="best (default) or latest")
    handoff.add_argument("--trial", metavar="ID", help="hand off this trial instead of the best "
                         "(a Pareto-front member: see automl best WS --pareto)")
    handoff.add_argument("--set", dest="set_", action="append", metavar="KEY=VALUE")
    handoff.set_defaults(func=cmd_handoff)

    recover = sub.add_parser("recover", help="rebuild history.json/best_rec.json from trial folders")
    recover.add_argument("workspace", type=Path)
    recover.set_defaults(func=cmd_recover)

    report = sub.add_parser("report", help="write an HTML report with plots of an experiment")
    report.add_argument("workspace", type=Path)
    report.add_argument("--out", type=Path, help="folder for index.html and PNGs "
                                                 "(default: WORKSPACE/report)")
    report.set_defaults(func=cmd_report)

    ui = sub.add_parser("ui", help="serve the MLflow UI of a workspace on 127.0.0.1")
    ui.add_argument("workspace", type=Path, nargs="?", help="default: the latest workspace")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--no-browser", dest="browser", action="store_false",
                    help="print the runs URL without opening a browser")
    ui.set_defaults(func=cmd_ui)

    listing = sub.add_parser("list", help="list experiments under a folder")
    listing.add_argument("root", nargs="?", default="automl-workspaces")
    listing.set_defaults(func=cmd_list)
    from automl.commands.cleanup import add_parser as add_cleanup_parser

    add_cleanup_parser(sub)
    from automl.commands.serve import add_parser as add_serve_parser
    from automl.commands.token import add_parser as add_token_parser

    add_serve_parser(sub)
    add_token_parser(sub)
    for command in REMOTE_COMMANDS:
        sub.choices[command].add_argument(
            "--server", help="talk to `automl serve` at this URL (or AUTOML_SERVER; token from "
                             "AUTOML_TOKEN); WORKSPACE is then an experiment id")
    return parser


# Commands that talk to a server instead of running locally when --server/AUTOML_SERVER is set.
REMOTE_COMMANDS = ("run", "status", "list", "best", "handoff")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        if args.command in REMOTE_COMMANDS and (args.server or os.environ.get("AUTOML_SERVER")):
            from automl.remote import main_remote

            return main_remote(args)
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("canceled", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `automl best WS | head -2`: the reader left. As Python's docs advise, point stdout at
        # /dev/null so the flush at exit does not fail again; exit 1 with no traceback, as rich
        # does for the commands that print tables (Console.on_broken_pipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
