"""List-valued schema parameters, searched as scalar sub-parameters.

TAO's AutoML searches a few list shapes (its ``list_2``, ``list_3`` and ``subset_list`` types): an
optimizer's betas, each element in its own range; a step list (``lr_steps``,
``decay_step_list``), sorted epochs within the training budget; an ``[k, k]`` size that stays one
value repeated; a subset of a list of options. Each shape is a :class:`ListRule` here.

A list never reaches a sampler as a list. Its rule names scalar *sub-parameters*, kept in
``SearchSpace.params`` like every other parameter, so every algorithm (Optuna's samplers, DEHB's
vectors, PBT's perturbations, the GPs of PB2 and BFBO) samples, perturbs and clips them unchanged;
one step, :func:`assemble`, turns a trial's sub-parameter values into the list written to the spec.

Sub-parameter keys (trial configs, history.json and MLflow show these)
    ``K[i]``            element ``i`` of ``K``                                (:class:`Elements`)
    ``K[i,j,...]``      one value written to elements ``i, j, ...``           (:class:`Tied`)
    ``K[i].fraction``   step ``i`` as a fraction of the run's ``num_epochs``  (:class:`Steps`)
    ``K{option}``       whether ``option`` is in ``K`` (True/False)           (:class:`Subset`)

The key alone says how to assemble, so the spec builder needs no search space (a trial process
and a resumed experiment hold only configurations). Keys avoid ``/``: Ray Tune reads it as a
nesting separator. This module imports nothing from the rest of the package (the spec builder
and the search space both import it).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

_INDEXED = re.compile(r"(?P<name>.+)\[(?P<indexes>\d+(?:,\d+)*)\](?P<fraction>\.fraction)?")
_OPTION = re.compile(r"(?P<name>[^{}]+)\{(?P<option>[^{}]*)\}")


def element_key(name: str, index: int) -> str:
    return f"{name}[{index}]"


def tied_key(name: str, length: int) -> str:
    return f"{name}[{','.join(str(i) for i in range(length))}]"


def fraction_key(name: str, index: int) -> str:
    return f"{name}[{index}].fraction"


def option_key(name: str, option: str) -> str:
    return f"{name}{{{option}}}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class ListRule:
    """One searched list: its spec key, the keys of its sub-parameters, its schema default.

    ``source`` says where the sub-parameters' bounds come from (shown by ``automl space``).
    """

    name: str
    keys: tuple[str, ...]
    default: tuple | None = None
    source: str = "schema"

    #: the rule's name in ``automl space`` and in the workspace's saved space
    rule: ClassVar[str] = ""
    #: one line: how the list is drawn and assembled
    summary: ClassVar[str] = ""

    def problem(self, value: Any) -> str | None:
        """Why ``value`` cannot be this list (a pinned value is checked with it); None if it can."""
        return None if isinstance(value, list) else f"{value!r} is not a list"

    def range_text(self, sub_ranges: list[str]) -> str:
        """The range column of ``automl space``, from the sub-parameters' own range texts."""
        return " × ".join(sub_ranges)

    def to_json(self) -> dict[str, Any]:
        data = {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}
        return {"rule": self.rule, **data}


@dataclass(frozen=True)
class Elements(ListRule):
    """A fixed-length list of numbers, each element drawn in its own range (Adam's betas)."""

    integer: bool = False
    rule: ClassVar[str] = "elements"
    summary: ClassVar[str] = "fixed length; each element drawn in its own range"

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, list) or len(value) != len(self.keys):
            return f"{value!r} is not a list of {len(self.keys)} numbers"
        check = _is_int if self.integer else _is_number
        if not all(check(v) for v in value):
            return f"{value!r}: every element must be a finite {'integer' if self.integer else 'number'}"
        return None


@dataclass(frozen=True)
class Tied(ListRule):
    """``[k, k, ...]``: one drawn value repeated in every element (TAO's ``list_3``: a square
    kernel or size stays square)."""

    length: int = 2
    rule: ClassVar[str] = "tied"
    summary: ClassVar[str] = "one value repeated in every element"

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, list) or len(value) != self.length or not all(_is_number(v) for v in value):
            return f"{value!r} is not a list of {self.length} numbers"
        return None

    def range_text(self, sub_ranges: list[str]) -> str:
        return f"{sub_ranges[0]}, repeated ×{self.length}"


@dataclass(frozen=True)
class Steps(ListRule):
    """Epochs at which a step schedule decays (``lr_steps``, ``decay_step_list``).

    Each step is drawn as a fraction of the run's epoch budget, so the schedule keeps its shape
    whatever ``train.num_epochs`` a bracket algorithm gives a run (the project's convention: the
    LR schedule's horizon is each run's ``num_epochs``). The written list is sorted, strictly
    increasing, and every step lies in ``1 .. num_epochs - 1`` (see :func:`steps_at`).
    """

    rule: ClassVar[str] = "steps"
    summary: ClassVar[str] = ("epochs = round(fraction × the run's num_epochs), kept in 1..num_epochs-1, "
                              "sorted, repeats dropped")

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, list) or not all(_is_int(v) and v >= 1 for v in value):
            return f"{value!r} is not a list of epochs (integers >= 1)"
        if any(b <= a for a, b in itertools.pairwise(value)):
            return f"{value!r} is not strictly increasing"
        return None

    def range_text(self, sub_ranges: list[str]) -> str:
        return f"{len(self.keys)} steps, each at a fraction in {sub_ranges[0]} of num_epochs"


@dataclass(frozen=True)
class Subset(ListRule):
    """A subset of ``options``: each option drawn in or out (TAO's ``subset_list``; the empty
    list is possible, as in TAO)."""

    options: tuple[str, ...] = ()
    rule: ClassVar[str] = "subset"
    summary: ClassVar[str] = "each option drawn in or out"

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"{value!r} is not a list of strings"
        unknown = [v for v in value if v not in self.options]
        if unknown:
            return f"{unknown[0]!r} is not one of {list(self.options)}"
        if len(set(value)) != len(value):
            return f"{value!r} lists an option twice"
        return None

    def range_text(self, sub_ranges: list[str]) -> str:
        return "subset of {" + ", ".join(self.options) + "}"


RULES: dict[str, type[ListRule]] = {cls.rule: cls for cls in (Elements, Tied, Steps, Subset)}


def rule_from_json(data: Mapping[str, Any]) -> ListRule:
    """The rule :meth:`ListRule.to_json` wrote (KeyError for an unknown rule)."""
    cls = RULES[data["rule"]]
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields}
    return cls(**kwargs)


# --------------------------------------------------------------------------------------------
# Assembly


def steps_at(fractions: list[float], epochs: int) -> list[int]:
    """Step epochs for a run of ``epochs``: each fraction × epochs rounded half up, kept in
    ``1 .. epochs - 1`` (a step at 0 or at the end changes nothing), sorted, repeats dropped;
    empty when the run is too short for a step. Shorter than ``fractions`` where two fractions
    land on the same epoch."""
    if epochs < 2:
        return []
    return sorted({min(max(math.floor(f * epochs + 0.5), 1), epochs - 1) for f in fractions})


def parse_key(key: str) -> tuple[str, str, Any] | None:
    """``(list key, rule, where)`` for a sub-parameter key, None for any other key. ``where`` is
    the tuple of indexes (elements, tied, steps) or the option (subset)."""
    match = _INDEXED.fullmatch(key)
    if match:
        indexes = tuple(int(i) for i in match["indexes"].split(","))
        if match["fraction"]:
            return match["name"], Steps.rule, indexes
        return match["name"], (Tied.rule if len(indexes) > 1 else Elements.rule), indexes
    match = _OPTION.fullmatch(key)
    if match:
        return match["name"], Subset.rule, match["option"]
    return None


def assemble(values: Mapping[str, Any], epochs: int) -> dict[str, Any]:
    """``values`` with every list's sub-parameters replaced by the list itself, at the place of
    its first sub-parameter; other keys are kept as they are.

    ``epochs`` is the run's ``train.num_epochs`` (step lists are placed within it). Raises
    ValueError when a list's sub-parameters do not fit together (mixed rules, an element set
    twice or never): a configuration no search space produces.
    """
    out: dict[str, Any] = {}
    parts: dict[str, list[tuple[str, Any, Any]]] = {}
    for key, value in values.items():
        parsed = parse_key(key)
        if parsed is None:
            out[key] = value
            continue
        name, rule, where = parsed
        if name not in parts:
            parts[name] = []
            out[name] = None  # keeps the list where its first sub-parameter was
        parts[name].append((rule, where, value))
    for name, items in parts.items():
        out[name] = _assembled(name, items, epochs)
    return out


def _assembled(name: str, items: list[tuple[str, Any, Any]], epochs: int) -> list:
    rules = {rule for rule, _, _ in items}
    if rules == {Subset.rule}:
        return [option for _, option, included in items if included]
    if rules == {Steps.rule}:
        return steps_at([float(value) for _, _, value in items], epochs)
    if Steps.rule in rules or Subset.rule in rules:
        raise ValueError(f"{name}: sub-parameters of different list rules ({', '.join(sorted(rules))})")
    elements: dict[int, Any] = {}
    for _, indexes, value in items:
        for index in indexes:
            if index in elements:
                raise ValueError(f"{name}: element {index} is set by two sub-parameters")
            elements[index] = value
    missing = sorted(set(range(max(elements) + 1)) - set(elements))
    if missing:
        raise ValueError(f"{name}: no sub-parameter sets element {missing[0]}")
    return [elements[i] for i in range(len(elements))]
