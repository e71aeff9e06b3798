"""The typed search space: which spec keys are searched, over what, under which conditions.

A :class:`SearchSpace` is built once from a TAO schema plus the user's overrides
(:func:`build_space`), shown to the user (``automl space``), saved in the workspace
(:meth:`SearchSpace.to_json`) and sampled with Optuna's define-by-run API
(:meth:`SearchSpace.suggest`). Every range in it is finite and every choice explicit, so no
algorithm ever sees TAO's ``Infinity``.

Which parameters
    The schema's top-level ``automl_default_parameters``, minus those the schema disables
    (``automl_disabled_parameters`` - exact names only, since TAO lists whole groups there while
    searching their members - or ``automl_enabled: false``) and those that cannot be sampled
    (strings, lists, ...: kept in :attr:`SearchSpace.skipped` with the reason). ``only`` replaces
    the default list, ``exclude`` removes names, a range override adds its parameter, a pin fixes
    one. A parameter the user names explicitly must exist, be enabled and be searchable, or the
    build fails with a UserError that says which and how to fix it.

Ranges when the schema gives no usable bound (each choice is written into ``Param.source``)
    Numeric bounds written in ``math_cond`` (``"> 0.0 <= 1.0"``) count as schema bounds.

    * Learning rates - floats whose last name segment is ``lr``, ``*_lr``, ``lr_*`` or
      ``*learning_rate``, unless it also says decay/step/size/mult/factor/warmup/... (so
      ``lr_backbone`` is a rate, ``lr_decay`` is not) - are searched on a log scale. A missing,
      zero or negative minimum becomes ``default/100``; a missing or infinite maximum becomes
      ``default×10`` (learning rates are usually set near the largest stable value, so the range
      reaches two decades below and one above). Without a positive default, 1e-3 stands in for it.
      Segformer's ``train.optim.lr`` (default 6e-5, schema [0, Infinity]) becomes [6e-7, 6e-4], log.
    * Any other log-scale float (``log: true`` override) with a non-positive minimum: the minimum
      becomes ``default/100``, or ``maximum/10^4`` without a positive default.
    * Other floats: a missing minimum becomes ``min(0, default×10)``; a missing or infinite maximum
      becomes 1.0 when the default lies in [0, 1] (probabilities, momenta, decay factors, ...),
      else ``max(default×10, minimum+1)``.
    * Ints: a missing minimum becomes ``min(0, default×4)``; a missing or infinite maximum becomes
      ``max(default×4, minimum+8)``. A log-scale int's minimum is at least 1.
    * Derived bounds are widened to include the default; schema and override bounds never are.
    * A float with no bounds and no default cannot be searched.

Conditions (``math_cond``; ``depends_on`` names the parent)
    ``> x`` / ``>= x`` / ``< x`` / ``<= x`` bound the value (``>`` and ``<`` exclusively; ``x`` may
    be ``depends_on``, the parent's value); ``/ N`` caps the value at parent/N when the parameter
    has a ``depends_on``, else makes an int a multiple of N; ``^ N`` makes an int a power of N,
    sampled through its exponent. Parents are sampled before children. A parent that is neither
    searched nor pinned is taken at its schema default (:attr:`SearchSpace.context`). At build
    time a searched parent's range is narrowed so every parent value leaves its child a
    non-empty range (e.g. deformable-DETR's ``train_random_crop_min`` is capped below
    ``train_random_crop_max``'s maximum). Other forms (``!= 0``) make a parameter unsearchable.

Categoricals
    Bools are ``(True, False)``; ``ordered_int`` with an enum is a categorical of ints.
    ``option_weights`` are a sampling prior: such a parameter is drawn as a quantile in [0, 1]
    mapped through the cumulative weights (Optuna has no weighted categorical).

User overrides use TAO's keys (``valid_min``, ``valid_max``, ``valid_options``,
``option_weights``) plus ``value`` (pin) and ``log``; unknown keys are rejected, not ignored, and a
pin is written exactly as given.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from automl.errors import UserError, did_you_mean, read_user_text
from automl.json_schemas import OVERRIDES, validate
from automl.skill.schema import Leaf, disabled_parameters, finite_number, iter_leaves, parse_yaml

if TYPE_CHECKING:
    import optuna

# --------------------------------------------------------------------------------------------
# math_cond


Clause = tuple[str, float | None]  # (operator, operand); operand None means "the parent's value"
_COMPARE = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_COMPARISONS = tuple(_COMPARE)
_CLAUSE = re.compile(r"\s*(>=|<=|>|<|/|\^)\s*(depends_on|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


@lru_cache(maxsize=256)
def parse_math_cond(text: str) -> tuple[Clause, ...]:
    """Parse TAO's ``math_cond`` ("> 0.0 <= 1.0", "> depends_on", "/ 8", "^ 2") into clauses.

    Raises ValueError for anything else (e.g. "!= 0"); such parameters are not searched.
    """
    clauses: list[Clause] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _CLAUSE.match(text, pos)
        if not match:
            raise ValueError(f"math_cond '{text}' is not supported")
        op, operand = match.groups()
        if op in ("/", "^") and (operand == "depends_on" or not float(operand).is_integer()
                                 or float(operand) < (1 if op == "/" else 2)):
            raise ValueError(f"math_cond '{text}' is not supported")
        clauses.append((op, None if operand == "depends_on" else float(operand)))
        pos = match.end()
    return tuple(clauses)


def _fmt(value: Any) -> str:
    """Numbers as a user reads them: 6e-05, 0.5, 1332, Infinity (as TAO writes it)."""
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return f"{value:g}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------------------------
# Param


@dataclass(frozen=True)
class Param:
    """One searched spec key. ``low``/``high`` are inclusive; ``math_cond`` may tighten them."""

    name: str
    kind: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()
    weights: tuple[float, ...] | None = None
    default: Any = None
    source: str = "schema"
    depends_on: str | None = None
    math_cond: str | None = None

    @property
    def clauses(self) -> tuple[Clause, ...]:
        return parse_math_cond(self.math_cond) if self.math_cond else ()

    def _parent_value(self, env: Mapping[str, Any]) -> float | None:
        value = env.get(self.depends_on) if self.depends_on else None
        return None if isinstance(value, bool) else finite_number(value)

    def bounds(self, env: Mapping[str, Any] = MappingProxyType({})) -> tuple[float, float, int | None, int | None]:
        """Effective inclusive ``(low, high, step, power_base)`` given the values in ``env``.

        Exclusive bounds become the next representable value; for ints the range is rounded
        inwards and aligned to ``step``. A clause on a parent missing from ``env`` is skipped.
        """
        low, high = self.low, self.high
        low_open = high_open = False
        step = base = None
        parent = self._parent_value(env)
        for op, operand in self.clauses:
            x = parent if operand is None else operand
            if op == "^":
                base = int(operand)
            elif op == "/" and self.depends_on:
                if parent is not None and parent / operand < high:
                    high, high_open = parent / operand, False
            elif op == "/":
                step = int(operand)
            elif x is None:
                continue
            elif op in (">", ">=") and (x > low or (x == low and op == ">")):
                low, low_open = x, op == ">"
            elif op in ("<", "<=") and (x < high or (x == high and op == "<")):
                high, high_open = x, op == "<"
        if self.kind == "int":
            low = math.floor(low) + 1 if low_open else math.ceil(low)
            high = math.ceil(high) - 1 if high_open else math.floor(high)
            if step:
                low, high = -(-low // step) * step, (high // step) * step
            return low, high, step, base
        if low_open:
            low = math.nextafter(low, math.inf)
        if high_open:
            high = math.nextafter(high, -math.inf)
        return float(low), float(high), None, None

    def _infeasible(self, env: Mapping[str, Any]) -> ValueError:
        parent = f" with {self.depends_on}={env.get(self.depends_on)!r}" if self.depends_on else ""
        return ValueError(f"{self.name}: no value satisfies [{_fmt(self.low)}, {_fmt(self.high)}] "
                          f"and math_cond '{self.math_cond}'{parent}")

    def sample(self, trial: optuna.Trial, env: Mapping[str, Any]) -> Any:
        """Draw a value with ``trial`` (under this parameter's name) and return it as a Python value.

        Weighted categoricals draw a quantile in [0, 1] and map it through the cumulative weights
        (Optuna has no weighted categorical); powers draw the exponent. In those two cases
        ``trial.params[name]`` holds the raw draw - callers use the returned value.
        """
        if self.kind == "categorical":
            if self.weights:
                quantile = trial.suggest_float(self.name, 0.0, 1.0)
                return self.choices[_weighted_index(self.weights, quantile)]
            return trial.suggest_categorical(self.name, self.choices)
        low, high, step, base = self.bounds(env)
        if base:
            exponents = _exponents(base, low, high)
            if not exponents:
                raise self._infeasible(env)
            return base ** trial.suggest_int(self.name, exponents[0], exponents[-1])
        if low > high:
            raise self._infeasible(env)
        if self.kind == "int":
            return int(trial.suggest_int(self.name, low, high, step=step or 1, log=self.log))
        return float(trial.suggest_float(self.name, low, high, log=self.log))

    def draw(self, value: Any, env: Mapping[str, Any] = MappingProxyType({})) -> Any:
        """The raw draw under this parameter's name that :meth:`sample` maps to ``value``: what
        Optuna must be told to reproduce a configuration (``automl resume`` re-proposes a
        trial the killed controller had created, see automl.resume.replay). Weighted
        categoricals: the middle of the choice's quantile interval; powers: the exponent."""
        if self.kind == "categorical" and self.weights:
            if not _contains(self.choices, value):
                raise ValueError(f"{self.name}: {value!r} is not one of {list(self.choices)}")
            index = next(i for i, c in enumerate(self.choices) if _contains((c,), value))
            cumulative = [0.0, *(sum(self.weights[: i + 1]) for i in range(len(self.weights)))]
            return (cumulative[index] + cumulative[index + 1]) / 2 / cumulative[-1]
        base = self.bounds(env)[3] if self.kind != "categorical" else None
        if base:
            for exponent in _exponents(base, 1, value if isinstance(value, (int, float)) else 0):
                if base**exponent == value:
                    return exponent
            raise ValueError(f"{self.name}: {value!r} is not a power of {base}")
        return value

    def problem(self, value: Any, env: Mapping[str, Any] = MappingProxyType({})) -> str | None:
        """Why ``value`` is not in this parameter's space (None when it is)."""
        if self.kind == "categorical":
            return None if _contains(self.choices, value) else f"{value!r} is not one of {list(self.choices)}"
        expected = int if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, expected) or not math.isfinite(value):
            return f"{value!r} is not a finite {self.kind}"
        low, high, step, base = self.bounds(env)
        if not low <= value <= high:
            cond = f" (math_cond '{self.math_cond}')" if self.math_cond else ""
            return f"{_fmt(value)} is outside [{_fmt(low)}, {_fmt(high)}]{cond}"
        if step and value % step:
            return f"{value} is not a multiple of {step}"
        if base and value not in (base**k for k in _exponents(base, low, high)):
            return f"{value} is not a power of {base}"
        return None

    def nearest(self, value: Any, env: Mapping[str, Any] = MappingProxyType({})) -> Any:
        """The valid value closest to ``value`` (clamped, rounded, snapped to a power/multiple)."""
        if self.kind == "categorical":
            if _contains(self.choices, value):
                return value
            numeric = [c for c in self.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
            if numeric and isinstance(value, (int, float)) and not isinstance(value, bool):
                return min(numeric, key=lambda c: abs(c - value))
            raise ValueError(f"{self.name}: {value!r} is not one of {list(self.choices)}")
        low, high, step, base = self.bounds(env)
        powers = [base**k for k in _exponents(base, low, high)] if base else []
        if low > high or (base and not powers):
            raise self._infeasible(env)
        clamped = min(max(float(value), low), high)
        if powers:
            return min(powers, key=lambda p: abs(math.log(p) - math.log(max(clamped, 1e-300))))
        if self.kind == "int":
            origin = low if step else 0
            snapped = origin + round((clamped - origin) / (step or 1)) * (step or 1)
            return int(min(max(snapped, low), high))
        return clamped

    def row(self) -> dict[str, Any]:
        """A display row for ``automl space``."""
        is_bool = self.choices == (True, False)
        base = next((int(x) for op, x in self.clauses if op == "^"), None)
        scale = "log" if self.log else "linear"
        return {
            "name": self.name,
            "status": "search",
            "type": "bool" if is_bool else self.kind,
            "range": self._describe(),
            "scale": "-" if self.kind == "categorical" else (f"powers of {base}" if base else scale),
            "default": self.default,
            "source": self.source,
        }

    def _describe(self) -> str:
        if self.kind == "categorical":
            if self.weights:
                return "{" + ", ".join(f"{c!r}: {w:.0%}" for c, w in zip(self.choices, self.weights)) + "}"
            return "{" + ", ".join(repr(c) for c in self.choices) + "}"
        text = f"[{_fmt(self.low)}, {_fmt(self.high)}]"
        for op, operand in self.clauses:
            if op == "^":
                text = f"{int(operand)}^k in {text}"
            elif op == "/" and self.depends_on:
                text += f", <= {self.depends_on} / {_fmt(operand)}"
            elif op == "/":
                text += f", multiple of {int(operand)}"
            elif operand is None:
                text += f", {op} {self.depends_on}"
            elif (op == ">" and operand >= self.low) or (op == ">=" and operand > self.low) or (
                    op == "<" and operand <= self.high) or (op == "<=" and operand < self.high):
                text += f", {op} {_fmt(operand)}"
        return text


def _contains(choices: Iterable, value: Any) -> bool:
    """Membership that does not confuse True with 1 or numpy scalars with Python ones."""
    return any(type(value) is type(c) and value == c for c in choices)


def _weighted_index(weights: tuple[float, ...], quantile: float) -> int:
    cumulative = [sum(weights[: i + 1]) for i in range(len(weights))]
    return min(bisect.bisect_right(cumulative, quantile * cumulative[-1]), len(weights) - 1)


def _exponents(base: int, low: float, high: float) -> list[int]:
    exponents, k = [], 0
    while base**k <= high:
        if base**k >= low:
            exponents.append(k)
        k += 1
    return exponents


# --------------------------------------------------------------------------------------------
# SearchSpace


@dataclass(frozen=True)
class SearchSpace:
    """The searched parameters (parents before children) and the user's pinned values."""

    params: tuple[Param, ...]
    pinned: dict[str, Any] = field(default_factory=dict)
    #: schema default parameters that are not searched, with the reason (shown by ``automl space``)
    skipped: dict[str, str] = field(default_factory=dict)
    #: schema defaults of condition parents that are neither searched nor pinned (never written)
    context: dict[str, Any] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def __getitem__(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(f"{name}: not a searched parameter{did_you_mean(name, self.names())}")

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample one configuration: ``{spec key: value}`` for every searched and pinned parameter.

        Define-by-run: parents are drawn first so their children's ranges honour the conditions.
        Values are plain Python (int, float, bool, str). Usable as Ray Tune's OptunaSearch
        define-by-run function (its returned dict overrides the raw draws Ray captures).
        """
        env = {**self.context, **self.pinned}
        values: dict[str, Any] = {}
        for param in self.params:
            values[param.name] = env[param.name] = param.sample(trial, env)
        return {**values, **self.pinned}

    def draws(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The raw draws :meth:`suggest` turns into ``values`` (see :meth:`Param.draw`); raises
        KeyError or ValueError when ``values`` lacks a parameter or no draw gives its value."""
        env = {**self.context, **self.pinned}
        out: dict[str, Any] = {}
        for param in self.params:
            value = env[param.name] = values[param.name]
            out[param.name] = param.draw(value, env)
        return out

    def validate(self, values: Mapping[str, Any]) -> None:
        """Raise ValueError unless ``values`` assigns every searched parameter a valid value.

        Pinned parameters may be present (with their pinned value); other keys are an error.
        """
        unknown = set(values) - set(self.names()) - set(self.pinned)
        if unknown:
            raise ValueError(f"not in the search space: {', '.join(sorted(unknown))}")
        for name, pinned in self.pinned.items():
            if name in values and values[name] != pinned:
                raise ValueError(f"{name}: pinned to {pinned!r}, got {values[name]!r}")
        env = {**self.context, **self.pinned, **values}
        for param in self.params:
            if param.name not in values:
                raise ValueError(f"{param.name}: missing")
            problem = param.problem(values[param.name], env)
            if problem:
                raise ValueError(f"{param.name}: {problem}")

    def clip(self, name: str, value: Any, others: Mapping[str, Any] | None = None) -> Any:
        """The valid value of ``name`` nearest to ``value`` (type preserved), e.g. after a PBT
        perturbation. ``others`` holds the configuration's other values, for conditions."""
        env = {**self.context, **self.pinned, **(others or {})}
        if name in self.pinned:
            return self.pinned[name]
        return self[name].nearest(value, env)

    def rows(self) -> list[dict[str, Any]]:
        """Rows for ``automl space``: searched, then pinned, then skipped parameters."""
        rows = [param.row() for param in self.params]
        for name, value in self.pinned.items():
            rows.append({"name": name, "status": "pinned", "type": type(value).__name__, "range": repr(value),
                         "scale": "-", "default": value, "source": "pinned by the user"})
        for name, reason in self.skipped.items():
            rows.append({"name": name, "status": "skipped", "type": "-", "range": "-", "scale": "-",
                         "default": None, "source": reason})
        return rows

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict from which :meth:`from_json` rebuilds this exact space."""
        params = []
        for param in self.params:
            data = dataclasses.asdict(param)
            data["choices"] = list(param.choices)
            data["weights"] = list(param.weights) if param.weights else None
            params.append(data)
        return {"params": params, "pinned": dict(self.pinned), "skipped": dict(self.skipped),
                "context": dict(self.context)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchSpace:
        params = []
        for item in data["params"]:
            weights = item.get("weights")
            params.append(Param(**{**item, "choices": tuple(item.get("choices") or ()),
                                   "weights": tuple(weights) if weights else None}))
        return cls(params=tuple(params), pinned=dict(data.get("pinned") or {}),
                   skipped=dict(data.get("skipped") or {}), context=dict(data.get("context") or {}))


# --------------------------------------------------------------------------------------------
# User overrides

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

    valid_min: int | float | None = None
    valid_max: int | float | None = None
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
        if self.valid_min is not None and self.valid_max is not None and self.valid_min > self.valid_max:
            raise ValueError(f"valid_min {_fmt(self.valid_min)} > valid_max {_fmt(self.valid_max)}; "
                             f"swap the two bounds")
        if self.valid_options is not None:
            if not self.valid_options:
                raise ValueError("valid_options is empty; list at least one option (or pin with 'value')")
            if self.valid_min is not None or self.valid_max is not None or self.log:
                raise ValueError("use either valid_options or valid_min/valid_max/log, not both")
            repeated = [o for i, o in enumerate(self.valid_options) if _contains(self.valid_options[:i], o)]
            if repeated:
                raise ValueError(f"valid_options lists {repeated[0]!r} twice")
        if self.option_weights is not None:
            if any(w < 0 for w in self.option_weights) or sum(self.option_weights) <= 0:
                raise ValueError(f"option_weights must be >= 0 with a positive sum, got {self.option_weights}")
            if self.valid_options is not None and len(self.option_weights) != len(self.valid_options):
                raise ValueError(f"option_weights has {len(self.option_weights)} entries "
                                 f"for {len(self.valid_options)} valid_options")
        if self.log and self.valid_min is not None and self.valid_min <= 0:
            raise ValueError(f"log scale needs valid_min > 0, got {_fmt(self.valid_min)}")
        return self

    @property
    def pins(self) -> bool:
        """True when this override fixes the parameter to ``value`` (even a null one)."""
        return "value" in self.model_fields_set


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


# --------------------------------------------------------------------------------------------
# build_space


class _NotSearchable(Exception):
    """A schema parameter that cannot be sampled; the message says why."""


_NOT_A_RATE = {"decay", "step", "steps", "size", "mult", "multiplier", "factor", "warmup", "gamma",
               "policy", "scheduler", "patience", "ratio", "mode", "type"}


def _is_learning_rate(name: str) -> bool:
    last = name.rsplit(".", 1)[-1].lower()
    tokens = set(last.split("_"))
    return not tokens & _NOT_A_RATE and ("lr" in tokens or last.endswith("learning_rate"))


def build_space(schema: Mapping, overrides: SpaceOverrides | None = None,
                parameters: list[str] | None = None) -> SearchSpace:
    """Build the search space of a TAO schema (see the module docstring for every rule).

    ``parameters`` (e.g. from a CLI flag) lists the keys to search and takes precedence over
    ``overrides.only``; without either, the schema's ``automl_default_parameters`` are searched.
    """
    overrides = overrides or SpaceOverrides()
    leaves = {leaf.name: leaf for leaf in iter_leaves(schema)}
    disabled = disabled_parameters(schema)
    listed = parameters if parameters is not None else overrides.only
    for name in [*(listed or []), *overrides.exclude, *overrides.parameters]:
        _require_leaf(name, leaves)
    both = set(overrides.exclude) & set(overrides.parameters)
    if both:
        raise UserError(f"{sorted(both)[0]}: both excluded and overridden; drop one of the two")
    for name in dict.fromkeys([*(listed or []), *overrides.parameters]):
        if name in disabled and name not in overrides.exclude:
            why = "automl_enabled: false" if leaves[name].automl_enabled is False else "automl_disabled_parameters"
            raise UserError(f"{name}: AutoML is disabled for this parameter in the schema ({why}); "
                            "set it in the spec instead")

    pinned = {name: _pin_value(leaves[name], o.value) for name, o in overrides.parameters.items() if o.pins}
    ranged = {name: o for name, o in overrides.parameters.items() if not o.pins}
    defaults = [n for n in schema.get("automl_default_parameters") or [] if isinstance(n, str)]
    candidates = list(dict.fromkeys([*(listed if listed is not None else defaults), *ranged]))

    params: dict[str, Param] = {}
    skipped: dict[str, str] = {}
    for name in candidates:
        if name in overrides.exclude or name in pinned:
            continue
        named_by_user = listed is not None or name in ranged
        if name not in leaves:
            skipped[name] = "listed in automl_default_parameters but not in the schema's properties"
        elif name in disabled:
            skipped[name] = "disabled in the schema"
        else:
            try:
                params[name] = _param(leaves[name], ranged.get(name))
            except _NotSearchable as exc:
                if named_by_user:
                    raise UserError(f"{name}: cannot be searched: {exc}") from None
                skipped[name] = str(exc)
    context = _context(params, pinned, leaves)
    params = _reconcile(params, pinned, context, leaves)
    return SearchSpace(tuple(_parents_first(params)), pinned, skipped, context)


def _require_leaf(name: str, leaves: Mapping[str, Leaf]) -> None:
    if name in leaves:
        return
    members = [leaf for leaf in leaves if leaf.startswith(f"{name}.")]
    if members:
        raise UserError(f"{name}: is a group of parameters, not a parameter (e.g. {members[0]})")
    raise UserError(f"{name}: not a parameter of this schema{did_you_mean(name, leaves)}; "
                    f"`automl space` lists them")


def _schema_bounds(leaf: Leaf, clauses: tuple[Clause, ...]) -> tuple[Any, bool, Any, bool]:
    """``(low, low_open, high, high_open)`` from minimum/maximum and numeric math_cond bounds;
    None where the schema has no finite bound."""
    low, high = finite_number(leaf.minimum), finite_number(leaf.maximum)
    low_open = high_open = False
    for op, x in clauses:
        if x is None or op not in _COMPARISONS:
            continue
        if op in (">", ">=") and (low is None or x >= low):
            low, low_open = x, op == ">"
        elif op in ("<", "<=") and (high is None or x <= high):
            high, high_open = x, op == "<"
    return low, low_open, high, high_open


def _pin_value(leaf: Leaf, value: Any) -> Any:
    """``value`` checked against the leaf's type and bounds (ints stay ints, floats become floats)."""
    name, kind = leaf.name, leaf.kind
    got = f"got {value!r} ({type(value).__name__})"
    if kind in ("float", "int"):
        number = None if isinstance(value, bool) or not isinstance(value, (int, float)) else value
        if number is None or not math.isfinite(number):
            raise UserError(f"{name}: expected a number for a {leaf.type or 'numeric'} parameter, {got}")
        if kind == "int":
            if not float(number).is_integer():
                raise UserError(f"{name}: expected an integer, {got}")
            value = int(number)
        else:
            value = float(number)
        try:
            clauses = parse_math_cond(leaf.math_cond) if leaf.math_cond else ()
        except ValueError:
            clauses = ()
        low, low_open, high, high_open = _schema_bounds(leaf, clauses)
        if (low is not None and (value < low or (low_open and value == low))) or (
                high is not None and (value > high or (high_open and value == high))):
            raise UserError(f"{name}: {_fmt(value)} is outside the schema's range "
                            f"{'(' if low_open else '['}{_fmt(low) if low is not None else '-Infinity'}, "
                            f"{_fmt(high) if high is not None else 'Infinity'}{')' if high_open else ']'}")
        return value
    if kind == "bool" and not isinstance(value, bool):
        raise UserError(f"{name}: expected true or false, {got}")
    if leaf.enum and leaf.type is not None and not _contains(leaf.enum, value):  # anyOf enums mix types
        raise UserError(f"{name}: {value!r} is not one of the schema's options {list(leaf.enum)}")
    if leaf.type == "string" and not isinstance(value, str):
        raise UserError(f"{name}: expected a string, {got}")
    if "list" in (leaf.type or "") and not isinstance(value, list):
        raise UserError(f"{name}: expected a list for a {leaf.type} parameter, {got}")
    return value


def _param(leaf: Leaf, override: ParamOverride | None) -> Param:
    """The Param for a schema leaf, applying ``override``; _NotSearchable if it cannot be sampled,
    UserError if the override does not fit the schema."""
    try:
        clauses = parse_math_cond(leaf.math_cond) if leaf.math_cond else ()
    except ValueError as exc:
        raise _NotSearchable(str(exc)) from None
    if any(op == "/" or x is None for op, x in clauses) and leaf.depends_on and "," in leaf.depends_on:
        raise _NotSearchable(f"math_cond '{leaf.math_cond}' depends on several parameters ({leaf.depends_on})")
    if override is not None and override.valid_options is not None:
        return _categorical(leaf, override, _options(leaf, override.valid_options))
    kind = leaf.kind
    if kind is None:
        hint = "; give valid_options to search it" if leaf.type == "string" else ""
        raise _NotSearchable(f"{leaf.unsearchable}{hint}")
    if kind in ("bool", "categorical"):
        if override is not None and (override.valid_min is not None or override.valid_max is not None or override.log):
            raise UserError(f"{leaf.name}: is a {leaf.type} parameter; valid_min/valid_max/log apply to "
                            "numbers, use valid_options")
        choices = (True, False) if kind == "bool" else leaf.enum
        return _categorical(leaf, override, choices)
    if override is not None and override.option_weights is not None:
        raise UserError(f"{leaf.name}: option_weights need options; give valid_options as well")
    return _numeric(leaf, kind, override, clauses)


def _options(leaf: Leaf, options: list) -> tuple:
    """User ``valid_options`` checked against the leaf's type, enum and bounds."""
    if leaf.kind is None and leaf.type != "string":
        raise _NotSearchable(f"{leaf.unsearchable}")
    return tuple(_pin_value(leaf, option) for option in options)


def _categorical(leaf: Leaf, override: ParamOverride | None, choices: tuple) -> Param:
    weights, source = None, "schema enum" if leaf.enum else "schema (bool)"
    if override is not None and override.valid_options is not None:
        source = "override valid_options"
    if override is not None and override.option_weights is not None:
        if len(override.option_weights) != len(choices):
            raise UserError(f"{leaf.name}: option_weights has {len(override.option_weights)} entries "
                            f"for {len(choices)} options {list(choices)}")
        weights = tuple(override.option_weights)
        source += "; override option_weights"
    elif leaf.option_weights:
        if leaf.enum and len(leaf.option_weights) == len(leaf.enum) and all(
                isinstance(w, (int, float)) and w >= 0 for w in leaf.option_weights):
            by_option = [(o, w) for o, w in zip(leaf.enum, leaf.option_weights)]
            weights = tuple(next(w for o, w in by_option if _contains([o], c)) for c in choices)
            source += "; schema option_weights"
        else:
            source += (f"; schema option_weights ignored ({len(leaf.option_weights)} weights "
                       f"for {len(leaf.enum or ())} options)")
    if weights is not None:
        total = sum(weights)
        weights = tuple(w / total for w in weights) if total > 0 else None
    return Param(name=leaf.name, kind="categorical", choices=tuple(choices), weights=weights,
                 default=leaf.default, source=source, depends_on=leaf.depends_on)


def _numeric(leaf: Leaf, kind: str, override: ParamOverride | None, clauses: tuple[Clause, ...]) -> Param:
    name, is_int = leaf.name, kind == "int"
    ops = {op for op, _ in clauses}
    if not is_int and ("^" in ops or ("/" in ops and not leaf.depends_on)):
        raise _NotSearchable(f"math_cond '{leaf.math_cond}' applies to integers only")
    default = finite_number(leaf.default)
    s_low, _, s_high, _ = _schema_bounds(leaf, clauses)
    o_low = override.valid_min if override else None
    o_high = override.valid_max if override else None
    for key, bound in (("valid_min", o_low), ("valid_max", o_high)):
        if bound is None:
            continue
        if is_int and not float(bound).is_integer():
            raise UserError(f"{name}: {key} must be an integer, got {_fmt(bound)}")
        if (s_low is not None and bound < s_low) or (s_high is not None and bound > s_high):
            low_text = _fmt(s_low) if s_low is not None else "-Infinity"
            high_text = _fmt(s_high) if s_high is not None else "Infinity"
            raise UserError(f"{name}: {key} {_fmt(bound)} is outside the schema's range [{low_text}, {high_text}]")
    rate = not is_int and _is_learning_rate(name)
    log = override.log if override is not None and override.log is not None else rate
    if log and "^" in ops:
        log = False  # a power of N is already sampled log-uniformly, through its exponent
    if log and "/" in ops and not leaf.depends_on:
        raise UserError(f"{name}: log scale cannot be combined with math_cond '{leaf.math_cond}'")
    if default is None and s_low is None and s_high is None and o_low is None and o_high is None:
        raise _NotSearchable("no bounds and no default to derive a range from")

    anchor = default if default is not None and default > 0 else (1e-3 if rate else None)
    # minimum
    if o_low is not None:
        low, low_from = o_low, "override"
    elif s_low is not None and not (log and s_low <= 0):
        low, low_from = s_low, "schema"
    elif log and is_int:
        low, low_from = 1, "1 (log scale)"
    elif log and anchor is not None:
        low, low_from = anchor / 100, "default/100"
    elif log:
        known_high = o_high if o_high is not None else s_high
        if known_high is None or known_high <= 0:
            raise _NotSearchable("log scale needs a positive bound or default")
        low, low_from = known_high / 1e4, "maximum/10^4"
    else:
        factor = 4 if is_int else 10
        low, low_from = min(0, (default or 0) * factor), f"min(0, default×{factor})"
    # maximum
    if o_high is not None:
        high, high_from = o_high, "override"
    elif s_high is not None:
        high, high_from = s_high, "schema"
    elif log and anchor is not None and not is_int:
        high, high_from = anchor * 10, "default×10"
    elif log and not is_int:
        high, high_from = low * 1e4, "minimum×10^4"
    elif is_int:
        high, high_from = max((default or 0) * 4, low + 8), "max(default×4, minimum+8)"
    elif default is not None and 0 <= default <= 1 and low < 1:
        high, high_from = 1.0, "1 (default in [0, 1])"
    else:
        high, high_from = max((default or 0) * 10, low + 1), "max(default×10, minimum+1)"
    # derived bounds include the default
    if default is not None and low_from not in ("override", "schema") and default < low and (default > 0 or not log):
        low = default
    if default is not None and high_from not in ("override", "schema") and default > high:
        high = default
    if is_int:
        low, high = math.ceil(low), math.floor(high)
        step = next((int(x) for op, x in clauses if op == "/" and not leaf.depends_on), None)
        if step:
            low, high = -(-low // step) * step, (high // step) * step
        if "^" in ops and low < 1:
            low, low_from = 1, f"{low_from}, raised to 1 for powers"
    else:
        low, high = float(low), float(high)
    if low > high:
        message = f"empty range [{_fmt(low)}, {_fmt(high)}]"
        if o_low is not None or o_high is not None:
            raise UserError(f"{name}: {message}")
        raise _NotSearchable(message)

    if low_from == high_from:
        source = low_from
    else:
        schema_low = "none" if leaf.minimum is None else _fmt(leaf.minimum)
        schema_high = "none" if leaf.maximum is None else _fmt(leaf.maximum)
        low_text = low_from if low_from in ("override", "schema") else f"{low_from} (schema minimum {schema_low})"
        high_text = high_from if high_from in ("override", "schema") else f"{high_from} (schema maximum {schema_high})"
        source = f"min: {low_text}; max: {high_text}"
    if rate and log and (override is None or override.log is None):
        source += "; log scale (learning rate)"
    default_value = None if default is None else (int(default) if is_int else float(default))
    return Param(name=name, kind="int" if is_int else "float", low=low, high=high, log=bool(log),
                 default=default_value, source=source,
                 depends_on=leaf.depends_on, math_cond=leaf.math_cond)


def _context(params: Mapping[str, Param], pinned: Mapping[str, Any], leaves: Mapping[str, Leaf]) -> dict[str, Any]:
    """Schema defaults of parents that conditions refer to but that are neither searched nor pinned."""
    context = {}
    for param in params.values():
        parent = param.depends_on
        if param.clauses and parent and parent not in params and parent not in pinned and parent in leaves:
            value = finite_number(leaves[parent].default)
            if value is not None:
                context[parent] = value
    return context


def _reconcile(params: dict[str, Param], pinned: Mapping[str, Any], context: Mapping[str, Any],
               leaves: Mapping[str, Leaf]) -> dict[str, Param]:
    """Narrow searched parents so that every parent value leaves each child a non-empty range;
    UserError where a fixed (pinned or default) parent or a user range makes that impossible."""
    params = dict(params)
    for name, leaf in leaves.items():
        parent = leaf.depends_on
        if not parent or not leaf.math_cond or parent not in leaves:
            continue
        if name in params and params[name].kind != "categorical":
            child = params[name]
            low, high = child.low, child.high
        elif name in pinned and finite_number(pinned[name]) is not None:
            low = high = pinned[name]
        else:
            continue
        try:
            clauses = parse_math_cond(leaf.math_cond)
        except ValueError:
            continue
        for op, operand in clauses:
            if op in _COMPARISONS and operand is None:
                needed = {">": ("<", high), ">=": ("<=", high), "<": (">", low), "<=": (">=", low)}[op]
            elif op == "/":
                needed = (">=", low * operand)
            else:
                continue
            params = _restrict_parent(params, parent, needed, name, leaf.math_cond, pinned, context)
    return params


def _restrict_parent(params: dict[str, Param], parent: str, needed: tuple[str, float], child: str,
                     cond: str, pinned: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Param]:
    op, limit = needed

    def ok(value: Any) -> bool:
        return _COMPARE[op](value, limit)

    why = f"so that {child} ({cond}) keeps a non-empty range"
    fixed = pinned.get(parent, context.get(parent))
    if parent not in params:
        if fixed is not None and not ok(fixed):
            origin = "pinned" if parent in pinned else "schema default"
            raise UserError(f"{child}: math_cond '{cond}' cannot hold with {parent} = {fixed!r} ({origin}); "
                            f"change {child}'s range or {parent}")
        return params
    param = params[parent]
    if param.kind == "categorical":
        kept = tuple(c for c in param.choices if isinstance(c, (int, float)) and ok(c))
        if kept != param.choices:
            if not kept:
                raise UserError(f"{parent}: no option leaves {child} ({cond}) a valid value; change either range")
            weights = None
            if param.weights:
                weights = tuple(w for c, w in zip(param.choices, param.weights) if _contains(kept, c))
                weights = tuple(w / sum(weights) for w in weights) if sum(weights) > 0 else None
            params[parent] = dataclasses.replace(param, choices=kept, weights=weights,
                                                 source=f"{param.source}; options limited {why}")
        return params
    is_int = param.kind == "int"
    if op == "<":
        bound = math.ceil(limit) - 1 if is_int else math.nextafter(limit, -math.inf)
    elif op == "<=":
        bound = math.floor(limit) if is_int else limit
    elif op == ">":
        bound = math.floor(limit) + 1 if is_int else math.nextafter(limit, math.inf)
    else:
        bound = math.ceil(limit) if is_int else limit
    low, high = param.low, param.high
    if op in ("<", "<=") and bound < high:
        high = bound
        params[parent] = dataclasses.replace(param, high=high,
                                             source=f"{param.source}; max capped to {_fmt(high)} {why}")
    elif op in (">", ">=") and bound > low:
        low = bound
        params[parent] = dataclasses.replace(param, low=low,
                                             source=f"{param.source}; min raised to {_fmt(low)} {why}")
    if low > high:
        raise UserError(f"{parent}: no value in its range leaves {child} ({cond}) a valid value; change either range")
    return params


def _parents_first(params: Mapping[str, Param]) -> list[Param]:
    """Params sorted by name, each after the parent it depends on."""
    ordered: list[Param] = []
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in chain:
            raise UserError(f"{name}: circular depends_on ({' -> '.join([*chain, name])})")
        parent = params[name].depends_on
        for item in (parent or "").split(","):
            if item.strip() in params:
                visit(item.strip(), (*chain, name))
        done.add(name)
        ordered.append(params[name])

    for name in sorted(params):
        visit(name, ())
    return ordered
