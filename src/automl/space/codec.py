"""A configuration as points of the unit cube, for the searchers that work in coordinates
(the GP's candidates and features, DEHB's population, the prior's neighbourhood).

* :class:`Codec` - a configuration <-> one unit coordinate per parameter (for drawing valid
  configurations through the space: conditions, multiples, powers and weights respected) and
  GP features (numeric parameters scaled in their static range, on the log scale where
  searched so, the exponent for powers; categoricals one-hot).
* :func:`reflect` - a step around a centre folded back into [0, 1].

Why in :mod:`automl.space`: it is the space's geometry, not a model's. ``bohb``'s GP, ``bfbo``
and DEHB's proposer all decode through this one class.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from automl.space.params import Param, SearchSpace, power_exponents, weighted_index


class Codec:
    """Configurations <-> per-parameter unit coordinates (for sampling) and GP features."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.params = list(space.params)
        self.base_env = {**space.context, **space.pinned}

    # -- per-parameter unit coordinates: one number in [0, 1] per parameter --------------------
    def decode(self, unit: np.ndarray) -> dict[str, Any]:
        """A valid configuration from one coordinate per parameter (parents first)."""
        env = dict(self.base_env)
        values: dict[str, Any] = {}
        for param, u in zip(self.params, unit):
            values[param.name] = env[param.name] = self._decode_one(param, float(u), env)
        return {**values, **self.space.pinned}

    def _decode_one(self, param: Param, u: float, env: dict[str, Any]) -> Any:
        u = min(max(u, 0.0), 1.0)
        if param.kind == "categorical":
            weights = param.weights or (1.0,) * len(param.choices)
            return param.choices[weighted_index(tuple(weights), u)]
        low, high, _, base = param.bounds(env)
        if base:
            exponents = power_exponents(base, low, high)
            if exponents:
                return int(base ** exponents[min(int(u * len(exponents)), len(exponents) - 1)])
            return param.nearest(low, env)
        if param.kind == "int":  # uniform over the integers (log-uniform on a log scale)
            if param.log and low >= 1:
                value = math.floor(math.exp(math.log(low) + u * (math.log(high + 1) - math.log(low))))
            else:
                value = low + math.floor(u * (high - low + 1))
            return param.nearest(min(value, high), env)
        if param.log and low > 0:
            value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        else:
            value = low + u * (high - low)
        return param.nearest(value, env)

    def encode_unit(self, config: dict[str, Any]) -> np.ndarray:
        """The coordinates :meth:`decode` maps back to (about) ``config``."""
        env = dict(self.base_env)
        out = []
        for param in self.params:
            value = config[param.name]
            if param.kind == "categorical":
                weights = param.weights or (1.0,) * len(param.choices)
                index = next(i for i, c in enumerate(param.choices) if type(c) is type(value) and c == value)
                total = sum(weights)
                out.append((sum(weights[:index]) + weights[index] / 2) / total)
            else:
                out.append(self._numeric_unit(param, value, env, static=False))
            env[param.name] = value
        return np.array(out, dtype=float)

    def _numeric_unit(self, param: Param, value: Any, env: dict[str, Any], static: bool) -> float:
        """Where ``value`` lies in its range: the inverse of :meth:`_decode_one` (``static``:
        the range without the parent's value, for GP features)."""
        low, high, _, base = param.bounds(self.base_env if static else env)
        value = float(value)
        if base:
            exponents = power_exponents(base, low, high)
            if len(exponents) <= 1:
                return 0.5
            k = math.log(max(value, 1e-300), base)
            return unit_interval(k - exponents[0] + 0.5, len(exponents))
        if param.kind == "int":
            if param.log and low >= 1:
                return unit_interval(math.log(max(value, 1.0) + 0.5) - math.log(low),
                             math.log(high + 1) - math.log(low))
            return unit_interval(value - low + 0.5, high - low + 1)
        if param.log and low > 0:
            return unit_interval(math.log(max(value, 1e-300)) - math.log(low), math.log(high) - math.log(low))
        return unit_interval(value - low, high - low)

    # -- GP features: numeric scaled to [0, 1] in static bounds, categoricals one-hot -------
    def features(self, config: dict[str, Any]) -> np.ndarray:
        out: list[float] = []
        for param in self.params:
            value = config[param.name]
            if param.kind == "categorical":
                if len(param.choices) > 1:
                    out.extend(1.0 if type(c) is type(value) and c == value else 0.0
                               for c in param.choices)
            else:
                out.append(self._numeric_unit(param, value, self.base_env, static=True))
        return np.array(out, dtype=float)


def reflect(u: Any) -> np.ndarray:
    """``u`` (a number or an array; an array back) folded back into [0, 1] at its ends, where
    a step around a centre lands outside. Clipping instead puts a point mass on the bounds: a
    schema's closed range is often open for the trainer (SegFormer's ``train.optim.momentum``
    in [0, 1] is AdamW's beta1, and 1.0 fails the trainer), and a Gaussian step of 0.15
    around its default 0.9 was clipped to exactly 1.0 a quarter of the time."""
    folded = np.mod(np.abs(u), 2.0)
    return np.where(folded > 1.0, 2.0 - folded, folded)


def unit_interval(offset: float, width: float) -> float:
    return 0.5 if width <= 0 else min(max(offset / width, 0.0), 1.0)
