"""From a create body to the settings an experiment runs with, refusing bad input up front.

Everything checked here is cheap (pydantic, the skill folder, the search space), so a mistake is a
422 on the POST rather than a FAILED experiment minutes later. Paths must resolve inside the
server's allowed roots: a user of the API must not make the server read arbitrary files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from automl.errors import UserError
from automl.service.schemas import PATH_FIELDS, TAO_NAMES, AutomlSettings
from automl.study import Settings


class BadInput(Exception):
    """A create body the server refuses (HTTP 422); ``loc`` names the field."""

    def __init__(self, loc: str, message: str) -> None:
        super().__init__(message)
        self.loc = loc


def inside(path: Path, roots: list[Path]) -> bool:
    resolved = Path(path).expanduser().resolve()
    return any(resolved == root or root in resolved.parents for root in roots)


def _tao_settings(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fold TAO's automl_settings names (flat and nested) into study keys and a space document."""
    nested = body.pop("automl_settings", None) or {}
    tao = {k: body.pop(k) for k in list(AutomlSettings.model_fields) if k in body}
    for key, value in nested.items():
        if tao.get(key) not in (None, value) and value is not None:
            raise BadInput(key, f"{key} given twice with different values")
        tao.setdefault(key, value)
    if tao.pop("override_automl_disabled_params", False):
        raise BadInput("override_automl_disabled_params", "searching parameters the schema "
                       "disables is not supported; set them in overrides instead")
    study: dict[str, Any] = {}
    for key, value in tao.items():
        target = TAO_NAMES.get(key, key)
        if value is None or target not in Settings.model_fields:
            continue
        if body.get(target) not in (None, value):
            raise BadInput(key, f"{key} and {target} given with different values")
        study[target] = value
    space = dict(body.pop("space", None) or {})
    if tao.get("automl_hyperparameters"):
        space["only"] = tao["automl_hyperparameters"]
    for entry in tao.get("automl_range_override") or []:
        keys = {k: v for k, v in entry.items() if k != "parameter" and v is not None}
        space.setdefault("parameters", {})[entry["parameter"]] = keys
    return study, space


def resolve(body: dict[str, Any], skills: dict[str, Path], allowed: list[Path],
            defaults: dict[str, Any]) -> tuple[Settings, dict[str, Any] | None]:
    """The validated settings and space document of a create body (already pydantic-checked)."""
    from automl.space.user_space import merge, space_for_cli
    from automl.skill.folder import SkillDir, bundled_skill_dir
    from automl.space.build import build_space
    from automl.space.overrides import overrides_from_flags, parse_overrides

    body = {k: v for k, v in body.items() if v is not None}
    study, space = _tao_settings(body)
    body.update(study)
    skill = body.pop("skill", None)
    if skill is not None:
        if skill not in skills:
            raise BadInput("skill", f"unknown skill {skill!r}; see GET /api/v1/skills")
        if body.get("skill_dir") is not None:
            raise BadInput("skill", "give skill or skill_dir, not both")
        body["skill_dir"] = skills[skill]
    for key in PATH_FIELDS:
        for path in body.get(key) or [] if key == "mounts" else [body.get(key)]:
            if path is not None and not (inside(Path(path), allowed) or
                                         Path(path).resolve() in skills.values()):
                raise BadInput(key, f"{path}: outside the server's allowed roots")
    if body.get("skill_dir") is None:
        body = {**defaults, **body}
    try:
        settings = Settings(**body)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise BadInput(".".join(str(p) for p in err["loc"]), err["msg"]) from None
    if space and settings.space_file is not None:
        raise BadInput("space", "give space or space_file, not both")
    try:
        skill_dir = SkillDir.load(settings.skill_dir or bundled_skill_dir())
        if space:
            build_space(skill_dir.schema, merge(parse_overrides(space, "space"), overrides_from_flags(
                settings.ranges, settings.options, settings.pins)))
        else:
            space_for_cli(skill_dir, settings.space_file, settings.ranges, settings.options,
                          settings.pins)
    except UserError as exc:
        raise BadInput("body", str(exc)) from None
    return settings, (space or None)
