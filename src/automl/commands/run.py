"""``automl run`` and ``automl resume``: settings from flags and a study file, the experiment
run with live progress and MLflow, and the answer printed.

The flags are generated from :class:`automl.study.Settings` (a setting is declared once there).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any

from automl.commands.best import print_best
from automl.results.workspace import CANCELED
from automl.study import EMBEDDED_DEFAULTS, run_flag_fields, trial_count


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """``automl run``'s flags, one per Settings field, built from the field's :class:`Flag` and
    type: a setting is declared once, in :class:`automl.study.Settings`."""
    from automl.study import Settings, flag_of, flag_name

    p.add_argument("--study", type=Path,
                   help="YAML study file with any of these settings (flags win)")
    for field, info in Settings.model_fields.items():
        flag = flag_of(field)
        if flag is not None:
            p.add_argument(flag_name(field), dest=field, metavar=flag.metavar, help=flag.help,
                           **argparse_kind(info.annotation, flag.const))


def argparse_kind(annotation: Any, const: Any = True) -> dict[str, Any]:
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


def settings_from_args(args: argparse.Namespace):
    """The experiment's Settings: the study file's values, the flags the user gave on top, and
    the embedded default's when no skill is named."""
    from automl.skill.spec import parse_assignments, parse_paths
    from automl.study import load_study, make_settings

    study = load_study(args.study) if args.study else {}
    flags: dict[str, Any] = {f: getattr(args, f) for f in run_flag_fields()}
    if flags.get("overrides"):
        flags["overrides"] = parse_assignments(flags["overrides"])
    if flags.get("data"):
        flags["data"] = parse_paths(flags["data"], "--data")
    if study.get("skill_dir") is None and flags.get("skill_dir") is None:
        study = {**EMBEDDED_DEFAULTS, **study}
    return make_settings(study, flags)


def main_run(args: argparse.Namespace) -> int:
    from automl.run import engine

    prepared = engine.prepare(settings_from_args(args))
    return execute(prepared, restore=False)


def main_resume(args: argparse.Namespace) -> int:
    from automl.run import engine

    prepared = engine.prepare_resume(args.workspace)
    update = {k: getattr(args, k) for k in ("progress", "address") if getattr(args, k)}
    if update:  # a server restarted with a new Ray instance resumes its runs on that one
        prepared = dataclasses.replace(
            prepared, settings=prepared.settings.model_copy(update=update))
    restore = engine.launched(prepared.workspace)
    if not restore:
        print("no trial was launched before: starting the experiment as it was set up", flush=True)
    return execute(prepared, restore=restore)


def execute(prepared, restore: bool) -> int:
    from automl.run import engine
    from automl.observers.progress import make_progress
    from automl.observers.tracking_store import resolve_tracking_uri
    from automl.observers.tracking_worker import TrackingProcess

    settings = prepared.settings
    print(f"workspace: {prepared.workspace.path}" + (" (resuming)" if restore else ""))
    plain = settings.automl_policy == "off"
    algorithm = "none (automl_policy: off)" if plain else settings.algo
    objectives = prepared.objectives
    shown = ", ".join(f"{o.metric} ({o.direction})" for o in objectives)
    label = "metric" if len(objectives) == 1 else f"objectives [{objectives.scalarize}]"
    print(f"algorithm: {algorithm} | {label}: {shown} | "
          f"trials: {trial_count(settings)} | budget: {prepared.budget} epochs | "
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
                             trial_count(settings))
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
    if state.get("state") == CANCELED:
        print(f"canceled: what finished is kept; continue with `automl resume "
              f"{prepared.workspace.path}`")
    if state.get("failures"):
        print(f"failures: {state['failures']}")
    if state.get("reclaimed_bytes"):
        from automl.results.retention import format_bytes

        print(f"checkpoints: kept the best trial's, reclaimed {format_bytes(state['reclaimed_bytes'])}"
              f" (--keep-checkpoints all keeps every one)")
    from automl.secrets import redact_uri

    print(f"MLflow: {redact_uri(tracking_uri)}  (browse: automl ui {prepared.workspace.path})")
    code = print_best(doc, prepared.workspace.path)
    return 130 if state.get("state") == CANCELED else code
