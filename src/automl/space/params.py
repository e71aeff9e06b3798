"""The typed search space: which spec keys are searched, over what, under which conditions.

A :class:`SearchSpace` is built once from a TAO schema plus the user's overrides
(:func:`automl.space.build.build_space`), shown to the user (``automl space``), saved in the
workspace (:meth:`SearchSpace.to_json`) and sampled with Optuna's define-by-run API
(:meth:`SearchSpace.suggest`). Every range in it is finite and every choice explicit, so no
algorithm ever sees TAO's ``Infinity``. The classes stay in this module because searcher state
saved in workspaces (Tune's pickles) names them here.

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

Lists
    A searched list parameter is a :class:`~automl.space.lists.ListRule` in
    :attr:`SearchSpace.lists` plus its scalar sub-parameters (``train.optim.betas[0]``, ...) in
    :attr:`SearchSpace.params`: configurations hold the sub-parameters, the spec builder
    assembles the list (:func:`automl.space.lists.assemble`).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from automl.errors import did_you_mean
from automl.skill.schema import finite_number
from automl.space.lists import ListRule, rule_from_json

if TYPE_CHECKING:
    import optuna

# --------------------------------------------------------------------------------------------
# math_cond


Clause = tuple[str, float | None]  # (operator, operand); operand None means "the parent's value"
COMPARE = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
COMPARISONS = tuple(COMPARE)
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


def format_value(value: Any) -> str:
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
        return ValueError(f"{self.name}: no value satisfies [{format_value(self.low)}, {format_value(self.high)}] "
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
                return self.choices[weighted_index(self.weights, quantile)]
            return trial.suggest_categorical(self.name, self.choices)
        low, high, step, base = self.bounds(env)
        if base:
            exponents = power_exponents(base, low, high)
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
            if not contains_value(self.choices, value):
                raise ValueError(f"{self.name}: {value!r} is not one of {list(self.choices)}")
            index = next(i for i, c in enumerate(self.choices) if contains_value((c,), value))
            cumulative = [0.0, *(sum(self.weights[: i + 1]) for i in range(len(self.weights)))]
            return (cumulative[index] + cumulative[index + 1]) / 2 / cumulative[-1]
        base = self.bounds(env)[3] if self.kind != "categorical" else None
        if base:
            for exponent in power_exponents(base, 1, value if isinstance(value, (int, float)) else 0):
                if base**exponent == value:
                    return exponent
            raise ValueError(f"{self.name}: {value!r} is not a power of {base}")
        return value

    def problem(self, value: Any, env: Mapping[str, Any] = MappingProxyType({})) -> str | None:
        """Why ``value`` is not in this parameter's space (None when it is)."""
        if self.kind == "categorical":
            return None if contains_value(self.choices, value) else f"{value!r} is not one of {list(self.choices)}"
        expected = int if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, expected) or not math.isfinite(value):
            return f"{value!r} is not a finite {self.kind}"
        low, high, step, base = self.bounds(env)
        if not low <= value <= high:
            cond = f" (math_cond '{self.math_cond}')" if self.math_cond else ""
            return f"{format_value(value)} is outside [{format_value(low)}, {format_value(high)}]{cond}"
        if step and value % step:
            return f"{value} is not a multiple of {step}"
        if base and value not in (base**k for k in power_exponents(base, low, high)):
            return f"{value} is not a power of {base}"
        return None

    def nearest(self, value: Any, env: Mapping[str, Any] = MappingProxyType({})) -> Any:
        """The valid value closest to ``value`` (clamped, rounded, snapped to a power/multiple)."""
        if self.kind == "categorical":
            if contains_value(self.choices, value):
                return value
            numeric = [c for c in self.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
            if numeric and isinstance(value, (int, float)) and not isinstance(value, bool):
                return min(numeric, key=lambda c: abs(c - value))
            raise ValueError(f"{self.name}: {value!r} is not one of {list(self.choices)}")
        low, high, step, base = self.bounds(env)
        powers = [base**k for k in power_exponents(base, low, high)] if base else []
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
        text = f"[{format_value(self.low)}, {format_value(self.high)}]"
        for op, operand in self.clauses:
            if op == "^":
                text = f"{int(operand)}^k in {text}"
            elif op == "/" and self.depends_on:
                text += f", <= {self.depends_on} / {format_value(operand)}"
            elif op == "/":
                text += f", multiple of {int(operand)}"
            elif operand is None:
                text += f", {op} {self.depends_on}"
            elif (op == ">" and operand >= self.low) or (op == ">=" and operand > self.low) or (
                    op == "<" and operand <= self.high) or (op == "<=" and operand < self.high):
                text += f", {op} {format_value(operand)}"
        return text


def contains_value(choices: Iterable, value: Any) -> bool:
    """Membership that does not confuse True with 1 or numpy scalars with Python ones."""
    return any(type(value) is type(c) and value == c for c in choices)


def weighted_index(weights: tuple[float, ...], quantile: float) -> int:
    cumulative = [sum(weights[: i + 1]) for i in range(len(weights))]
    return min(bisect.bisect_right(cumulative, quantile * cumulative[-1]), len(weights) - 1)


def power_exponents(base: int, low: float, high: float) -> list[int]:
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
    #: searched lists; their sub-parameters are in ``params`` (a plain default: Tune's pickles
    #: of spaces saved before lists were searched have no such attribute)
    lists: tuple[ListRule, ...] = ()

    def names(self) -> list[str]:
        """The keys of a configuration's searched values (a list's sub-parameters, not the list)."""
        return [p.name for p in self.params]

    def spec_keys(self) -> list[str]:
        """The spec keys the search writes: a searched list once, by its own key."""
        in_lists = {key for rule in self.lists for key in rule.keys}
        return [p.name for p in self.params if p.name not in in_lists] + [rule.name for rule in self.lists]

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
        """Rows for ``automl space``: searched, then pinned, then skipped parameters. A searched
        list is one row (its rule, its sub-parameters' ranges and keys), at its first
        sub-parameter's place."""
        owner = {key: rule for rule in self.lists for key in rule.keys}
        rows = []
        for param in self.params:
            rule = owner.get(param.name)
            if rule is None:
                rows.append(param.row())
            elif param.name == rule.keys[0]:
                rows.append(self._list_row(rule))
        for name, value in self.pinned.items():
            rows.append({"name": name, "status": "pinned", "type": type(value).__name__, "range": repr(value),
                         "scale": "-", "default": value, "source": "pinned by the user"})
        for name, reason in self.skipped.items():
            rows.append({"name": name, "status": "skipped", "type": "-", "range": "-", "scale": "-",
                         "default": None, "source": reason})
        return rows

    def _list_row(self, rule: ListRule) -> dict[str, Any]:
        subs = [self[key].row() for key in rule.keys]
        scales = sorted({row["scale"] for row in subs})
        return {
            "name": rule.name,
            "status": "search",
            "type": f"list ({rule.rule})",
            "range": rule.range_text([row["range"] for row in subs]),
            "scale": ", ".join(scales),
            "default": list(rule.default) if rule.default is not None else None,
            "source": f"{rule.summary}; {rule.source}; sampled as {', '.join(rule.keys)}",
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict from which :meth:`from_json` rebuilds this exact space."""
        params = []
        for param in self.params:
            data = dataclasses.asdict(param)
            data["choices"] = list(param.choices)
            data["weights"] = list(param.weights) if param.weights else None
            params.append(data)
        return {"params": params, "pinned": dict(self.pinned), "skipped": dict(self.skipped),
                "context": dict(self.context), "lists": [rule.to_json() for rule in self.lists]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchSpace:
        params = []
        for item in data["params"]:
            weights = item.get("weights")
            params.append(Param(**{**item, "choices": tuple(item.get("choices") or ()),
                                   "weights": tuple(weights) if weights else None}))
        return cls(params=tuple(params), pinned=dict(data.get("pinned") or {}),
                   skipped=dict(data.get("skipped") or {}), context=dict(data.get("context") or {}),
                   lists=tuple(rule_from_json(rule) for rule in data.get("lists") or ()))
