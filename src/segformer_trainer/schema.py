"""Generate TAO-format ``<action>.schema.json`` from the pydantic config models.

The output follows TAO's SegFormer schema (``schemas/train.schema.json`` of the TAO skill):

- nested ``properties``; a section is ``{"type": "collection", "properties": ..., "default": ...}``
  with ``automl_enabled: false``, ``automl_default_parameters`` (its direct children that AutoML
  tunes by default), ``automl_disabled_parameters`` (its direct children AutoML must not touch)
  and ``popular`` (names of its popular children) where non-empty;
- leaves carry ``type`` (``float``, ``int``, ``bool``, ``string``, ``categorical``, ``list``,
  ``collection``, ``ordered_int``), ``default``, ``description``, ``title``, ``minimum``,
  ``maximum`` (``Infinity`` for unbounded, written as the bare token like TAO's files),
  ``enum``, ``automl_enabled``, ``math_cond``, ``popular``, ``pattern``;
- top level: ``default`` (the action's spec template), ``automl_default_parameters`` (every leaf
  with ``automl_enabled: true``: TAO's 16), ``automl_disabled_parameters`` (every path with
  ``automl_enabled: false``), ``popular`` (default values of popular fields), ``required``,
  ``type: object``, ``x_tao_schema``; and, like TAO's, ``properties.automl_disabled_parameters``
  is a *list* (the sections), not a parameter.

Like TAO's, the ``properties`` of an action's schema are the sections of that action's spec
template (:data:`segformer_trainer.config.ACTION_SECTIONS`), while the automl lists and
``popular`` cover the whole config.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from .config import ACTION_SECTIONS, ExperimentConfig, default_spec

LEAF_KEYS = ("description", "title", "minimum", "maximum", "automl_enabled", "math_cond", "popular", "pattern")


def _tao(field) -> dict[str, Any]:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return dict(extra.get("tao", {}))


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _leaf_type(tp: Any) -> tuple[str, list[Any] | None]:
    origin = get_origin(tp)
    if origin is Literal:
        return "categorical", list(get_args(tp))
    if origin in (list, tuple) or tp in (list, tuple):
        return "list", None
    if origin is dict or tp is dict:
        return "collection", None
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return _leaf_type(args[0])
    if tp is bool:
        return "bool", None
    if tp is int:
        return "int", None
    if tp is float:
        return "float", None
    return "string", None


def _walk(model: type[BaseModel], prefix: str, instance: BaseModel, acc: dict[str, list]) -> dict[str, Any]:
    """The ``properties`` of a model; fills acc['default'], acc['disabled'], acc['popular']."""
    props: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        meta = _tao(field)
        value = getattr(instance, name)
        node: dict[str, Any] = {}
        if _is_model(field.annotation):
            sub = field.annotation
            node["properties"] = _walk(sub, path + ".", value, acc)
            node["type"] = "collection"
            node["default"] = value.model_dump(mode="json")
            kids = sub.model_fields
            on = [f"{path}.{k}" for k, f in kids.items() if _tao(f).get("automl_enabled") is True]
            off = [f"{path}.{k}" for k, f in kids.items() if _tao(f).get("automl_enabled") is False]
            pop = [k for k, f in kids.items() if _tao(f).get("popular")]
            req = [k for k, f in kids.items() if _tao(f).get("required")]
            if on:
                node["automl_default_parameters"] = on
            if off:
                node["automl_disabled_parameters"] = off
            if pop:
                node["popular"] = pop
            if req:
                node["required"] = req
            for key in ("automl_enabled", "description", "title"):
                if key in meta:
                    node[key] = meta[key]
        else:
            kind, enum = _leaf_type(field.annotation)
            node["type"] = meta.get("type", kind)
            node["default"] = _json_value(value)
            if enum is not None:
                node["enum"] = enum
            for key in LEAF_KEYS:
                if key in meta:
                    node[key] = meta[key]
            if meta.get("popular"):
                _set(acc["popular"], path, node["default"])
        if meta.get("automl_enabled") is True and not _is_model(field.annotation):
            acc["enabled"].append(path)
        if meta.get("automl_enabled") is False:
            acc["disabled"].append(path)
        props[name] = node
    return props


def _json_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        tree = tree.setdefault(part, {})
    tree[parts[-1]] = value


def build_schema(action: str = "train") -> dict[str, Any]:
    acc: dict[str, Any] = {"enabled": [], "disabled": [], "popular": {}}
    all_props = _walk(ExperimentConfig, "", ExperimentConfig(), acc)
    sections = ACTION_SECTIONS[action]
    properties: dict[str, Any] = {name: all_props[name] for name in sections}
    top_fields = ExperimentConfig.model_fields
    properties["automl_disabled_parameters"] = [
        name for name, f in top_fields.items() if _tao(f).get("automl_enabled") is False
    ]
    return {
        "automl_default_parameters": sorted(acc["enabled"]),
        "automl_disabled_parameters": sorted(acc["disabled"]),
        "default": default_spec(action),
        "popular": acc["popular"],
        "properties": properties,
        "required": [name for name in sections if _tao(top_fields[name]).get("required")],
        "type": "object",
        "x_tao_schema": {
            "action": action,
            "core_module": "segformer",
            "model": "segformer",
            "network_arch": "segformer",
            "schema_action": action,
            "schema_version": 1,
            "source": "segformer_trainer pydantic config",
        },
    }


def dumps(schema: dict[str, Any]) -> str:
    """JSON like TAO's files: sorted keys, 2-space indent, bare ``Infinity`` for unbounded maxima."""
    return json.dumps(schema, indent=2, sort_keys=True, allow_nan=True) + "\n"
