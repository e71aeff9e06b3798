"""``bohb``: BOHB (Falkner et al. 2018) - Hyperband brackets, a TPE model per budget.

Own implementation on Optuna rather than Ray's ``TuneBOHB`` + ``HyperBandForBOHB``:

* ``TuneBOHB`` needs ``hpbandster`` and ``ConfigSpace`` (plus Pyro4, serpent, statsmodels and
  ``netifaces``, a C extension built from source on Python 3.11). They do install and run with
  numpy 2 here, but a ConfigSpace cannot express our space's conditions (a child bounded by its
  parent's value, ``math_cond`` ``/ N``, powers, weighted options); the define-by-run space
  (:meth:`automl.space.SearchSpace.suggest`) already drives Optuna.
* ``HyperBandForBOHB`` inherits ``HyperBandScheduler``'s allocation and its halving of partly
  filled brackets (see :mod:`automl.algorithms.hyperband`).

Brackets, rungs and promotion are ``hyperband``'s (:class:`automl.schedulers.HyperbandScheduler`).
Configurations come from :class:`automl.algorithms.proposers.TPEPerBudget`: every result at a
rung feeds that budget's TPE; a new configuration is drawn from the model of the largest budget
with at least ``d + 3`` results (``d`` = searched parameters; BOHB's ``N_min + 2``), one in three
at random (BOHB's ``random_fraction``), all random until a model is ready.
"""

from __future__ import annotations

from automl.algorithms import brackets
from automl.algorithms.base import AlgoContext, Plan
from automl.algorithms.proposers import TPEPerBudget


def plan(ctx: AlgoContext) -> Plan:
    scheduler = brackets.hyperband_scheduler(ctx)
    proposer = TPEPerBudget(ctx.space, ctx.mode, ctx.seed)
    return brackets.plan(ctx, scheduler, proposer,
                         f"BOHB: TPE per budget (model after {proposer.min_points} results, 1/3 "
                         f"random), Hyperband (eta={ctx.budget.eta}); "
                         f"{brackets.describe_brackets(scheduler)}")
