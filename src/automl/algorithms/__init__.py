"""Algorithm registry: ``--algo NAME`` → a module with ``plan(ctx) -> Plan``."""

from __future__ import annotations

import importlib

from automl.algorithms.base import AlgoContext, Budget, Plan
from automl.errors import UserError, did_you_mean

# Full-budget algorithms always lock train.num_epochs.
FIXED_BUDGET = frozenset({"random", "bayesian", "bfbo"})
_MODULES = {"random": "random", "bayesian": "bayesian", "bfbo": "bfbo", "pbt": "pbt", "pb2": "pb2"}
# The bracket family (asha..dehb): automl.schedulers + automl.algorithms.proposers.
_MODULES.update({"asha": "asha", "hyperband": "hyperband", "hyperband_es": "hyperband_es",
                 "bohb": "bohb", "async_bohb": "async_bohb", "dehb": "dehb"})


def available() -> list[str]:
    return list(_MODULES)


def build_plan(name: str, ctx: AlgoContext) -> Plan:
    module = _MODULES.get(name)
    if module is None:
        raise UserError(f"--algo {name}: unknown or not yet available algorithm"
                        f"{did_you_mean(name, _MODULES)}; available: {', '.join(_MODULES)}")
    return importlib.import_module(f"automl.algorithms.{module}").plan(ctx)


__all__ = ["AlgoContext", "Budget", "Plan", "FIXED_BUDGET", "available", "build_plan"]
