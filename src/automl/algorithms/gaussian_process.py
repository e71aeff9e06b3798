"""Gaussian-process building blocks shared by the GP-based searchers (``bfbo``'s batch BO and
the multi-fidelity GP of :mod:`automl.algorithms.mf_gp`).

scikit-learn's ``GaussianProcessRegressor`` (a declared dependency) is the model: at the sizes
a TAO search reaches (tens to a few hundred results) its exact GP fits in well under a second,
and it needs neither torch (which the engine must not import: it only drives trainers) nor a
GP library of its own.

Configurations become unit coordinates and GP features through
:class:`automl.space.codec.Codec`.

* :func:`fit_gp` - constant x Matern 5/2 with one length scale per feature (ARD) + white noise,
  on standardized observations; or, over (features, budget), :func:`budget_kernel`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


# Length-scale bounds that make a Matern flat along a column in [0, 1] (see budget_kernel).
PINNED = (1e3, 1e4)


def fit_gp(X: np.ndarray, y: np.ndarray, seed: int, restarts: int = 1,
           start: Any = None, optimize: bool = True, standardize: bool = True,
           budget: bool = False) -> Any:
    """A GP fitted on ``X`` and ``y`` standardized (``(y - mean) / std``; ``standardize=False``:
    ``y`` is already in the units wanted): predictions are in those units. ``start``: a fitted
    kernel to start the hyperparameter search from (or, with ``optimize=False``, to keep: the
    GP is then only conditioned on the data, one Cholesky). ``budget``: the last column is the
    budget, and the kernel is :func:`budget_kernel`'s."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    dims = X.shape[1]
    if start is not None:
        kernel = start
    else:
        signal = budget_kernel(dims) if budget else ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
            length_scale=np.full(dims, 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5)
        kernel = signal + WhiteKernel(1e-3, (1e-8, 1e-1))
    gp = GaussianProcessRegressor(kernel=kernel, normalize_y=False, random_state=seed,
                                  n_restarts_optimizer=restarts if optimize else 0,
                                  optimizer="fmin_l_bfgs_b" if optimize else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(X, (y - y.mean()) / standard_deviation(y) if standardize else y)
    return gp


def budget_kernel(dims: int) -> Any:
    """A kernel over (features, budget), the budget last:
    ``k = c * k_x(x, x') * (a + k_r(r, r'))``, each ``k`` a Matern 5/2 (ARD over the features).

    The fitted ``a`` is how much of a configuration's value every budget shares: one
    configuration's values at two budgets correlate at least ``a / (a + 1)`` (Kennedy and
    O'Hagan's multi-fidelity structure, a shared part plus one that changes with the budget,
    with one set of feature length scales for both). Syne Tune's MOBSTER adds a
    learning-curve kernel to one over the configuration for the same reason.

    Why not one Matern over all columns (the budget one more length scale): its fitted budget
    length scale can collapse to its bound (measured: currin2 of ``benchmarks/suite.py``, 0.01
    against rungs 0.33 apart), and then a low-rung result says nothing about the top rung.
    Expected improvement at the top rung then keeps proposing configurations that were only
    ever tried at the lowest rung, where the top rung's uncertainty never shrinks (currin2,
    seed 1: 110 of 235 proposals on one edge of the box, final regret 0.37; with this kernel
    7e-10). A sum of two full Matern kernels (separate length scales for the shared part)
    was tried too: its 2d + 3 hyperparameters overfit (hartmann6: length scales of 0.01 on
    three features) and it was no better overall (paired, 9 problems x 4 seeds, final regret
    1.09x and 1.01x of the single Matern, neutral prior and none).

    scikit-learn's kernels act on every column, so ``k_x`` ignores the budget and ``k_r`` the
    features through length scales pinned far above their [0, 1] range."""
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern

    features = np.tile([1e-2, 1e2], (dims, 1))
    features[-1] = PINNED
    over_x = Matern(length_scale=np.r_[np.full(dims - 1, 0.5), PINNED[0]],
                    length_scale_bounds=features, nu=2.5)
    budget = np.tile(PINNED, (dims, 1))
    budget[-1] = (1e-2, 1e2)
    over_r = Matern(length_scale=np.r_[np.full(dims - 1, PINNED[0]), 0.5],
                    length_scale_bounds=budget, nu=2.5)
    return ConstantKernel(1.0, (1e-2, 1e2)) * over_x * (ConstantKernel(1.0, (1e-2, 1e2)) + over_r)


def standard_deviation(y: np.ndarray) -> float:
    """``std(y)``, or 1 where the values are all equal (standardizing then only centres)."""
    std = float(np.std(y))
    return std if std > 1e-12 else 1.0
