"""Hand-off: the spec (and optionally the run) of a downstream action on the best trial's model.

``automl handoff evaluate|export|inference|quantize WORKSPACE`` writes
``<workspace>/handoff/<action>/spec.yaml`` from the skill's ``spec_template_<action>.yaml``:

* the model is the experiment's answer: the **exact** checkpoint file named in ``best_rec.json``
  (the epoch that was scored), never "latest" unless ``--checkpoint latest`` asks for it;
* the model goes to the key ``skill_info.yaml`` ``spec_params.<action>`` marks ``parent_model``,
  and the keys it marks as outputs (``create_onnx_file``, ``create_engine_file``, ...) to files
  inside ``<workspace>/handoff/<action>/``, as ``results_dir``;
* everything the action template shares with the best trial's own ``spec.yaml`` follows the
  trained model (classes, image size, the dataset keys, the whole ``model`` section,
  ``encryption_key``, ...). Not copied: every ``results_dir``, the train resume path, and the
  sections of the hand-off actions themselves (``evaluate.*``, ``export.*``, ...), which come
  from the action's template;
* the network's profile adds what no file says (:mod:`automl.networks`): SegFormer's
  ``export.input_height/width`` = ``dataset.segment.img_size``, and its quantize calibration
  images default to the training split's images;
* ``--root-dir`` (a network with one dataset folder) and ``--data KEY=PATH`` (any input the
  action declares) point the action at another dataset (e.g. an evaluation set); ``--set`` sets
  any other key the action's template or schema knows.

With ``run=True`` the action's command (``skill_info.yaml`` ``actions.<action>.command``) runs
where the experiment's trials ran: through the launcher of its recorded settings (experiment.yaml),
so a Docker experiment's action runs in its image, with the dataset, the action's declared inputs
and the checkpoint's folder mounted read-only and the hand-off folder read-write. Its log goes to
``<workspace>/handoff/<action>/<action>.log`` and its KPIs are read from
``results/<action>/status.json``. Secret values (``encryption_key``, tokens) are never printed,
not even when they appear in the trainer's log.
"""

from __future__ import annotations

import copy
import json
import shlex
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from automl.contract import train_dir
from automl.networks.profile import UNSET_VALUES
from automl.tao.checkpoints import CheckpointFile, latest_checkpoint
from automl.errors import UserError, did_you_mean
from automl.secrets import is_secret_key, redact_text, secret_values
from automl.skill.spec import flatten, get_dotted, set_dotted, write_spec
from automl.results.workspace import Workspace

HANDOFF_DIR = "handoff"
CHECKPOINT_CHOICES = ("best", "latest")
# Where each action reads its model when skill_info.yaml's spec_params does not say
# (spec_params marks it with the value "parent_model").
DEFAULT_MODEL_KEYS = {
    "evaluate": "evaluate.checkpoint",
    "export": "export.checkpoint",
    "inference": "inference.checkpoint",
    "quantize": "quantize.model_path",
}
# File names of the outputs spec_params marks (create_<what>); others: the key's last part.
OUTPUT_FILES = {"create_onnx_file": "model.onnx", "create_engine_file": "model.engine",
                "create_pth_file": "model.pth"}
_MISSING = object()


@dataclass
class HandoffResult:
    """What :func:`handoff` wrote (and, with ``run``, what the action reported)."""

    action: str
    workspace: Path
    rec_id: str
    spec_path: Path
    checkpoint: Path
    checkpoint_kind: str  # "best" | "latest"
    results_dir: Path
    command: list[str]
    preserved: dict[str, Any] = field(default_factory=dict)  # keys copied from the trial's spec
    overrides: dict[str, Any] = field(default_factory=dict)  # --set / --root-dir, canonical keys
    defaults: dict[str, Any] = field(default_factory=dict)  # keys hand-off filled in (calibration)
    reasons: dict[str, str] = field(default_factory=dict)  # why each of ``defaults`` was filled
    launcher: str = "local"  # where --run runs the action (the experiment's launcher)
    metric_name: str = ""
    score: float | None = None  # the best trial's score (best_rec.json)
    headline: tuple[str, ...] = ()  # the network's keys that follow the trained model (summary)
    note: str = ""  # how the spec was made, when not from the action's own template
    log_path: Path | None = None
    exit_code: int | None = None  # None: not run
    # How the action ended per status.json (SUCCESS | FAILURE | ...): TAO's RUNNING
    # "<Action> finished successfully." counts as SUCCESS.
    status: str = ""
    kpis: dict[str, float] = field(default_factory=dict)
    message: str = ""
    failure_class: str | None = None
    hint: str = ""

    @property
    def ran(self) -> bool:
        return self.exit_code is not None

    @property
    def ok(self) -> bool:
        return not self.ran or (self.exit_code == 0 and self.status != "FAILURE")


# ---------------------------------------------------------------------------------------------
# Building the spec


def handoff(
    workspace: Path,
    action: str,
    root_dir: Path | None,
    run: bool,
    checkpoint: str = "best",
    overrides: dict | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    stream: Callable[[str], None] | None = None,
    trial: str | None = None,
) -> HandoffResult:
    """Write ``<workspace>/handoff/<action>/spec.yaml`` (and run the action when ``run``).

    ``overrides``: ``{dotted key or skill shorthand: value}`` (parsed ``--set``). ``stream``
    receives the action's log lines, secrets redacted, while it runs. ``data``: ``{input key:
    path}`` (``--data``), checked against the action's declared inputs. ``trial``: hand off this
    trial (a Pareto-front member, or any trial whose scored checkpoint is still there) instead
    of the best (``--trial ID``). Raises UserError for every
    problem a user can fix (unknown action, no best trial, missing checkpoint or template, ...).
    """
    from automl.networks import profile_for
    from automl.skill.folder import SkillDir

    ws = Workspace.open(Path(workspace))
    experiment = ws.read_experiment()
    settings = _experiment_settings(ws, experiment)
    if checkpoint not in CHECKPOINT_CHOICES:
        raise UserError(f"--checkpoint {checkpoint!r}: expected one of {', '.join(CHECKPOINT_CHOICES)}")
    skill_dir = experiment.get("skill_dir")
    if not skill_dir:
        raise UserError(f"{ws.experiment_file}: no skill_dir recorded; cannot find the action templates")
    skill = SkillDir.load(skill_dir)
    profile = profile_for(skill)
    valid = [a for a in skill.actions() if a != "train"]
    if action not in valid:
        raise UserError(f"unknown hand-off action '{action}'{did_you_mean(action, valid)}; "
                        f"{skill.name} has: {', '.join(valid) or 'none'}")
    best = _read_best(ws) if trial is None else _read_trial(ws, trial)
    rec_id = str(best["rec_id"])
    trial_dir = ws.trials / rec_id
    model_path = _resolve_checkpoint(ws, best, trial_dir, checkpoint)
    trained = _read_trial_spec(trial_dir)
    packaged = skill.template_path(action).is_file()
    template = skill.template(action) if packaged else _from_trained(trained, action, profile)

    out_dir = ws.path / HANDOFF_DIR / action
    results_dir = out_dir / "results"
    model_key = profile.model_key(action)
    outputs = profile.keys(action).outputs
    owned = {"results_dir", f"{action}.results_dir", model_key, *outputs}

    spec, preserved = merge_trained(template, trained, skip_sections=set(valid),
                                    not_preserved={profile.resume_key})
    user = _resolve_overrides(dict(overrides or {}), skill, action, template, owned, model_key)
    inputs = profile.data_inputs(action)
    paths = {k: user.pop(k) for k in list(user) if k in inputs}  # --set of a data key: checked too
    paths.update(data or {})
    if root_dir is not None and profile.root_key and profile.root_key not in inputs:
        raise UserError(f"--root-dir: {skill.name}'s {action} action reads no "
                        f"{profile.root_key}; pass --data KEY=PATH (inputs: "
                        f"{', '.join(inputs) or 'none'})")
    for key, path in profile.resolve_data(paths, root_dir, action).items():
        user[key] = str(path)
    for key, value in user.items():
        set_dotted(spec, key, value)

    set_dotted(spec, "results_dir", str(results_dir))
    if isinstance(get_dotted(spec, action, None), dict) and \
            get_dotted(spec, f"{action}.results_dir", _MISSING) is not _MISSING:
        set_dotted(spec, f"{action}.results_dir", str(results_dir / action))
    set_dotted(spec, model_key, str(model_path))
    for key in outputs:
        role = profile.keys(action).roles[key]
        set_dotted(spec, key, str(out_dir / OUTPUT_FILES.get(role, key.rsplit(".", 1)[-1])))
    rule = profile.extras.action_rules.get(action)
    filled = rule(spec, user, out_dir) if rule else {}
    defaults = {key: value for key, (value, _) in filled.items()}
    reasons = {key: why for key, (_, why) in filled.items()}
    missing = [k for k, i in inputs.items()
               if not i.optional and get_dotted(spec, k, None) in UNSET_VALUES]
    if missing:
        raise UserError(f"{action}: {missing[0]} is required (neither the trained spec nor "
                        f"the network's rules name it): pass --data {missing[0]}=PATH")

    spec_path = write_spec(spec, out_dir / "spec.yaml")
    from launchers import LAUNCHERS

    launcher = "local" if settings is None else settings.launcher
    command = skill.command(action, str(spec_path), local=LAUNCHERS[launcher].runs_on_host)
    result = HandoffResult(
        action=action, workspace=ws.path, rec_id=rec_id, spec_path=spec_path,
        checkpoint=model_path, checkpoint_kind=checkpoint, results_dir=results_dir,
        command=command, preserved=preserved, overrides=user, defaults=defaults, reasons=reasons,
        launcher=launcher,
        metric_name=_read_metric_name(ws), score=best.get("score"),
        headline=tuple(profile.extras.headline_keys),
        note="" if packaged else (
            f"no spec_template_{action}.yaml in {skill.name} (the skill bank packages only "
            f"train's): this spec is the trained spec with the {action} keys set; TAO fills "
            f"the rest of its {action} section from its defaults"),
    )
    if run:
        declared = set(profile.keys(action).inputs)
        _run_action(result, spec, out_dir, stream, _launcher(settings, skill),
                    tuple(sorted(declared - {model_key})), _gpu_ids(settings))
    return result


def _from_trained(trained: Mapping[str, Any], action: str, profile) -> dict[str, Any]:
    """The base of an action's spec when the skill folder has no template for it: TAO's
    experiment spec is one config for every action (its dataclasses default the rest), so the
    trained spec, less its outputs and resume path, with an empty section of the action's own
    (``--set {action}.KEY=...`` lands there)."""
    spec = copy.deepcopy(dict(trained))
    for key, value in flatten(spec).items():
        if key.rsplit(".", 1)[-1] == "results_dir" or key == profile.resume_key:
            set_dotted(spec, key, "")
    if not isinstance(spec.get(action), dict) or not spec[action]:
        spec[action] = {}
    return spec


def _experiment_settings(ws: Workspace, experiment: Mapping[str, Any]):
    """The experiment's resolved settings (experiment.yaml), or None for a workspace written
    before they were recorded (its hand-off runs locally, as it always did)."""
    from pydantic import ValidationError

    from automl.study import Settings

    recorded = experiment.get("settings")
    if recorded is None:
        return None
    try:
        return Settings(**recorded)
    except (TypeError, ValidationError) as exc:
        raise UserError(f"{ws.experiment_file}: unreadable settings ({str(exc).splitlines()[0]}); "
                        f"the hand-off cannot tell where the trials ran") from None


def _launcher(settings, skill):
    """Where ``--run`` runs the action: the experiment's own launcher (a Docker experiment's
    image, pull policy, shm size, network and extra mounts), else a local process."""
    if settings is None:
        from launchers import LAUNCHERS

        return LAUNCHERS["local"]()
    from automl.run.engine import make_launcher

    return make_launcher(settings, skill)


def _gpu_ids(settings) -> tuple[int, ...]:
    """As many GPUs as one trial had (the first ones): the action loads the same model."""
    import math

    gpus = settings.gpus_per_trial if settings is not None else 0
    return tuple(range(math.ceil(gpus))) if gpus > 0 else ()


def merge_trained(template: Mapping[str, Any], trained: Mapping[str, Any],
                  skip_sections: set[str] = frozenset(),
                  not_preserved: set[str] = frozenset()) -> tuple[dict[str, Any], dict[str, Any]]:
    """The action template with every key it shares with the trained spec set to the trained value.

    Keys are the template's leaves (an empty mapping or a list is one leaf, copied whole).
    Skipped: any ``results_dir``, train-only keys (``not_preserved``: the resume path) and keys
    under ``skip_sections`` (the hand-off actions' own sections). Returns (spec, preserved values).
    """
    spec = copy.deepcopy(dict(template))
    preserved: dict[str, Any] = {}
    for key in flatten(template):
        parts = key.split(".")
        if parts[-1] == "results_dir" or key in not_preserved or parts[0] in skip_sections:
            continue
        value = get_dotted(trained, key, _MISSING)
        if value is _MISSING:
            continue
        set_dotted(spec, key, copy.deepcopy(value))
        preserved[key] = value
    return spec, preserved


def _read_best(ws: Workspace) -> dict[str, Any]:
    import jsonschema

    from automl.results.best import read_best_rec

    if not ws.best_rec.exists():
        raise UserError(f"{ws.path}: no best_rec.json (the experiment has not finished, or it "
                        f"crashed: `automl recover {ws.path}` rebuilds it from the trial folders)")
    try:
        doc = read_best_rec(ws.best_rec)
    except (OSError, ValueError, jsonschema.ValidationError) as exc:
        raise UserError(f"{ws.best_rec}: unreadable ({str(exc).splitlines()[0]}); run "
                        f"`automl recover {ws.path}`") from None
    best = doc.get("best")
    if not best:
        raise UserError(f"{ws.path}: no trial of this experiment produced a finite "
                        f"{doc.get('metric_name', 'metric')}: no checkpoint to hand off; see "
                        f"`automl status {ws.path}` for why the trials failed")
    return best


def _read_trial(ws: Workspace, rec_id: str) -> dict[str, Any]:
    """``--trial ID``: the trial's entry as ``best`` is written (rec_id, score, observed_budget,
    checkpoint_uri): a Pareto-front member's from ``pareto_front``; another trial's from
    ``all_recs`` with the checkpoint of its scored epoch, if retention kept it."""
    from automl.results.best import read_best_rec
    from automl.tao.checkpoints import checkpoint_after

    _read_best(ws)  # the same checks: a readable result with an answer
    doc = read_best_rec(ws.best_rec)
    if (doc.get("best") or {}).get("rec_id") == rec_id:
        return doc["best"]
    member = next((m for m in doc.get("pareto_front") or [] if m.get("rec_id") == rec_id), None)
    if member is not None:
        return {**member, "score": (member.get("objectives") or {}).get(doc.get("metric_name"))}
    entry = next((r for r in doc.get("all_recs") or [] if r.get("rec_id") == rec_id), None)
    if entry is None:
        known = [str(r.get("rec_id")) for r in doc.get("all_recs") or []]
        raise UserError(f"--trial {rec_id}: no such trial in {ws.path}{did_you_mean(rec_id, known)}"
                        f"; see `automl best {ws.path} --pareto`")
    found = checkpoint_after(train_dir(ws.trials / rec_id),
                             int(entry.get("observed_budget") or 0))
    if found is None:
        raise UserError(f"--trial {rec_id}: its scored checkpoint is gone (--keep-checkpoints best "
                        f"keeps the best's and the Pareto front's); hand off a front member "
                        f"(`automl best {ws.path} --pareto`)")
    return {**entry, "checkpoint_uri": str(found.path)}


def _read_metric_name(ws: Workspace) -> str:
    try:
        return str(json.loads(ws.best_rec.read_text(encoding="utf-8")).get("metric_name", ""))
    except (OSError, ValueError):
        return ""


def _resolve_checkpoint(ws: Workspace, best: Mapping[str, Any], trial_dir: Path,
                        checkpoint: str) -> Path:
    folder = train_dir(trial_dir)
    if checkpoint == "latest":
        found = latest_checkpoint(folder)
        if found is None:
            raise UserError(f"--checkpoint latest: no *_model_latest.pth in {folder}; use "
                            f"--checkpoint best (the scored epoch's checkpoint)")
        return found.resolve()
    uri = best.get("checkpoint_uri")
    if not uri:
        raise UserError(f"best trial {best['rec_id']}: best_rec.json names no checkpoint file (none "
                        f"was written at epoch {best.get('observed_budget')}): no checkpoint to "
                        f"hand off")
    path = Path(str(uri))
    if not ws.inside(path):
        # best_rec.json was written before the workspace was moved or copied: the same file here.
        path = folder / path.name
    if CheckpointFile.parse(path) is None and not path.name.endswith(".pth"):
        raise UserError(f"best_rec.json: checkpoint_uri {uri!r} is not a checkpoint file name")
    if not path.is_file():
        raise UserError(f"best trial {best['rec_id']}: checkpoint file missing on disk: {path} "
                        f"(deleted? --keep-checkpoints best keeps exactly this file)")
    return path.resolve()


def _read_trial_spec(trial_dir: Path) -> dict[str, Any]:
    path = trial_dir / "spec.yaml"
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: the best trial's spec is missing; cannot tell which dataset and "
                        f"model settings it was trained with") from None
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: unreadable ({exc})") from None
    if not isinstance(spec, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return spec


def _known_keys(skill, action: str, template: Mapping[str, Any]) -> set[str]:
    known = set(flatten(template))
    schema_path = skill.path / "schemas" / f"{action}.schema.json"
    if schema_path.is_file():
        from automl.skill.schema import iter_leaves, load_schema

        try:
            known |= {leaf.name for leaf in iter_leaves(load_schema(schema_path))}
        except UserError:
            pass  # a broken action schema only narrows what --set accepts
    return known


def _is_known(key: str, known: set[str], template: Mapping[str, Any]) -> bool:
    if key in known:
        return True
    parent = key.rpartition(".")[0]  # inside a free-form mapping of the template
    while parent:
        if parent in known and isinstance(get_dotted(template, parent, None), dict):
            return True
        parent = parent.rpartition(".")[0]
    return False


def _resolve_overrides(values: Mapping[str, Any], skill, action: str,
                       template: Mapping[str, Any], owned: set[str], model_key: str) -> dict[str, Any]:
    shorthand = skill.shorthand()
    known = _known_keys(skill, action, template)
    out: dict[str, Any] = {}
    for key, value in values.items():
        full = shorthand.get(key, key)
        if full in owned:
            why = ("the model is the best trial's scored checkpoint; --checkpoint latest picks the "
                   "latest one" if full == model_key else "outputs stay in the workspace's "
                   "handoff folder")
            raise UserError(f"--set {key}: this key is managed by automl hand-off ({why}); remove it")
        if not _is_known(full, known, template):
            raise UserError(f"--set {key}: unknown {action} spec key"
                            f"{did_you_mean(full, known | set(shorthand))}; keys come from "
                            f"spec_template_{action}.yaml and {action}.schema.json")
        out[full] = value
    return out


# ---------------------------------------------------------------------------------------------
# Running the action


def _read_paths(spec: Mapping[str, Any], input_keys: tuple[str, ...],
                checkpoint: Path) -> tuple[Path, ...]:
    """Host paths the action reads (a container mounts exactly these, read-only): the action's
    declared inputs (the dataset, calibration images, ...) and the checkpoint's folder."""
    from launchers.docker import spec_input_paths

    candidates = [*spec_input_paths(dict(spec), input_keys), checkpoint.parent]
    existing = [path for path in candidates if path.exists()]
    # A path inside another one (calibration images under the dataset root) is already visible.
    return tuple(dict.fromkeys(path for path in existing
                               if not any(other != path and path.is_relative_to(other)
                                          for other in existing)))


def _run_action(result: HandoffResult, spec: Mapping[str, Any], out_dir: Path,
                stream: Callable[[str], None] | None, launcher, input_keys: tuple[str, ...] = (),
                gpu_ids: tuple[int, ...] = ()) -> None:
    from automl.results.failures import HINTS, classify
    from automl.tao.lines import read_status, status_path
    from automl.tao.progress import final_status, runs
    from launchers.base import LaunchSpec, LaunchError, log_tail

    launcher.preflight(tuple(result.command))
    log_path = out_dir / f"{result.action}.log"
    log_path.unlink(missing_ok=True)  # this run's log only
    for stale in (result.results_dir / result.action / "status.json", result.results_dir / "status.json"):
        stale.unlink(missing_ok=True)  # trainers append: old lines would pass for this run's KPIs
    job = LaunchSpec(argv=tuple(result.command), cwd=out_dir, log_path=log_path,
              name=f"{result.workspace.name}-handoff-{result.action}",
              labels={"automl.experiment": result.workspace.name, "automl.handoff": result.action},
              gpu_ids=gpu_ids, read_paths=_read_paths(spec, input_keys, result.checkpoint),
              write_paths=(out_dir,))
    try:
        handle = launcher.start(job)
    except LaunchError as exc:
        raise UserError(f"{result.action}: {exc}") from None
    secrets = secret_values(spec)  # redacted from the streamed log and the messages
    follower = _LogFollower(log_path, stream, secrets)
    try:
        while (code := handle.poll()) is None:
            follower.pump()
            time.sleep(0.2)
    except KeyboardInterrupt:
        handle.stop()
        raise
    follower.pump(final=True)
    result.log_path = log_path
    result.exit_code = code
    lines = read_status(status_path(result.results_dir, result.action))
    for line in lines:
        result.kpis.update(line.kpi)
    statuses = [line.status for line in lines if line.status]
    # TAO ends a good action with RUNNING "<Action> finished successfully." (no SUCCESS line).
    result.status = (final_status(runs(lines)[-1]) if lines else None) or \
        (statuses[-1] if statuses else "")
    messages = [line.message for line in lines if line.message]
    result.message = redact_text(messages[-1], secrets) if messages else ""
    if code != 0 or result.status == "FAILURE":
        failure_class, message = classify(code, lines, log_tail(log_path))
        result.failure_class = failure_class
        result.message = redact_text(message or result.message, secrets)
        result.hint = HINTS.get(failure_class, "")


class _LogFollower:
    """Streams complete lines appended to a log file, secrets redacted."""

    def __init__(self, path: Path, sink: Callable[[str], None] | None, secrets: set[str]) -> None:
        self.path = path
        self.sink = sink
        self.secrets = secrets
        self.offset = 0
        self.pending = b""

    def pump(self, final: bool = False) -> None:
        if self.sink is None:
            return
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        self.offset += len(chunk)
        data = self.pending + chunk
        if final:
            complete, self.pending = data, b""
        else:
            complete, _, self.pending = data.rpartition(b"\n")
        for line in complete.decode("utf-8", errors="replace").splitlines():
            self.sink(redact_text(line, self.secrets))


# ---------------------------------------------------------------------------------------------
# CLI


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def main_handoff(args) -> int:
    """``automl handoff ACTION WORKSPACE [--root-dir DIR] [--run] [--checkpoint best|latest]
    [--set KEY=VALUE ...]``. args: .action, .workspace, .root_dir, .run, .checkpoint, .set_."""
    from automl.skill.spec import parse_assignments, parse_paths

    overrides = parse_assignments(getattr(args, "set_", None) or [])
    run = bool(getattr(args, "run", False))
    root_dir = getattr(args, "root_dir", None)

    def echo(line: str) -> None:
        print(f"  | {line}", flush=True)

    data = parse_paths(getattr(args, "data", None) or [], "--data")
    result = handoff(Path(args.workspace), args.action, Path(root_dir) if root_dir else None, run,
                     getattr(args, "checkpoint", None) or "best", overrides, data=data,
                     stream=echo if run else None, trial=getattr(args, "trial", None))
    score = f", {result.metric_name} = {_fmt(result.score)}" if result.score is not None else ""
    print(f"{result.action} spec: {result.spec_path}")
    if result.note:
        print(f"note: {result.note}")
    print(f"model: {result.checkpoint} ({result.checkpoint_kind} checkpoint of trial "
          f"{result.rec_id}{score})")
    shown = {k: result.preserved[k] for k in result.headline if k in result.preserved}
    shown.update({k: v for k, v in result.overrides.items() if k in result.headline})
    if shown:
        print("from the trained model: " + ", ".join(
            f"{k.rsplit('.', 1)[-1]}={'***' if is_secret_key(k) else _fmt(v)}"
            for k, v in shown.items()) + f" ({len(result.preserved)} keys preserved)")
    if result.overrides:
        print("overrides: " + ", ".join(f"{k}={'***' if is_secret_key(k) else _fmt(v)}"
                                        for k, v in result.overrides.items()))
    for key, value in result.defaults.items():
        print(f"{key} = {_fmt(value)} (default: {result.reasons.get(key, 'the network profile')})")
    print(f"results: {result.results_dir}")
    if not result.ran:
        local = result.launcher == "local"
        where = "" if local else f" (in the experiment's {result.launcher} image)"
        print(f"run it{where}: {shlex.join(result.command)}")
        return 0
    print(f"{result.action} exited {result.exit_code}"
          + ("" if result.launcher == "local" else f" ({result.launcher})")
          + f"; log: {result.log_path}")
    for key, value in result.kpis.items():
        print(f"  {key} = {_fmt(value)}")
    if result.ok:
        return 0
    reason = f"{result.failure_class}: " if result.failure_class else ""
    print(f"{result.action} failed: {reason}{result.message}"
          + (f" ({result.hint})" if result.hint else ""), file=sys.stderr)
    return 1
