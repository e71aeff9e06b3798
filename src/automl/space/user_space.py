"""The user's search space: schema defaults ⊕ a space file ⊕ CLI range/option/pin flags.

A spec override (``--set train.optim.momentum=0.95``) on a parameter that would otherwise be
searched pins it: the user's explicit value wins, and the trial table does not pretend it was
tuned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import yaml

from automl.errors import UserError
from automl.skill.schema import iter_leaves
from automl.skill.folder import SkillDir
from automl.space.build import build_space
from automl.space.overrides import SpaceOverrides, load_overrides, overrides_from_flags
from automl.space.params import SearchSpace
from automl.skill.spec import SpecBuilder


def merge(*parts: SpaceOverrides | None) -> SpaceOverrides:
    """Later parts win per parameter."""
    parameters: dict = {}
    only: list[str] | None = None
    exclude: list[str] = []
    for part in parts:
        if part is None:
            continue
        parameters.update(part.parameters)
        only = part.only if part.only is not None else only
        exclude.extend(x for x in part.exclude if x not in exclude)
    return SpaceOverrides(parameters=parameters, only=only, exclude=exclude)


def space_for_cli(skill: SkillDir, space_file: Path | None, ranges: list[str],
                  options: list[str], pins: list[str]) -> SearchSpace:
    file_part = load_overrides(space_file) if space_file else None
    return build_space(skill.schema, merge(file_part, overrides_from_flags(ranges, options, pins)))


def check_override_types(schema: dict, overrides: dict) -> None:
    """A spec override of a number/bool schema key must be a number/bool: ``--set
    train.optim.momentum=abc`` is one line now, not a trial failure minutes later. Only the type
    is checked (searched keys are checked in full, bounds included, by the pinning below)."""
    leaves = {leaf.name: leaf for leaf in iter_leaves(schema)}
    for key, value in overrides.items():
        leaf = leaves.get(key)
        if leaf is None or value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if leaf.type in ("float", "int") and not number:
            problem = f"expected a number (the schema's type is {leaf.type})"
        elif leaf.type == "int" and isinstance(value, float) and not value.is_integer():
            problem = "expected an integer"
        elif leaf.type == "bool" and isinstance(value, str):
            problem = "expected true or false"
        else:
            continue
        raise UserError(f"override '{key}' = {value!r}: {problem}; correct the value")


class SpaceSettings(Protocol):
    """The settings a user's space is made of (automl.study.Settings has them): named here, so
    that the space does not import the settings model built on top of it."""

    space_file: Path | None
    ranges: list[str]
    options: list[str]
    pins: list[str]


def build_user_space(skill: SkillDir, settings: SpaceSettings, builder: SpecBuilder) -> SearchSpace:
    space = space_for_cli(skill, settings.space_file, settings.ranges, settings.options,
                          settings.pins)
    searched = set(space.spec_keys())
    pinned_by_spec = {k: v for k, v in builder.overrides.items() if k in searched}
    check_override_types(skill.schema, {k: v for k, v in builder.overrides.items()
                                        if k not in searched})
    if not pinned_by_spec:
        return space
    pins = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
            for k, v in pinned_by_spec.items()]
    return space_for_cli(skill, settings.space_file, settings.ranges, settings.options,
                         list(settings.pins) + pins)
