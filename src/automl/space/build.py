"""Build a :class:`~automl.space.params.SearchSpace` from a TAO schema and the user's overrides.

Which parameters
    The schema's top-level ``automl_default_parameters``, minus those the schema disables
    (``automl_disabled_parameters`` - exact names only, since TAO lists whole groups there while
    searching their members - or ``automl_enabled: false``) and those that cannot be sampled
    (strings, lists no rule covers, ...: kept in :attr:`SearchSpace.skipped` with the reason). ``only`` replaces
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

Lists (sampled through scalar sub-parameters, see :mod:`automl.space.lists`)
    * ``subset_list`` with options (its ``enum``, or ``valid_options``): :class:`Subset`.
    * A list of ints whose last name segment is a step list (``lr_steps``, ``decay_step_list``,
      ``milestones``): :class:`Steps`, one fraction of the run's epochs per default element, in
      [0, 1] (``valid_min``/``valid_max`` narrow it; they are fractions too).
    * ``list_3`` (TAO's ``[k, k]``): :class:`Tied`, one value in the schema's range, else
      ``valid_min``/``valid_max``, else TAO's rule for sizes: ``[H/100, H/10]`` with ``H`` the
      value of the first ``depends_on`` parent (pinned, else its schema default), widened to
      the default; odd only when the default is odd (Gaussian kernels).
    * Any other list of numbers: :class:`Elements`, its default's length, each element in the
      schema's per-element ``minimum``/``maximum`` lists (or scalars), else TAO's betas ranges
      for a two-element ``*betas``, else ``valid_min``/``valid_max`` (applied to every element).
      ``valid_options`` make each element a choice among them.
    * A pin (``value``) is written exactly as given, after a check of its shape (length, ints
      in increasing order for steps, known options for subsets).
    * ``list_1_*`` (consecutive ranges whose bounds TAO keeps per network in code),
      ``optional_list`` and lists without bounds are skipped with the reason.

Conditions and categoricals: see :mod:`automl.space.params`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from automl.errors import UserError, did_you_mean
from automl.skill.schema import Leaf, disabled_parameters, finite_number, iter_leaves
from automl.space.lists import Elements, ListRule, Steps, Subset, Tied, element_key, fraction_key, option_key, tied_key
from automl.space.overrides import ParamOverride, SpaceOverrides
from automl.space.params import COMPARE, COMPARISONS, Clause, Param, SearchSpace, contains_value, format_value, parse_math_cond


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
    for name, value in pinned.items():
        if _is_list(leaves[name]):
            _check_list_pin(leaves[name], value, leaves, pinned)
    ranged = {name: o for name, o in overrides.parameters.items() if not o.pins}
    defaults = [n for n in schema.get("automl_default_parameters") or [] if isinstance(n, str)]
    candidates = list(dict.fromkeys([*(listed if listed is not None else defaults), *ranged]))

    params: dict[str, Param] = {}
    lists: list[ListRule] = []
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
                if _is_list(leaves[name]):
                    rule, subs = _list_param(leaves[name], ranged.get(name), leaves, pinned)
                    lists.append(rule)
                    params.update((sub.name, sub) for sub in subs)
                else:
                    params[name] = _param(leaves[name], ranged.get(name))
            except _NotSearchable as exc:
                if named_by_user:
                    raise UserError(f"{name}: cannot be searched: {exc}") from None
                skipped[name] = str(exc)
    context = _context(params, pinned, leaves)
    params = _reconcile(params, pinned, context, leaves)
    return SearchSpace(tuple(_parents_first(params)), pinned, skipped, context, tuple(lists))


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
        if x is None or op not in COMPARISONS:
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
            raise UserError(f"{name}: {format_value(value)} is outside the schema's range "
                            f"{'(' if low_open else '['}{format_value(low) if low is not None else '-Infinity'}, "
                            f"{format_value(high) if high is not None else 'Infinity'}{')' if high_open else ']'}")
        return value
    if kind == "bool" and not isinstance(value, bool):
        raise UserError(f"{name}: expected true or false, {got}")
    if _is_list(leaf):  # a subset_list's enum lists its elements' options, checked by its rule
        if not isinstance(value, list):
            raise UserError(f"{name}: expected a list for a {leaf.type} parameter, {got}")
        return value
    if leaf.enum and leaf.type is not None and not contains_value(leaf.enum, value):  # anyOf enums mix types
        raise UserError(f"{name}: {value!r} is not one of the schema's options {list(leaf.enum)}")
    if leaf.type == "string" and not isinstance(value, str):
        raise UserError(f"{name}: expected a string, {got}")
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
    if override is not None and (isinstance(override.valid_min, list) or isinstance(override.valid_max, list)):
        raise UserError(f"{leaf.name}: valid_min/valid_max lists give one bound per element of a list "
                        f"parameter; give numbers for this {leaf.type} parameter")
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
            weights = tuple(next(w for o, w in by_option if contains_value([o], c)) for c in choices)
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
            raise UserError(f"{name}: {key} must be an integer, got {format_value(bound)}")
        if (s_low is not None and bound < s_low) or (s_high is not None and bound > s_high):
            low_text = format_value(s_low) if s_low is not None else "-Infinity"
            high_text = format_value(s_high) if s_high is not None else "Infinity"
            raise UserError(f"{name}: {key} {format_value(bound)} is outside the schema's range [{low_text}, {high_text}]")
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
        message = f"empty range [{format_value(low)}, {format_value(high)}]"
        if o_low is not None or o_high is not None:
            raise UserError(f"{name}: {message}")
        raise _NotSearchable(message)

    if low_from == high_from:
        source = low_from
    else:
        schema_low = "none" if leaf.minimum is None else format_value(leaf.minimum)
        schema_high = "none" if leaf.maximum is None else format_value(leaf.maximum)
        low_text = low_from if low_from in ("override", "schema") else f"{low_from} (schema minimum {schema_low})"
        high_text = high_from if high_from in ("override", "schema") else f"{high_from} (schema maximum {schema_high})"
        source = f"min: {low_text}; max: {high_text}"
    if rate and log and (override is None or override.log is None):
        source += "; log scale (learning rate)"
    default_value = None if default is None else (int(default) if is_int else float(default))
    return Param(name=name, kind="int" if is_int else "float", low=low, high=high, log=bool(log),
                 default=default_value, source=source,
                 depends_on=leaf.depends_on, math_cond=leaf.math_cond)


# --------------------------------------------------------------------------------------------
# Lists (see automl.space.lists)

#: Ranges of an optimizer's two betas when the schema gives none: beta1 (the momentum term) in
#: [0.8, 0.95], beta2 (the second-moment decay) in [0.9, 0.999], as TAO's AutoML draws them.
TAO_BETAS = ((0.8, 0.95), (0.9, 0.999))
_STEP_LISTS = ("steps", "milestones")


def _is_list(leaf: Leaf) -> bool:
    """TAO's list types: list, list_1_backbone, list_1_normal, list_2, list_3, subset_list, optional_list."""
    return "list" in (leaf.type or "")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_step_list(name: str) -> bool:
    """``lr_steps``, ``decay_step_list``, ``milestones``: epochs at which a step schedule decays."""
    tokens = name.rsplit(".", 1)[-1].lower().split("_")
    return bool(set(tokens) & set(_STEP_LISTS)) or {"step", "list"} <= set(tokens)


def _list_param(leaf: Leaf, override: ParamOverride | None, leaves: Mapping[str, Leaf],
                pinned: Mapping[str, Any]) -> tuple[ListRule, list[Param]]:
    """The rule of a list leaf and its sub-parameters; _NotSearchable when no rule covers it,
    UserError when the override does not fit the rule."""
    default = leaf.default if isinstance(leaf.default, list) else None
    if leaf.type in ("list_1_backbone", "list_1_normal"):
        raise _NotSearchable(f"type '{leaf.type}' (a run of consecutive ints whose bounds TAO keeps "
                             "per network in code) cannot be searched; pin a list")
    if leaf.type == "optional_list":
        raise _NotSearchable("type 'optional_list' (null or every option) cannot be searched; pin a value")
    if leaf.type == "subset_list":
        return _subset(leaf, override, default)
    if not default or not all(finite_number(v) is not None for v in default):
        raise _NotSearchable(f"type '{leaf.type}' with default {default!r}: only lists of numbers "
                             "and subset_list can be searched; pin a list")
    if _is_step_list(leaf.name) and all(_is_int(v) for v in default):
        return _steps(leaf, override, default, leaves)
    if leaf.type == "list_3":
        return _tied(leaf, override, default, leaves, pinned)
    return _elements(leaf, override, default)


def _check_list_pin(leaf: Leaf, value: list, leaves: Mapping[str, Leaf], pinned: Mapping[str, Any]) -> None:
    """A pinned list must have the shape its rule would give it (when a rule covers the leaf)."""
    try:
        rule, _ = _list_param(leaf, None, leaves, pinned)
    except _NotSearchable:
        return
    problem = rule.problem(value)
    if problem:
        raise UserError(f"{leaf.name}: cannot pin {problem} ({rule.rule} list)")


def _reject(leaf: Leaf, override: ParamOverride | None, keys: tuple[str, ...], fix: str) -> None:
    if override is None:
        return
    given = [k for k in keys if getattr(override, k) is not None]
    if given:
        raise UserError(f"{leaf.name}: {', '.join(given)} do not apply to this list; {fix}")


def _number_options(leaf: Leaf, override: ParamOverride, integer: bool) -> tuple[tuple, tuple[float, ...] | None]:
    """``valid_options`` of a numeric list: the values each element (or the tied value) may take."""
    options = tuple(override.valid_options or ())
    for option in options:
        if finite_number(option) is None or (integer and not _is_int(option)):
            raise UserError(f"{leaf.name}: valid_options of this list are the values of its elements: "
                            f"expected {'integers' if integer else 'numbers'}, got {option!r}")
    weights = None
    if override.option_weights is not None:
        if len(override.option_weights) != len(options):
            raise UserError(f"{leaf.name}: option_weights has {len(override.option_weights)} entries "
                            f"for {len(options)} options")
        total = sum(override.option_weights)
        weights = tuple(w / total for w in override.option_weights)
    return options, weights


def _range_source(low_from: str, high_from: str) -> str:
    return low_from if low_from == high_from else f"min: {low_from}; max: {high_from}"


def _override_bounds(leaf: Leaf, override: ParamOverride | None, integer: bool,
                     schema: list[tuple[Any, Any]], length: int | None) -> tuple[list[Any], list[Any]]:
    """The user's valid_min/valid_max of a list, one ``(lows, highs)`` entry per element (None
    where not given), checked: ints for int lists, inside each element's ``schema`` range. A list
    of bounds needs ``length`` (None: the rule has one value, not one per element)."""
    out: list[list[Any]] = []
    for key in ("valid_min", "valid_max"):
        bound = getattr(override, key) if override is not None else None
        if isinstance(bound, list) and length is None:
            raise UserError(f"{leaf.name}: {key} is a list, but this list is drawn as one value; give a number")
        if isinstance(bound, list) and len(bound) != length:
            raise UserError(f"{leaf.name}: {key} has {len(bound)} bounds for {length} elements")
        bounds = list(bound) if isinstance(bound, list) else [bound] * (length or 1)
        for value, (low, high) in zip(bounds, schema):
            if value is None:
                continue
            if integer and not float(value).is_integer():
                raise UserError(f"{leaf.name}: {key} must be an integer, got {format_value(value)}")
            if (low is not None and value < low) or (high is not None and value > high):
                raise UserError(f"{leaf.name}: {key} {format_value(value)} is outside the schema's range "
                                f"[{format_value(low) if low is not None else '-Infinity'}, "
                                f"{format_value(high) if high is not None else 'Infinity'}] of an element")
        out.append(bounds)
    return out[0], out[1]


def _element_bounds(leaf: Leaf, length: int) -> tuple[list[tuple[Any, Any]] | None, str]:
    """Per-element ``(low, high)`` from the schema (lists, or scalars for every element), else
    TAO's betas ranges; None without bounds."""
    lows, highs = leaf.minimum, leaf.maximum
    if (isinstance(lows, list) and isinstance(highs, list) and len(lows) == len(highs) == length
            and all(finite_number(v) is not None for v in [*lows, *highs])):
        return list(zip(lows, highs)), "schema (per element)"
    low, high = finite_number(lows), finite_number(highs)
    if low is not None or high is not None:
        return [(low, high)] * length, "schema"
    if leaf.name.rsplit(".", 1)[-1].lower().endswith("betas") and length == 2:
        return list(TAO_BETAS), "TAO's betas ranges"
    return None, ""


def _elements(leaf: Leaf, override: ParamOverride | None, default: list) -> tuple[ListRule, list[Param]]:
    name, length = leaf.name, len(default)
    integer = all(_is_int(v) for v in default)
    keys = tuple(element_key(name, i) for i in range(length))
    if override is not None and override.valid_options is not None:
        choices, weights = _number_options(leaf, override, integer)
        subs = [Param(name=key, kind="categorical", choices=choices, weights=weights,
                      default=value if contains_value(choices, value) else None, source="override valid_options")
                for key, value in zip(keys, default)]
        return Elements(name, keys, tuple(default), "override valid_options", integer=integer), subs
    if override is not None and override.option_weights is not None:
        raise UserError(f"{name}: option_weights need options; give valid_options as well")
    schema, schema_from = _element_bounds(leaf, length)
    unbounded = [(None, None)] * length
    o_lows, o_highs = _override_bounds(leaf, override, integer,
                                       schema if schema and schema_from.startswith("schema") else unbounded, length)
    log = bool(override is not None and override.log)
    subs = []
    for key, value, (s_low, s_high), o_low, o_high in zip(keys, default, schema or unbounded, o_lows, o_highs):
        low = o_low if o_low is not None else s_low
        high = o_high if o_high is not None else s_high
        if low is None or high is None:
            if o_low is not None or o_high is not None:
                raise UserError(f"{name}: the schema gives no {'maximum' if high is None else 'minimum'} "
                                "for its elements; give both valid_min and valid_max")
            raise _NotSearchable(f"a list of {length} numbers without bounds; give valid_min/valid_max "
                                 "(a number for every element, or a list of one per element) or valid_options, or pin a list")
        if low > high or (log and low <= 0):
            message = f"empty range [{format_value(low)}, {format_value(high)}]" if low > high else "log scale needs a minimum > 0"
            if o_low is not None or o_high is not None or log:
                raise UserError(f"{name}: {message}")
            raise _NotSearchable(message)
        cast = int if integer else float
        subs.append(Param(name=key, kind="int" if integer else "float", low=cast(low), high=cast(high), log=log,
                          default=value, source=_range_source("override" if o_low is not None else schema_from,
                                                              "override" if o_high is not None else schema_from)))
    sources = dict.fromkeys(sub.source for sub in subs)
    return Elements(name, keys, tuple(default), "; ".join(sources), integer=integer), subs


def _tied(leaf: Leaf, override: ParamOverride | None, default: list, leaves: Mapping[str, Leaf],
          pinned: Mapping[str, Any]) -> tuple[ListRule, list[Param]]:
    name, length = leaf.name, len(default)
    key = tied_key(name, length)
    integer = all(_is_int(v) for v in default)
    value = default[0] if len(set(default)) == 1 else None
    if override is not None and override.valid_options is not None:
        choices, weights = _number_options(leaf, override, integer)
        sub = Param(name=key, kind="categorical", choices=choices, weights=weights,
                    default=value if contains_value(choices, value) else None, source="override valid_options")
        return Tied(name, (key,), tuple(default), "override valid_options", length=length), [sub]
    if override is not None and override.option_weights is not None:
        raise UserError(f"{name}: option_weights need options; give valid_options as well")
    if override is not None and override.log:
        raise UserError(f"{name}: log scale does not apply to a tied list; drop log")
    s_low, s_high = finite_number(leaf.minimum), finite_number(leaf.maximum)
    (o_low,), (o_high,) = _override_bounds(leaf, override, integer, [(s_low, s_high)], None)
    parent = (leaf.depends_on or "").split(",")[0].strip()
    size = finite_number(pinned.get(parent, leaves[parent].default)) if parent in leaves else None
    if s_low is not None and s_high is not None:
        low, high, source = s_low, s_high, "schema"
    elif size is not None and size >= 10:
        low, high = max(1, int(size) // 100), int(size) // 10
        if value is not None:
            low, high = min(low, value), max(high, value)
        origin = "pinned" if parent in pinned else "default"
        source = f"TAO's rule for [k, k] sizes: {parent}/100 .. {parent}/10 ({parent} = {format_value(size)}, {origin})"
    elif o_low is not None and o_high is not None:
        low, high, source = o_low, o_high, "override"
    else:
        raise _NotSearchable("a tied list without bounds (no schema range, no size parent in depends_on); "
                             "give valid_min/valid_max or pin a list")
    if o_low is not None or o_high is not None:
        low = o_low if o_low is not None else low
        high = o_high if o_high is not None else high
        source = "override" if o_low is not None and o_high is not None else f"{source}; override"
    if low > high:
        raise UserError(f"{name}: empty range [{format_value(low)}, {format_value(high)}]")
    if integer and value is not None and value % 2:
        odd = tuple(range(math.ceil(low) | 1, math.floor(high) + 1, 2))
        if not odd:
            raise UserError(f"{name}: no odd value in [{format_value(low)}, {format_value(high)}] (its default {value} is odd)")
        sub = Param(name=key, kind="categorical", choices=odd, default=value if value in odd else None,
                    source=f"{source}; odd, as the default (kernel sizes)")
    else:
        sub = Param(name=key, kind="int" if integer else "float", low=int(low) if integer else float(low),
                    high=int(high) if integer else float(high), default=value, source=source)
    return Tied(name, (key,), tuple(default), sub.source, length=length), [sub]


def _steps(leaf: Leaf, override: ParamOverride | None, default: list,
           leaves: Mapping[str, Leaf]) -> tuple[ListRule, list[Param]]:
    name, length = leaf.name, len(default)
    _reject(leaf, override, ("valid_options", "option_weights", "log"),
            "a step list's steps are fractions of each run's num_epochs: narrow them with "
            "valid_min/valid_max between 0 and 1, or pin a list of epochs with value")
    if override is not None and (isinstance(override.valid_min, list) or isinstance(override.valid_max, list)):
        raise UserError(f"{name}: valid_min/valid_max of a step list are one fraction each (every step "
                        "shares them), not lists")
    low = override.valid_min if override is not None and override.valid_min is not None else 0.0
    high = override.valid_max if override is not None and override.valid_max is not None else 1.0
    if not 0 <= low <= high <= 1:
        raise UserError(f"{name}: valid_min/valid_max of a step list are fractions of num_epochs, "
                        f"0 <= valid_min <= valid_max <= 1; got [{format_value(low)}, {format_value(high)}]")
    source = "override" if override is not None and (override.valid_min is not None
                                                      or override.valid_max is not None) else "fractions in [0, 1]"
    epochs_leaf = leaves.get(f"{name.rpartition('.')[0]}.num_epochs") or leaves.get("train.num_epochs")
    epochs = finite_number(epochs_leaf.default) if epochs_leaf is not None else None
    fractions = [step / epochs for step in default] if epochs and max(default) < epochs else [None] * length
    keys = tuple(fraction_key(name, i) for i in range(length))
    subs = [Param(name=key, kind="float", low=float(low), high=float(high),
                  default=min(max(f, low), high) if f is not None else None, source=source)
            for key, f in zip(keys, fractions)]
    return Steps(name, keys, tuple(default), source), subs


def _subset(leaf: Leaf, override: ParamOverride | None, default: list | None) -> tuple[ListRule, list[Param]]:
    name = leaf.name
    _reject(leaf, override, ("valid_min", "valid_max", "log", "option_weights"),
            "a subset list takes valid_options (the options each trial keeps or drops)")
    options = tuple(override.valid_options) if override is not None and override.valid_options is not None \
        else tuple(leaf.enum or ())
    if not options:
        raise _NotSearchable("a subset_list without options; give valid_options")
    if not all(isinstance(o, str) for o in options):
        raise UserError(f"{name}: the options of a subset list must be strings, got {list(options)}")
    unknown = [o for o in options if leaf.enum and o not in leaf.enum]
    if unknown:
        raise UserError(f"{name}: {unknown[0]!r} is not one of the schema's options {list(leaf.enum)}")
    source = "override valid_options" if override is not None and override.valid_options is not None \
        else "schema enum"
    keys = tuple(option_key(name, o) for o in options)
    subs = [Param(name=key, kind="categorical", choices=(True, False), default=o in (default or ()), source=source)
            for key, o in zip(keys, options)]
    return Subset(name, keys, tuple(default) if default is not None else None, source, options=options), subs


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
            if op in COMPARISONS and operand is None:
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
        return COMPARE[op](value, limit)

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
                weights = tuple(w for c, w in zip(param.choices, param.weights) if contains_value(kept, c))
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
                                             source=f"{param.source}; max capped to {format_value(high)} {why}")
    elif op in (">", ">=") and bound > low:
        low = bound
        params[parent] = dataclasses.replace(param, low=low,
                                             source=f"{param.source}; min raised to {format_value(low)} {why}")
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
