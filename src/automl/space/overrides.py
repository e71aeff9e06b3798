"""The user's overrides of the search space: a space file or the CLI's range/option/pin flags.

User overrides use TAO's keys (``valid_min``, ``valid_max``, ``valid_options``,
``option_weights``) plus ``value`` (pin) and ``log``; unknown keys are rejected, not ignored, and a
pin is written exactly as given.

Each is read into :class:`SpaceOverrides` (pydantic), after the file is checked against
``schemas/overrides.schema.json``, so a mistake names the file, the key and the fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    field_validator,
    model_validator,
)

from automl.errors import UserError, did_you_mean, read_user_text
from automl.skill.schema import parse_yaml
from automl.space.params import contains_value, format_value
from automl.validation import OVERRIDES, validate

_OVERRIDE_KEYS = ("valid_min", "valid_max", "valid_options", "option_weights", "value", "log")
# Keys people write by habit (and TAO silently ignores) -> the key that does what they meant.
_KEY_HINTS = {
    "min": "valid_min", "minimum": "valid_min", "low": "valid_min", "lower": "valid_min",
    "max": "valid_max", "maximum": "valid_max", "high": "valid_max", "upper": "valid_max",
    "values": "valid_options", "options": "valid_options", "choices": "valid_options", "enum": "valid_options",
    "weights": "option_weights", "scale": "log", "pin": "value", "fixed": "value", "default": "value",
}
_TOP_KEYS = ("parameters", "only", "exclude")


def _unknown_key(key: str, known: Iterable[str], hints: Mapping[str, str] = _KEY_HINTS) -> str:
    hint = f" (did you mean '{hints[key]}'?)" if key in hints else did_you_mean(key, known)
    return f"unknown key '{key}'{hint}"


def _number(value: Any, what: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return value


class ParamOverride(BaseModel):
    """How the user changes one parameter: a range, a list of options (with weights), or a pin."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: a list gives one bound per element of a list parameter (``train.optim.betas``)
    valid_min: int | float | list[int | float] | None = None
    valid_max: int | float | list[int | float] | None = None
    valid_options: list[bool | int | float | str] | None = None
    option_weights: list[float] | None = None
    value: Any = None
    log: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key not in _OVERRIDE_KEYS:
                    raise ValueError(f"{_unknown_key(str(key), _OVERRIDE_KEYS)}; TAO silently ignores it, we reject it")
        return data

    @field_validator("valid_min", "valid_max", mode="before")
    @classmethod
    def _bound(cls, value: Any, info: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError(f"{info.field_name} is an empty list; give a number, or one per element")
            return [_number(v, f"each of {info.field_name}") for v in value]
        return None if value is None else _number(value, info.field_name)

    @field_validator("valid_options", mode="before")
    @classmethod
    def _options(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, (bool, int, float, str)) for v in value):
            raise ValueError(f"valid_options must be a list of numbers, booleans or strings, got {value!r}")
        return value

    @field_validator("option_weights", mode="before")
    @classmethod
    def _weights(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            raise ValueError(f"option_weights must be a list of numbers, got {value!r}")
        return [_number(v, "each of option_weights") for v in value]

    @field_validator("log", mode="before")
    @classmethod
    def _log(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"log must be true or false, got {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ParamOverride:
        searched = [k for k in ("valid_min", "valid_max", "valid_options", "option_weights", "log")
                    if getattr(self, k) is not None]
        if self.pins and searched:
            raise ValueError(f"'value' pins the parameter; drop {', '.join(searched)} (or drop 'value' to search)")
        if self.valid_min is not None and self.valid_max is not None:
            lows, highs = _bounds(self.valid_min), _bounds(self.valid_max)
            if len(lows) > 1 and len(highs) > 1 and len(lows) != len(highs):
                raise ValueError(f"valid_min has {len(lows)} bounds, valid_max {len(highs)}; give one per element")
            for low, high in zip(lows * (len(highs) if len(lows) == 1 else 1),
                                 highs * (len(lows) if len(highs) == 1 else 1)):
                if low > high:
                    raise ValueError(f"valid_min {format_value(low)} > valid_max {format_value(high)}; swap the two bounds")
        if self.valid_options is not None:
            if not self.valid_options:
                raise ValueError("valid_options is empty; list at least one option (or pin with 'value')")
            if self.valid_min is not None or self.valid_max is not None or self.log:
                raise ValueError("use either valid_options or valid_min/valid_max/log, not both")
            repeated = [o for i, o in enumerate(self.valid_options) if contains_value(self.valid_options[:i], o)]
            if repeated:
                raise ValueError(f"valid_options lists {repeated[0]!r} twice")
        if self.option_weights is not None:
            if any(w < 0 for w in self.option_weights) or sum(self.option_weights) <= 0:
                raise ValueError(f"option_weights must be >= 0 with a positive sum, got {self.option_weights}")
            if self.valid_options is not None and len(self.option_weights) != len(self.valid_options):
                raise ValueError(f"option_weights has {len(self.option_weights)} entries "
                                 f"for {len(self.valid_options)} valid_options")
        if self.log and self.valid_min is not None and min(_bounds(self.valid_min)) <= 0:
            raise ValueError(f"log scale needs valid_min > 0, got {format_value(min(_bounds(self.valid_min)))}")
        return self

    @property
    def pins(self) -> bool:
        """True when this override fixes the parameter to ``value`` (even a null one)."""
        return "value" in self.model_fields_set


def _bounds(bound: int | float | list[int | float]) -> list[int | float]:
    """A bound as a list: one per element, or the one bound of every element."""
    return list(bound) if isinstance(bound, list) else [bound]


class SpaceOverrides(BaseModel):
    """The user's changes to the schema's search space.

    ``parameters`` maps spec keys to a :class:`ParamOverride`; a bare value (``lr: 0.001``) pins
    the key to exactly that value. ``only`` searches exactly those keys instead of the schema's
    defaults; ``exclude`` drops keys.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    parameters: dict[str, ParamOverride] = {}
    only: list[str] | None = None
    exclude: list[str] = []

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key in _TOP_KEYS:
                    continue
                if "." in str(key):
                    raise ValueError(f"{key}: parameter overrides go under 'parameters:'")
                raise ValueError(_unknown_key(str(key), _TOP_KEYS, {}) + f"; expected {', '.join(_TOP_KEYS)}")
        return data

    @field_validator("parameters", mode="before")
    @classmethod
    def _entries(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError(f"parameters must be a mapping of spec keys to overrides, got {value!r}")
        entries = {}
        for name, entry in value.items():
            if isinstance(entry, ParamOverride):  # already validated (merged overrides)
                entries[str(name)] = entry
                continue
            if not isinstance(entry, Mapping):
                entry = {"value": entry}
            try:
                entries[str(name)] = ParamOverride.model_validate(entry)
            except ValidationError as exc:
                raise ValueError(f"{name}: {_error_text(exc)}") from None
        return entries


def _error_text(exc: ValidationError) -> str:
    """The first pydantic error as one line; our own messages already name their key."""
    error = exc.errors()[0]
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "value_error" or not error["loc"]:
        return message
    return f"{'.'.join(str(part) for part in error['loc'])}: {message}"


def parse_overrides(data: Any, source: str = "overrides") -> SpaceOverrides:
    """Validate already-parsed overrides (``None`` means none); errors become one-line UserErrors."""
    if data is None:
        return SpaceOverrides()
    if not isinstance(data, Mapping):
        raise UserError(f"{source}: expected a mapping with {', '.join(_TOP_KEYS)}, got {type(data).__name__}")
    try:
        return SpaceOverrides.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{source}: {_error_text(exc)}") from None


def load_overrides(path: str | Path) -> SpaceOverrides:
    """Read overrides from a YAML or JSON file (a mapping with parameters/only/exclude)."""
    path = Path(path)
    text = read_user_text(path, "overrides file", "; pass a YAML or JSON file with --space-file")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    else:
        data = parse_yaml(text, str(path))
    overrides = parse_overrides(data, str(path))
    if data is not None:  # an empty file means no overrides
        validate(data, OVERRIDES, str(path), "see the README's 'Search-space overrides file'")
    return overrides


def overrides_from_flags(ranges: Iterable[str] = (), options: Iterable[str] = (),
                         pins: Iterable[str] = ()) -> SpaceOverrides:
    """Overrides from CLI flags: ranges ``NAME=MIN:MAX[:log]``, options ``NAME=a,b,c`` and pins
    ``NAME=VALUE``. Values are read as YAML scalars (``1e-5``, ``true``, ``8``)."""
    entries: dict[str, dict[str, Any]] = {}

    range_shape = "NAME=MIN:MAX or NAME=MIN:MAX:log"

    def split(kind: str, text: str, shape: str) -> tuple[str, str]:
        name, eq, rest = text.partition("=")
        if not eq or not name.strip() or not rest.strip():
            raise UserError(f"{kind} '{text}': expected {shape}")
        return name.strip(), rest.strip()

    def add(kind: str, text: str, name: str, keys: dict[str, Any]) -> None:
        entry = entries.setdefault(name, {})
        if set(entry) & set(keys):
            raise UserError(f"{kind} '{text}': {name} is already given a {kind}")
        entry.update(keys)

    for text in ranges:
        name, rest = split("range", text, range_shape)
        parts = rest.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise UserError(f"range '{text}': expected {range_shape}")
        keys = {"valid_min": parse_yaml(parts[0], f"range '{text}'"),
                "valid_max": parse_yaml(parts[1], f"range '{text}'")}
        if len(parts) == 3:
            keys["log"] = True
        add("range", text, name, keys)
    for text in options:
        name, rest = split("options", text, "NAME=a,b,c")
        add("options", text, name, {"valid_options": [parse_yaml(o.strip(), f"options '{text}'")
                                                      for o in rest.split(",")]})
    for text in pins:
        name, rest = split("pin", text, "NAME=VALUE")
        add("pin", text, name, {"value": parse_yaml(rest, f"pin '{text}'")})
    return parse_overrides({"parameters": entries}, "command line")
