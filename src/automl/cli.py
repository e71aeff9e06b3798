"""``automl`` command line.

Every user mistake surfaces as :class:`~automl.errors.UserError`: one line on stderr, exit 2, no
traceback, nothing launched. Commands are thin: they parse, call one module, print.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing
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


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """``automl run``'s flags, one per Settings field, built from the field's :class:`Flag` and
    type: a setting is declared once, in :class:`automl.study.Settings`."""
    from automl.study import Settings, flag_of, flag_name

    p.add_argument("--study", type=Path,
                   help="YAML study file with any of these settings (flags win)")
    for field, info in Settings.model_fields.items():
        flag = flag_of(field)
        if flag is not None:
            p.add_argument(flag_name(field), dest=field, metavar=flag.metavar, help=flag.help,
                           **_argparse_kind(info.annotation, flag.const))


def _argparse_kind(annotation: Any, const: Any = True) -> dict[str, Any]:
    """How argparse reads a value of ``annotation``: repeatable lists and KEY=VALUE overrides
    append, a bool is a switch, paths and numbers are converted (pydantic validates the rest)."""
    kinds = set(typing.get_args(annotation)) | {typing.get_origin(annotation) or annotation}
    if kinds & {list, dict}:
        items = typing.get_args(annotation)
        return {"action": "append", **({"type": Path} if Path in items else {})}
    if bool in kinds:
        return {"action": "store_const", "const": const}
    converter = next((k for k in (Path, int, float) if k in kinds), None)
    return {"type": converter} if converter else {}


def _run_flag_fields() -> list[str]:
    from automl.study import Settings, flag_of

    return [field for field in Settings.model_fields if flag_of(field) is not None]


# The embedded default is sized to finish in minutes on a 2-core laptop.
EMBEDDED_DEFAULTS = {"max_recommendations": 6, "name": "segformer-quickstart"}


def _settings(args: argparse.Namespace):
    from automl.skill.spec import parse_assignments, parse_paths
    from automl.study import load_study, make_settings

    study = load_study(args.study) if args.study else {}
    flags: dict[str, Any] = {f: getattr(args, f) for f in _run_flag_fields()}
    if flags.get("overrides"):
        flags["overrides"] = parse_assignments(flags["overrides"])
    if flags.get("data"):
        flags["data"] = parse_paths(flags["data"], "--data")
    if study.get("skill_dir") is None and flags.get("skill_dir") is None:
        study = {**EMBEDDED_DEFAULTS, **study}
    return make_settings(study, flags)


def cmd_run(args: argparse.Namespace) -> int:
    from automl.run import engine

    prepared = engine.prepare(_settings(args))
    return _execute(prepared, restore=False)


def cmd_resume(args: argparse.Namespace) -> int:
    from automl.run import engine

    prepared = engine.prepare_resume(args.workspace)
    update = {k: getattr(args, k) for k in ("progress", "address") if getattr(args, k)}
    if update:  # a server restarted with a new Ray instance resumes its runs on that one
        prepared.settings = prepared.settings.model_copy(update=update)
    restore = engine.launched(prepared.workspace)
    if not restore:
        print("no trial was launched before: starting the experiment as it was set up", flush=True)
    return _execute(prepared, restore=restore)


def _trial_count(settings) -> int:
    """PBT/PB2 train a fixed population; the other algorithms try max_recommendations configs."""
    from automl.algorithms import get_algorithm

    return get_algorithm(settings.algo).trial_count(settings.max_recommendations,
                                                    settings.population_size)


def _execute(prepared, restore: bool) -> int:
    from automl.run import engine
    from automl.observers.progress import make_progress
    from automl.observers.tracking_store import resolve_tracking_uri
    from automl.observers.tracking_worker import TrackingProcess

    settings = prepared.settings
    print(f"workspace: {prepared.workspace.path}" + (" (resuming)" if restore else ""))
    plain = settings.automl_policy == "off"
    algorithm = "none (automl_policy: off)" if plain else settings.algo
    objectives = prepared.objectives
    shown = ", ".join(f"{o.metric} ({o.direction})" for o in objectives) if objectives \
        else f"{settings.metric} ({settings.direction})"
    label = "metric" if not objectives or len(objectives) == 1 else \
        f"objectives [{objectives.scalarize}]"
    print(f"algorithm: {algorithm} | {label}: {shown} | "
          f"trials: {_trial_count(settings)} | budget: {prepared.budget} epochs | "
          f"concurrent: {prepared.max_concurrent} | seed: {prepared.seed}")
    if plain:
        print("automl_policy: off: one plain training with the spec template and the --set "
              "overrides, no search (best_rec.json and hand-off as usual)")
    else:
        print(f"search space: {len(prepared.space.params)} parameters"
              + (f", {len(prepared.space.pinned)} pinned" if prepared.space.pinned else ""))
    for note in prepared.builder.notes():
        print(f"note: {note}")
    progress = make_progress(settings.progress, settings.metric, settings.direction,
                             _trial_count(settings))
    tracking_uri = resolve_tracking_uri(prepared.workspace.path, settings.tracking_uri)
    # A new workspace store starts as a copy of an empty one kept beside the workspaces (MLflow's
    # schema migrations take ~7 s per new store): see automl.observers.tracking.
    shared = prepared.workspace.shared_dir(settings.workspace_root)
    # MLflow runs in its own process, which opens the store while the engine starts Ray.
    tracker = TrackingProcess(tracking_uri, f"automl-{prepared.skill.name}",
                              prepared.workspace.path,
                              template_dir=shared / "_cache" if shared else None)
    try:
        doc = engine.execute(prepared, observers=[progress, tracker], restore=restore)
    finally:
        progress.close()
        tracker.close()
    state = prepared.workspace.state()
    if state.get("state") == "cancelled":
        print(f"cancelled: what finished is kept; continue with `automl resume "
              f"{prepared.workspace.path}`")
    if state.get("failures"):
        print(f"failures: {state['failures']}")
    if state.get("reclaimed_bytes"):
        from automl.results.retention import format_bytes

        print(f"checkpoints: kept the best trial's, reclaimed {format_bytes(state['reclaimed_bytes'])}"
              f" (--keep-checkpoints all keeps every one)")
    from automl.secrets import redact_uri

    print(f"MLflow: {redact_uri(tracking_uri)}  (browse: automl ui {prepared.workspace.path})")
    code = _print_best(doc, prepared.workspace.path)
    return 130 if state.get("state") == "cancelled" else code


def _print_best(doc: dict[str, Any], workspace: Path) -> int:
    from automl.observers.progress import _fmt

    best = doc.get("best")
    if not best:
        print(f"no trial produced a finite {doc['metric_name']}; see {workspace}/history.json",
              file=sys.stderr)
        return 1
    print(f"\nbest trial: {best['rec_id']}  {doc['metric_name']} = {best['score']:.4f} "
          f"(observed at {best['observed_budget']} epochs)")
    print("hyperparameters:")
    from automl.skill.spec import flatten

    for key, value in flatten(best["specs"]).items():
        print(f"  {key} = {_fmt(value)}")
    _print_baseline(doc)
    if len(doc.get("objectives") or []) > 1:
        print(f"Pareto front: {len(doc.get('pareto_front') or [])} trial(s) "
              f"(automl best {workspace} --pareto)")
    if best.get("checkpoint_uri"):
        print(f"checkpoint: {best['checkpoint_uri']}")
    else:
        # The score counts (the trainer reported it), but there is no model file to hand off.
        print("checkpoint: none")
        train_dir = workspace / "trials" / str(best["rec_id"]) / "results" / "train"
        print(f"warning: best trial {best['rec_id']} has no checkpoint of epoch "
              f"{best['observed_budget']} in {train_dir} (the trainer did not write it, or "
              f"deleted it): its score counts, but there is no model to hand off; train again "
              f"with these hyperparameters", file=sys.stderr)
    print(f"best_rec.json: {workspace / 'best_rec.json'}")
    return 0


def cmd_space(args: argparse.Namespace) -> int:
    from automl.space.user_space import space_for_cli
    from automl.skill.folder import SkillDir, bundled_skill_dir

    skill = SkillDir.load(args.skill_dir or bundled_skill_dir())
    space = space_for_cli(skill, args.space_file, args.ranges or [], args.options or [],
                          args.pins or [])
    rows = space.rows()
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    from automl.networks import profile_for

    profile = profile_for(skill)
    objective = (f"metric {profile.metric} ({profile.objective(None, None, skill.name)[1]}, "
                 f"TAO's monitoring metric)" if profile.metric else
                 "no published metric: pass --metric")
    table = Table(title=f"search space of {skill.name} ({len(space.params)} parameters)\n"
                        f"network {profile.network_arch}: {objective}")
    columns = list(rows[0]) if rows else []
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    Console(width=max(160, Console().width)).print(table)
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    from automl.results.best import read_best_rec
    from automl.results.workspace import Workspace

    workspace = Workspace.open(args.workspace)
    if not workspace.best_rec.exists():
        raise UserError(f"{workspace.path}: no best_rec.json yet (the experiment has not finished); "
                        f"see `automl status {workspace.path}`")
    doc = read_best_rec(workspace.best_rec)
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    if not doc.get("best"):
        raise UserError(f"{workspace.path}: no trial of this experiment produced a finite "
                        f"{doc['metric_name']}, so there is no checkpoint to hand off; see "
                        f"`automl status {workspace.path}` for why they failed")
    if args.pareto:
        _print_front(doc)
        return 0
    return _print_best(doc, workspace.path)


def _print_front(doc: dict[str, Any]) -> None:
    """``automl best --pareto``: one line per front member, its objectives and checkpoint."""
    from automl.space.params import format_value as _fmt

    names = [o["metric"] for o in doc.get("objectives") or []] or [doc["metric_name"]]
    ways = {o["metric"]: o["direction"] for o in doc.get("objectives") or []}
    front = doc.get("pareto_front") or []
    print(f"Pareto front: {len(front)} trial(s) at the largest budget, objectives "
          + ", ".join(f"{n} ({ways.get(n, doc['direction'])})" for n in names))
    for member in front:
        values = "  ".join(f"{n}={_fmt(member['objectives'].get(n))}" for n in names)
        mark = " (best)" if member["rec_id"] == (doc.get("best") or {}).get("rec_id") else ""
        print(f"  {member['rec_id']}{mark}  {values}  epochs={member['observed_budget']}  "
              f"checkpoint: {member.get('checkpoint_uri') or 'none'}")
    print("hand off any of them: automl handoff ACTION WORKSPACE --trial ID")


def _print_baseline(doc: dict[str, Any]) -> None:
    """The best trial's gain over the template's configuration (or why there is none)."""
    from automl.space.params import format_value as _fmt

    if "baseline" not in doc:  # a result written without a baseline (recover, older runs)
        return
    comparison = doc.get("comparison_to_baseline")
    if not comparison:
        print(f"baseline: {doc.get('baseline_note') or 'none'}")
        return
    for name, gain in comparison.items():
        relative = gain.get("relative_gain")
        share = f" ({relative:+.0%})" if relative is not None else ""
        print(f"gain: {gain['difference']:+.4g} {name}{share} over the template's configuration "
              f"(trial {doc['baseline']['rec_id']}: {name} = {_fmt(gain['baseline'])}; "
              f"{'better' if gain['gain'] > 0 else 'not better' if gain['gain'] == 0 else 'worse'}"
              f", {gain['direction']})")


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
    from automl.resume.recover import main_recover

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
    _add_run_flags(run)
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="continue an interrupted or cancelled experiment")
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
    from automl.service.server import add_parser as add_serve_parser
    from automl.service.tokens_cli import add_parser as add_token_parser

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
        print("cancelled", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `automl best WS | head -2`: the reader left. As Python's docs advise, point stdout at
        # /dev/null so the flush at exit does not fail again; exit 1 with no traceback, as rich
        # does for the commands that print tables (Console.on_broken_pipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
