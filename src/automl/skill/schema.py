"""Readers for a TAO skill's files: ``train.schema.json`` and YAML.

TAO's schema is *almost* JSON: unbounded maxima are the bare token ``Infinity`` (and ``NaN`` /
``-Infinity`` may appear). Python's :mod:`json` accepts those tokens, so the file is parsed as-is;
anything else that is not JSON is a user error reported with ``file:line:col``.

:func:`iter_leaves` flattens the nested ``properties`` into :class:`Leaf` records with dotted names,
and decides which leaves can be searched and, for the others, why not. Turning leaves into
search ranges is :mod:`automl.space.build`'s job.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from automl.errors import UserError, read_user_text

#: Leaf types whose values can be sampled; everything else can only be pinned.
SEARCHABLE_TYPES = ("float", "int", "bool", "categorical", "ordered_int")


class _Yaml12Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when built with it
    """SafeLoader that also reads ``1e-5`` as a float.

    PyYAML follows YAML 1.1, where a float needs a dot, so ``valid_min: 1e-5`` would arrive as the
    *string* "1e-5" and then be rejected as "not a number". YAML 1.2 (and every user) reads it as a
    float; this resolver restores that.
    """


_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, source: str = "<string>") -> Any:
    """Parse YAML text (YAML 1.2 floats); a syntax error is a UserError naming ``source:line:col``."""
    try:
        return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"{where}: invalid YAML: {problem}") from None


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file; a missing file or a syntax error is a one-line UserError."""
    path = Path(path)
    return parse_yaml(read_user_text(path), str(path))


def load_schema(path: str | Path) -> dict:
    """Parse a TAO ``*.schema.json`` (bare Infinity/NaN tokens allowed).

    Raises UserError for a missing file, invalid JSON (with file:line:col) or a document that is
    not a schema object with ``properties``.
    """
    path = Path(path)
    text = read_user_text(path, "schema file")
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        raise UserError(f"{path}: not a TAO schema (no top-level 'properties' object)")
    return schema


def finite_number(value: Any) -> float | int | None:
    """``value`` if it is a finite int/float (not a bool), else None (covers Infinity/NaN/lists)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Leaf:
    """One parameter of the schema, as TAO describes it (raw values, no interpretation)."""

    name: str
    type: str | None
    default: Any = None
    minimum: Any = None
    maximum: Any = None
    enum: tuple | None = None
    math_cond: str | None = None
    depends_on: str | None = None
    parent_param: bool = False
    option_weights: tuple | None = None
    automl_enabled: bool | None = None
    popular: bool | None = None
    any_of: tuple[str, ...] = ()  # branch types of an ``anyOf`` leaf (TAO leaves ``type`` unset)

    @property
    def kind(self) -> str | None:
        """How the leaf can be sampled: "float", "int", "bool", "categorical", or None.

        ``ordered_int`` is an int: categorical over its enum when it has one, a range otherwise.
        An ``anyOf`` leaf with a numeric branch (e.g. ``number | array``) is searched as that number.
        """
        if self.type in ("float", "int", "bool"):
            return self.type
        if self.type == "categorical":
            return "categorical" if self.enum else None
        if self.type == "ordered_int":
            return "categorical" if self.enum else "int"
        if self.type is None and isinstance(self.default, (int, float)) and not isinstance(self.default, bool):
            if "number" in self.any_of:
                return "float"
            if "integer" in self.any_of:
                return "int"
        return None

    @property
    def unsearchable(self) -> str | None:
        """Why the leaf cannot be searched (None when it can)."""
        if self.kind is not None:
            return None
        if self.type == "categorical":
            return "categorical without an enum"
        if self.type is None:
            branches = "|".join(self.any_of) or "no type"
            return f"type anyOf({branches}) has no numeric default to search"
        return f"type '{self.type}' cannot be searched (only {', '.join(SEARCHABLE_TYPES)})"


def _default_at(defaults: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(defaults, Mapping) or part not in defaults:
            return None
        defaults = defaults[part]
    return defaults


def _as_tuple(value: Any) -> tuple | None:
    return tuple(value) if isinstance(value, list) else None


def _leaf(name: str, node: Mapping, top_defaults: Any) -> Leaf:
    any_of = tuple(b.get("type") for b in node.get("anyOf", ()) if isinstance(b, Mapping) and b.get("type"))
    enabled = node.get("automl_enabled")
    popular = node.get("popular")
    depends_on = node.get("depends_on")
    math_cond = node.get("math_cond")
    return Leaf(
        name=name,
        type=node.get("type") if isinstance(node.get("type"), str) else None,
        default=node["default"] if "default" in node else _default_at(top_defaults, name),
        minimum=node.get("minimum"),
        maximum=node.get("maximum"),
        enum=_as_tuple(node.get("enum")),
        math_cond=math_cond if isinstance(math_cond, str) else None,
        depends_on=depends_on if isinstance(depends_on, str) else None,
        parent_param=str(node.get("parent_param", "")).upper() == "TRUE",
        option_weights=_as_tuple(node.get("option_weights")),
        automl_enabled=enabled if isinstance(enabled, bool) else None,
        popular=popular if isinstance(popular, bool) else None,
        any_of=any_of,
    )


def iter_leaves(schema: Mapping) -> Iterator[Leaf]:
    """Yield every leaf parameter of the schema with its dotted name, depth first.

    Entries of ``properties`` that are not objects (TAO puts an ``automl_disabled_parameters`` list
    there) are skipped; nodes with nested ``properties`` are groups, recursed into, not yielded.
    """
    top_defaults = schema.get("default")

    def walk(properties: Mapping, prefix: str) -> Iterator[Leaf]:
        for key, node in properties.items():
            if not isinstance(node, Mapping):
                continue
            name = f"{prefix}{key}"
            children = node.get("properties")
            if isinstance(children, Mapping) and children:
                yield from walk(children, f"{name}.")
            else:
                yield _leaf(name, node, top_defaults)

    yield from walk(schema.get("properties", {}), "")


def disabled_parameters(schema: Mapping) -> set[str]:
    """Names the schema forbids AutoML to touch: ``automl_disabled_parameters`` plus leaves with
    ``automl_enabled: false``.

    TAO lists whole groups there (``train``, ``model.backbone``) while searching their members by
    default (``model.backbone.freeze_backbone``), so a group entry disables only that exact name.
    """
    listed = schema.get("automl_disabled_parameters") or []
    disabled = {name for name in listed if isinstance(name, str)}
    disabled.update(leaf.name for leaf in iter_leaves(schema) if leaf.automl_enabled is False)
    return disabled
