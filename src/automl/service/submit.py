"""From a create body to the settings an experiment runs with, refusing bad input up front.

Everything checked here is cheap (pydantic, the skill folder, the spec template, the search
space), so a mistake is a 422 on the POST rather than a FAILED experiment minutes later, and
what the CLI refuses before it starts (an unknown or engine-managed override key, more GPUs than
the cluster has) the API refuses at the door too. The server's own policy is checked here as
well: budgets within ``automl serve --limit-*``, container images the admin allowed, no host
network unless allowed, and every path inside the allowed roots (:mod:`.paths`, one rule for the
submit, study and hand-off routes).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from automl.errors import UserError
from automl.service.door import BadInput, Limits, check_strings
from automl.service.models import TAO_NAMES, AutomlSettings
from automl.service.paths import PathRule
from automl.study import Settings

TAO_MAX_EPOCHS = 27  # TAO's automl_max_epochs when a request names none (AlgorithmParams)
LIMIT_FLAGS = {"max_recommendations": "recommendations", "population_size": "recommendations",
               "max_epochs": "epochs", "min_epochs": "epochs", "max_concurrent": "concurrent",
               "max_retries": "retries"}


@dataclass(frozen=True)
class Policy:
    """What this server lets a user ask for (``automl serve`` options)."""

    paths: PathRule
    limits: Limits = Limits()
    images: tuple[str, ...] = ()  # --allow-image patterns (fnmatch); none: no docker launcher
    host_network: bool = False  # --allow-host-network
    cluster: dict[str, float] = field(default_factory=dict)  # Ray's CPU / GPU totals, if known


def _hyperparameters(value: Any) -> list[str]:
    """TAO's ``automl_hyperparameters``: a list, or (as TAO's own API sends it) a string holding
    one, JSON (``["a", "b"]``) or Python's repr (``['a', 'b']``)."""
    if isinstance(value, str):
        import ast
        import json

        try:
            value = json.loads(value)
        except ValueError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInput("automl_hyperparameters", "expected a list of parameter names, or a "
                       "string holding one (\"['train.optim.lr', ...]\")")
    return value


def _tao_settings(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fold TAO's automl_settings names (flat and nested) into study keys and a space document.

    Besides the names that map one to one (:data:`TAO_NAMES`): ``automl_enabled`` is the policy
    (false: one plain training), ``automl_delete_intermediate_ckpt`` the checkpoint retention
    (true: keep the best trial's only), and ``epoch_multiplier`` TAO's budget unit: every rung
    of TAO's bracket algorithms is a multiple of it and the largest is ``max_epochs ×
    epoch_multiplier`` (TAO 7.3's asha/hyperband/bohb/dehb), so here the smallest budget is
    ``epoch_multiplier`` epochs and the largest ``max_epochs × epoch_multiplier``.
    """
    nested = body.pop("automl_settings", None) or {}
    tao = {k: body.pop(k) for k in list(AutomlSettings.model_fields) if k in body}
    for key, value in nested.items():
        if tao.get(key) not in (None, value) and value is not None:
            raise BadInput(key, f"{key} given twice with different values")
        tao.setdefault(key, value)
    if tao.pop("override_automl_disabled_params", False):
        raise BadInput("override_automl_disabled_params", "searching parameters the schema "
                       "disables is not supported; set them in overrides instead")
    enabled = tao.pop("automl_enabled", None)
    if enabled is not None:
        tao["automl_policy"] = "on" if enabled else "off"
    delete = tao.pop("automl_delete_intermediate_ckpt", None)
    if delete is not None:
        tao["keep_checkpoints"] = "best" if delete else "all"
    multiplier = tao.pop("epoch_multiplier", None)
    study: dict[str, Any] = {}
    for key, value in tao.items():
        target = TAO_NAMES.get(key, key)
        if value is None or target not in Settings.model_fields:
            continue
        if study.get(target) not in (None, value) or body.get(target) not in (None, value):
            raise BadInput(key, f"{key} and {target} given with different values")
        study[target] = value
    if multiplier is not None and multiplier != 1:
        if body.get("min_epochs") not in (None, multiplier):
            raise BadInput("epoch_multiplier", "epoch_multiplier sets min_epochs; give one of them")
        epochs = study.get("max_epochs") or body.get("max_epochs") or TAO_MAX_EPOCHS
        body.pop("max_epochs", None)
        study["max_epochs"], study["min_epochs"] = epochs * multiplier, multiplier
    space = dict(body.pop("space", None) or {})
    if tao.get("automl_hyperparameters"):
        space["only"] = _hyperparameters(tao["automl_hyperparameters"])
    for entry in tao.get("automl_range_override") or []:
        keys = {k: v for k, v in entry.items() if k != "parameter" and v is not None}
        space.setdefault("parameters", {})[entry["parameter"]] = keys
    return study, space


def _check_limits(settings: Settings, limits: Limits) -> None:
    bounds = {"max_recommendations": limits.recommendations, "max_epochs": limits.epochs,
              "min_epochs": limits.epochs, "max_concurrent": limits.concurrent,
              "population_size": limits.recommendations, "max_retries": limits.retries}
    for key, most in bounds.items():
        value = getattr(settings, key)
        if value is not None and value > most:
            raise BadInput(key, f"{value} is over this server's limit of {most} (automl serve "
                           f"--limit-{LIMIT_FLAGS[key]})")


def _check_resources(settings: Settings, cluster: dict[str, float]) -> None:
    """What the CLI checks before it starts (engine: GPUs per trial against Ray's totals)."""
    for key, resource in (("gpus_per_trial", "GPU"), ("cpus_per_trial", "CPU")):
        wanted, have = getattr(settings, key), cluster.get(resource)
        if have is not None and wanted > have:
            raise BadInput(key, f"{wanted:g}: the server's Ray cluster has {have:g} "
                           f"{resource}(s) in all; ask for at most {have:g}")


def _check_container(settings: Settings, skill_image: str | None, policy: Policy) -> None:
    if settings.launcher != "docker":
        return
    image = settings.image or skill_image
    if not policy.images:
        raise BadInput("launcher", "this server runs no containers for its users (its admin "
                       "allows images with automl serve --allow-image PATTERN)")
    if image is None or not any(fnmatch.fnmatchcase(image, p) for p in policy.images):
        raise BadInput("image", f"{image}: not an image this server allows (allowed: "
                       f"{', '.join(policy.images)})")
    network = settings.docker_network or ""
    if (network == "host" and not policy.host_network) or network.startswith("container:"):
        raise BadInput("docker_network", f"{network}: not allowed on this server (host only "
                       f"with automl serve --allow-host-network; never another container's)")


def bundled(path: Path) -> bool:
    """Whether ``path`` is the bundled trainer's skill folder (False where none is installed).

    A request that names it by ``skill`` runs as a request that names no skill: the embedded
    default, on a generated dataset unless data is given (what ``automl run`` does with no
    ``--skill-dir``), rather than the bare skill that needs a dataset."""
    from automl.skill.folder import bundled_skill_dir

    try:
        return Path(path).resolve() == bundled_skill_dir().resolve()
    except UserError:
        return False


def _field_words() -> dict[str, str]:
    """``automl run`` flag → the settings field (the request's key) it sets."""
    from automl.study import flag_name

    return {flag_name(name): name for name in Settings.model_fields}


_FLAG = re.compile(r"--[a-z][a-z-]*")


def field_words(message: str) -> str:
    """A shared engine message in a request's words: each ``automl run`` flag it names becomes
    the key that sets it (``--set`` → ``overrides``, ``--root-dir`` → ``root_dir``), so the
    page and API clients read the field they filled, not a flag they never typed."""
    words = _field_words()
    return _FLAG.sub(lambda m: words.get(m.group(0), m.group(0)), message)


def _check_data(settings: Settings, profile: Any, builder: Any, source: str) -> None:
    """The data inputs, as the engine will check them before launch: declared keys, existing
    paths of the declared kind, and (for a skill other than the bundled one, which falls back
    on a generated dataset) every required input given, so a missing dataset is a 422 naming
    the field rather than an experiment that FAILS a second after it starts."""
    inputs = profile.data_inputs()
    for key, path in settings.data.items():
        try:
            profile.resolve_data({key: path}, None)
        except UserError as exc:
            raise BadInput(f"data.{key}", field_words(str(exc))) from None
    try:
        given = profile.resolve_data({}, settings.root_dir) if settings.root_dir else {}
    except UserError as exc:
        raise BadInput("root_dir", field_words(str(exc))) from None
    if settings.skill_dir is None:
        return
    given = {**given, **settings.data,
             **{k: v for k, v in builder.overrides.items() if k in inputs}}
    missing = profile.missing_data(given, builder)
    if missing:
        more = f" (also required: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise BadInput(f"data.{missing[0]}", f"{source}: {missing[0]} is required: give its "
                       f"{inputs[missing[0]].kind} path{more}")


def _spec_builder(skill: Any, overrides: dict[str, Any]) -> Any:
    """The train spec builder, as the engine makes it: it refuses unknown and managed keys."""
    from automl.skill.schema import iter_leaves
    from automl.skill.spec import SpecBuilder

    return SpecBuilder(skill.template("train"), [leaf.name for leaf in iter_leaves(skill.schema)],
                       skill.shorthand(), overrides)


def resolve(body: dict[str, Any], skills: dict[str, Path], policy: Policy,
            defaults: dict[str, Any]) -> tuple[Settings, dict[str, Any] | None]:
    """The validated settings and space document of a create body (already pydantic-checked)."""
    from automl.networks import profile_for
    from automl.skill.folder import SkillDir, bundled_skill_dir
    from automl.space.build import build_space
    from automl.space.overrides import overrides_from_flags, parse_overrides
    from automl.space.user_space import merge, space_for_cli

    body = {k: v for k, v in body.items() if v is not None}
    check_strings(body)
    study, space = _tao_settings(body)
    body.update(study)
    skill = body.pop("skill", None)
    if skill is not None:
        if skill not in skills:
            raise BadInput("skill", f"unknown skill {skill!r}; see GET /api/v1/skills")
        if body.get("skill_dir") is not None:
            raise BadInput("skill", "give skill or skill_dir, not both")
        if not bundled(skills[skill]):
            body["skill_dir"] = skills[skill]
    policy.paths.check_fields(body)
    if body.get("skill_dir") is None:
        body = {**defaults, **body}
    try:
        settings = Settings(**body)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInput(".".join(str(p) for p in err["loc"]), err["msg"]) from None
    if space and settings.space_file is not None:
        raise BadInput("space", "give space or space_file, not both")
    _check_limits(settings, policy.limits)
    _check_resources(settings, policy.cluster)
    try:
        skill_dir = SkillDir.load(settings.skill_dir or bundled_skill_dir())
    except UserError as exc:
        raise BadInput("skill_dir", field_words(str(exc))) from None
    _check_container(settings, skill_dir.container_image, policy)
    profile = profile_for(skill_dir)
    try:
        builder = _spec_builder(skill_dir, settings.overrides)
    except UserError as exc:
        raise BadInput("overrides", field_words(str(exc))) from None
    policy.paths.check_overrides(builder.overrides, profile.path_keys("train"))
    from automl.objective import for_settings

    try:  # the engine's own resolution: the objectives, else the metric (or the network's)
        objectives = for_settings(settings, profile, skill_dir.name)
    except UserError as exc:
        raise BadInput("objectives" if settings.objectives else "metric",
                       field_words(str(exc))) from None
    settings = settings.model_copy(update={"metric": objectives.metric,
                                           "direction": objectives.direction})
    _check_data(settings, profile, builder, skill_dir.name)
    try:
        if space:
            build_space(skill_dir.schema, merge(parse_overrides(space, "space"), overrides_from_flags(
                settings.ranges, settings.options, settings.pins)))
        else:
            space_for_cli(skill_dir, settings.space_file, settings.ranges, settings.options,
                          settings.pins)
    except UserError as exc:
        raise BadInput("body", field_words(str(exc))) from None
    return settings, (space or None)
