"""A Gaussian process over (configuration, fidelity): the model-based proposer in the spirit of
MOBSTER (Klein et al. 2020, "Model-based Asynchronous Hyperparameter and Neural Architecture
Search"), for ``bohb`` and ``async_bohb``.

Why beside :mod:`automl.algorithms.mf_tpe`: TPE ranks the results (higher budgets first) and
models two densities; it learns nothing from *how* a configuration's value changes with its
budget. A GP over the configuration's features and the budget shares strength across rungs: a
result at 3 epochs says something about 27 epochs, as much as the data show (one length scale
for the budget, fitted like the others), so fewer top-rung results are needed. Syne Tune's
MOBSTER and Hyper-Tune, the strongest peers of ``benchmarks/suite.py``, model this way.

* **Data.** Every result of every configuration at every rung it reached:
  ``(features(x), log(epochs) / log(R)) -> value``, the values (maximized) through a fitted
  power transform (:func:`warp`: a diverged run's loss cannot set the scale).
  Features are :class:`automl.algorithms.gaussian_process.Codec`'s (numeric in [0, 1] on their
  search scale, categoricals one-hot). Kernel and fit:
  :func:`automl.algorithms.gaussian_process.fit_gp` (Matern 5/2 with ARD over the features and
  the budget, plus noise); the hyperparameters are re-fitted each time the data grew by half
  and kept in between (the GP is then only conditioned on the new results).
* **Acquisition.** Expected improvement at the **largest budget with at least** ``d``
  **results** (``d`` = the number of features; MOBSTER's and BOHB's rule for which budget the
  model is trusted at), over the best value observed there.
* **Candidates.** Random configurations drawn through the space (conditions, multiples, powers
  and weights respected) plus Gaussian steps around the best configurations at that budget.
* **Trials in flight.** Configurations proposed without a result yet enter the GP at the
  acquisition budget with the model's mean as their value (the kriging believer, with the
  fitted kernel kept): the posterior's uncertainty there collapses, so two slots asking at once
  are not sent to the same place.
* **Start and exploration.** The first ``min_points`` (3) proposals of the model are uniform
  draws (a prior's proposals come besides them), and a quarter of the later ones too: expected
  improvement trusts the GP, which can settle in one basin of a multi-modal problem.

It keeps :class:`~automl.algorithms.mf_tpe.MultiFidelityTPE`'s bookkeeping (every proposal is an
Optuna trial of the define-by-run space, so a GP proposal is validated exactly as a TPE one,
and :class:`automl.algorithms.prior.PriorProposer` wraps either).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from automl.algorithms.gaussian_process import Codec, fit_gp, standard_deviation
from automl.algorithms.mf_tpe import MultiFidelityTPE
from automl.brackets.base import Slot
from automl.objective import Objectives
from automl.space.params import SearchSpace

# Uniform draws before the GP (Syne Tune's default for its GP searchers; also the ``eta``
# random results the prior's first verdict needs at TAO's eta = 3).
MIN_RANDOM = 3
# Uniform draws among the model's proposals: expected improvement trusts the GP, which on a
# multi-modal or trap problem can settle in one basin (measured: rosenbrock4 of
# benchmarks/suite.py, regret 131 without, see README); BOHB keeps 1/3.
RANDOM_FRACTION = 0.25
RANDOM_CANDIDATES = 384
LOCAL_CANDIDATES = 24  # per incumbent and step size
INCUMBENTS = 5
STEPS = (0.03, 0.12)
REFIT_GROWTH = 1.5


class MultiFidelityGP(MultiFidelityTPE):
    """Proposer (:class:`automl.brackets.base.Proposer`): GP over (configuration, budget),
    expected improvement at the largest budget the model has enough results at. One objective,
    or several as their weighted sum (a Pareto search keeps multi-objective TPE)."""

    def __init__(self, space: SearchSpace, mode: str, seed: int, rungs: Sequence[int],
                 min_points: int = MIN_RANDOM, random_fraction: float = RANDOM_FRACTION,
                 objectives: Objectives | None = None) -> None:
        super().__init__(space, mode, seed, top_rung=len(rungs) - 1,
                         random_fraction=random_fraction, min_points=min_points,
                         objectives=objectives)
        self.rungs = tuple(int(r) for r in rungs)
        self.codec = Codec(space)
        self.sign = 1.0 if self.mode == "max" else -1.0
        self._kernel: Any = None  # the last fitted kernel (warm start, or kept between refits)
        self._fitted_on = 0  # how many results its hyperparameters were fitted on
        self._features: dict[str, np.ndarray] = {}  # trial -> codec features (fixed per config)

    def propose(self, trial_id: str, slot: Slot, epochs: int) -> dict[str, Any]:
        # ``min_points`` uniform draws first, however many the prior proposed besides: they are
        # what the prior's verdict ranks the default against (automl.algorithms.prior).
        randoms = sum(1 for source in self.sources.values() if source == "random")
        modelled = (randoms >= self.min_points and self.reported() >= self.min_points
                    and bool(self.codec.params) and self.rng.random() >= self.random_fraction)
        if not modelled:
            return self.ask(trial_id, "random")
        return self.ask(trial_id, "gp", fixed=self.space.draws(self._suggestion()))

    # -- the model ---------------------------------------------------------------------------
    def fidelity(self, epochs: int) -> float:
        top = max(self.rungs[-1], 2)
        return math.log(max(epochs, 1)) / math.log(top)

    def acquisition_budget(self, dims: int) -> int:
        """The largest budget with at least ``dims`` results (else the lowest one)."""
        counts: dict[int, int] = {}
        for config in self.configs.values():
            for epochs in config.results:
                counts[epochs] = counts.get(epochs, 0) + 1
        enough = [epochs for epochs, n in counts.items() if n >= dims]
        return max(enough) if enough else min(counts)

    def _suggestion(self) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.count])
        observed = [(key, epochs, self.sign * value) for key, c in self.configs.items()
                    for epochs, value in c.results.items()]
        X = np.array([[*self._feature(key), self.fidelity(e)] for key, e, _ in observed])
        y = warp(np.array([value for _, _, value in observed]))
        y = (y - y.mean()) / standard_deviation(y)  # the units the GP is fitted and asked in
        target = self.acquisition_budget(X.shape[1] - 1)
        gp = self._fit(X, y)
        at_target = [(key, value) for (key, e, _), value in zip(observed, y) if e == target]
        best = max(value for _, value in at_target)
        pending = [key for key, c in self.configs.items() if not c.results]
        if pending:  # kriging believer: the trials in flight at the model's mean
            P = np.array([[*self._feature(key), self.fidelity(target)] for key in pending])
            gp = fit_gp(np.vstack([X, P]), np.concatenate([y, gp.predict(P)]), self.seed,
                        start=gp.kernel_, optimize=False, standardize=False)
        ranked = [self.configs[key].values for key, _ in sorted(at_target, key=lambda t: -t[1])]
        candidates = self._candidates(rng, ranked)
        F = np.array([[*self.codec.features(c), self.fidelity(target)] for c in candidates])
        mu, sd = gp.predict(F, return_std=True)
        score = _expected_improvement(mu, np.maximum(sd, 1e-9), best)
        taken = np.array([self._feature(key) for key in self.configs])
        for i in np.argsort(-score, kind="stable"):
            if np.min(np.linalg.norm(taken - F[i, :-1], axis=1)) > 1e-9:
                return candidates[i]
        return candidates[int(rng.integers(len(candidates)))]  # tiny discrete space: all tried

    def _feature(self, trial_id: str) -> np.ndarray:
        """A proposed configuration's GP features, computed once (its values never change)."""
        if trial_id not in self._features:
            self._features[trial_id] = self.codec.features(self.configs[trial_id].values)
        return self._features[trial_id]

    def _fit(self, X: np.ndarray, y: np.ndarray) -> Any:
        """Kernel hyperparameters re-fitted once the data grew by ``REFIT_GROWTH`` (warm-started
        from the last fit), else kept and the GP only conditioned on the new data: a search of
        a few hundred results would otherwise spend seconds per proposal on the fit."""
        optimize = self._kernel is None or len(y) >= REFIT_GROWTH * self._fitted_on
        gp = fit_gp(X, y, self.seed, restarts=0 if self._kernel is not None else 1,
                    start=self._kernel, optimize=optimize, standardize=False)
        if optimize:
            self._kernel, self._fitted_on = gp.kernel_, len(y)
        return gp

    def _candidates(self, rng: np.random.Generator,
                    ranked: list[dict[str, Any]]) -> list[dict[str, Any]]:
        dims = len(self.codec.params)
        units = [rng.random((RANDOM_CANDIDATES, dims))]
        for config in ranked[:INCUMBENTS]:
            centre = self.codec.encode_unit(config)
            for step in STEPS:
                units.append(np.clip(centre + rng.normal(0.0, step, (LOCAL_CANDIDATES, dims)),
                                     0.0, 1.0))
        return [self.codec.decode(u) for u in np.vstack(units)]


def warp(y: np.ndarray) -> np.ndarray:
    """``y`` through a fitted Yeo-Johnson power transform, standardized (scikit-learn's
    ``PowerTransformer``, the warping HEBO uses).

    A GP assumes roughly Gaussian values; losses can span orders of magnitude (a diverged run,
    a Rosenbrock valley), and a few huge values then set the scale and flatten every other
    difference. The transform is close to the identity on values that are already Gaussian
    and log-like on heavy tails. Measured on ``benchmarks/suite.py`` (3 seeds each):
    rosenbrock4 with a bad prior 3.6 against 47 on raw values; a plain rank transform (a
    Gaussian copula) lost hartmann6's magnitudes (0.29 against 0.06)."""
    import warnings

    from sklearn.preprocessing import PowerTransformer

    if np.ptp(y) == 0:
        return np.zeros_like(y, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return PowerTransformer(method="yeo-johnson").fit_transform(
            np.asarray(y, dtype=float).reshape(-1, 1)).ravel()


def _expected_improvement(mu: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    from scipy.stats import norm

    z = (mu - best) / sd
    return sd * (z * norm.cdf(z) + norm.pdf(z))
