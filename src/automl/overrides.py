"""The user's search space: schema defaults ⊕ a space file ⊕ CLI range/option/pin flags.

A spec override (``--set train.optim.momentum=0.95``) on a parameter that would otherwise be
searched pins it: the user's explicit value wins, and the trial table does not pretend it was
tuned.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from automl.skill import SkillDir
from automl.space import SearchSpace, SpaceOverrides, build_space, load_overrides, overrides_from_flags
from automl.spec import SpecBuilder
from automl.study import Settings


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


def build_user_space(skill: SkillDir, settings: Settings, builder: SpecBuilder) -> SearchSpace:
    space = space_for_cli(skill, settings.space_file, settings.ranges, settings.options,
                          settings.pins)
    searched = set(space.names())
    pinned_by_spec = {k: v for k, v in builder.overrides.items() if k in searched}
    if not pinned_by_spec:
        return space
    pins = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
            for k, v in pinned_by_spec.items()]
    return space_for_cli(skill, settings.space_file, settings.ranges, settings.options,
                         list(settings.pins) + pins)
