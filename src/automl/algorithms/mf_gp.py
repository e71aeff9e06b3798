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
  Features are :class:`automl.space.codec.Codec`'s (numeric in [0, 1] on their
  search scale, categoricals one-hot). Kernel:
  :func:`automl.algorithms.gaussian_process.budget_kernel`, a part every budget shares plus a
  part that changes with the budget (Matern 5/2 with ARD each, plus noise), so a low-rung
  result always says something about the top rung. Fit:
  :func:`automl.algorithms.gaussian_process.fit_gp`; the hyperparameters are re-fitted each
  time the data grew by half and kept in between (the GP is then only conditioned on the new
  results).
* **Acquisition.** Expected improvement at the **largest budget with at least** ``d``
  **results** (``d`` = the number of features; MOBSTER's and BOHB's rule for which budget the
  model is trusted at), over the best value observed there.
* **Candidates.** Random configurations drawn through the space (conditions, multiples, powers
  and weights respected) plus Gaussian steps around the best configurations at that budget
  (categoricals redrawn now and then), then a local search of the acquisition from the best
  few (:meth:`MultiFidelityGP.refine`: MOBSTER's L-BFGS step, sampled here because the
  acquisition is piecewise constant over integer and power-of-two parameters).
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

from automl.algorithms.gaussian_process import fit_gp, standard_deviation
from automl.algorithms.mf_tpe import MultiFidelityTPE
from automl.brackets.base import Slot
from automl.objective import Objectives
from automl.space.codec import Codec, reflect
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
FLIP = 0.15  # chance a local candidate redraws each categorical
# Local searches of the acquisition per proposal (MOBSTER starts its L-BFGS from several). 8
# against 3, measured on benchmarks/suite.py (async_bohb+gp, neutral prior, 9 problems x 4
# seeds, paired): final regret 0.85x, AUC 0.94x (better on 17 of 36 pairs, ties on rosenbrock4's
# plateau; about one standard error). Cost: the suite's 270 GP cells took 2.7 CPU hours against
# 1.7 (estimated: the costliest cell, levy10_mixed, 137 CPU s for roughly 270 configurations,
# about 0.5 s a proposal, against epochs of training).
REFINE_STARTS = 8
REFINE_STEPS = (0.05, 0.02, 0.008, 0.003)
REFINE_SAMPLES = 24
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
        # Which unit coordinates are categorical: redrawn in :meth:`candidates`, kept in
        # :meth:`refine`.
        self.categorical = np.array([p.kind == "categorical" for p in self.codec.params],
                                    dtype=bool)
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
        y = warp(np.array([value for _, _, value in observed]))  # the units the GP works in
        target = self.acquisition_budget(X.shape[1] - 1)
        gp = self.fit(X, y)
        at_target = [i for i, (_, e, _) in enumerate(observed) if e == target]
        best = float(np.max(y[at_target]))
        pending = [key for key, c in self.configs.items() if not c.results]
        if pending:  # kriging believer: the trials in flight at the model's mean
            P = np.array([[*self._feature(key), self.fidelity(target)] for key in pending])
            gp = fit_gp(np.vstack([X, P]), np.concatenate([y, gp.predict(P)]), self.seed,
                        start=gp.kernel_, optimize=False, standardize=False)
        ranked = [self.configs[observed[i][0]].values for i in sorted(at_target, key=lambda i: -y[i])]
        units = self.candidates(rng, ranked)
        candidates = [self.codec.decode(u) for u in units]
        score = self.acquisition(gp, candidates, target, best)
        candidates, score = self.refine(gp, rng, units, candidates, score, target, best)
        taken = np.array([self._feature(key) for key in self.configs])
        for i in np.argsort(-score, kind="stable"):
            if np.min(np.linalg.norm(taken - self.codec.features(candidates[i]), axis=1)) > 1e-9:
                return candidates[i]
        return candidates[int(rng.integers(len(candidates)))]  # tiny discrete space: all tried

    def acquisition(self, gp: Any, candidates: list[dict[str, Any]], target: int,
                    best: float) -> np.ndarray:
        """Expected improvement of ``candidates`` at ``target`` epochs over ``best``."""
        F = np.array([[*self.codec.features(c), self.fidelity(target)] for c in candidates])
        mu, sd = gp.predict(F, return_std=True)
        return _expected_improvement(mu, np.maximum(sd, 1e-9), best)

    def refine(self, gp: Any, rng: np.random.Generator, units: np.ndarray,
               candidates: list[dict[str, Any]], score: np.ndarray, target: int,
               best: float) -> tuple[list[dict[str, Any]], np.ndarray]:
        """A local search of the acquisition from its ``REFINE_STARTS`` best candidates: steps
        that shrink (``REFINE_STEPS`` of each unit range), the categoricals kept, a step taken
        when it raises expected improvement. Random candidates alone leave the proposal a few
        per cent of each range from the acquisition's peak (MOBSTER refines with L-BFGS; the
        acquisition here is piecewise constant over integer and power-of-two parameters, so
        it is searched, not differentiated). Measured with the categorical redraws of
        :meth:`candidates` (``benchmarks/suite.py`` without a prior, 9 problems x 4 seeds,
        paired): final regret 0.78x of the model without both (geometric mean; hartmann6
        0.16x, ackley3_cat 0.20x, classifier6 3.2x worse)."""
        numeric = ~self.categorical
        if not numeric.any():
            return candidates, score
        found, found_scores = [], []
        for i in np.argsort(-score, kind="stable")[:REFINE_STARTS]:
            u, s = units[i], score[i]
            for step in REFINE_STEPS:
                moves = np.tile(u, (REFINE_SAMPLES, 1))
                moves[:, numeric] = reflect(
                    moves[:, numeric] + rng.normal(0.0, step, (REFINE_SAMPLES, int(numeric.sum()))))
                configs = [self.codec.decode(m) for m in moves]
                scores = self.acquisition(gp, configs, target, best)
                j = int(np.argmax(scores))
                if scores[j] > s:
                    u, s = moves[j], scores[j]
                    found.append(configs[j])
                    found_scores.append(s)
        if not found:
            return candidates, score
        return candidates + found, np.concatenate([score, found_scores])

    def _feature(self, trial_id: str) -> np.ndarray:
        """A proposed configuration's GP features, computed once (its values never change)."""
        if trial_id not in self._features:
            self._features[trial_id] = self.codec.features(self.configs[trial_id].values)
        return self._features[trial_id]

    def fit(self, X: np.ndarray, y: np.ndarray) -> Any:
        """Kernel hyperparameters re-fitted once the data grew by ``REFIT_GROWTH`` (warm-started
        from the last fit), else kept and the GP only conditioned on the new data: a search of
        a few hundred results would otherwise spend seconds per proposal on the fit."""
        optimize = self._kernel is None or len(y) >= REFIT_GROWTH * self._fitted_on
        gp = fit_gp(X, y, self.seed, restarts=0 if self._kernel is not None else 1,
                    start=self._kernel, optimize=optimize, standardize=False, budget=True)
        if optimize:
            self._kernel, self._fitted_on = gp.kernel_, len(y)
        return gp

    def candidates(self, rng: np.random.Generator, ranked: list[dict[str, Any]]) -> np.ndarray:
        """Unit coordinates: uniform ones, and Gaussian steps around the best configurations
        at the target budget (a categorical redrawn with probability ``FLIP``: a step moves a
        categorical's coordinate within its own choice, so without it the neighbourhood of an
        incumbent never changes a backbone or an optimizer)."""
        dims = len(self.codec.params)
        units = [rng.random((RANDOM_CANDIDATES, dims))]
        for config in ranked[:INCUMBENTS]:
            centre = self.codec.encode_unit(config)
            for step in STEPS:
                local = reflect(centre + rng.normal(0.0, step, (LOCAL_CANDIDATES, dims)))
                flip = (rng.random((LOCAL_CANDIDATES, dims)) < FLIP) & self.categorical
                local[flip] = rng.random(int(flip.sum()))
                units.append(local)
        return np.vstack(units)


def warp(y: np.ndarray) -> np.ndarray:
    """``y`` (maximized) through a fitted Yeo-Johnson power transform, standardized
    (scikit-learn's ``PowerTransformer``, the warping HEBO uses), when the fit stretches the good
    end; else ``y`` standardized.

    A GP assumes roughly Gaussian values; losses can span orders of magnitude (a diverged run,
    a Rosenbrock valley), and a few huge values then set the scale and flatten every other
    difference. The transform is close to the identity on values that are already Gaussian
    and log-like on a heavy bad tail. Measured on ``benchmarks/suite.py`` (3 seeds each):
    rosenbrock4 with a bad prior 3.6 against 47 on raw values; a plain rank transform (a
    Gaussian copula) lost hartmann6's magnitudes (0.29 against 0.06). But where the heavy
    tail is the *good* one (hartmann6: most configurations near 0, a few far better) the
    fitted power is below 1 and would squeeze exactly the differences expected improvement
    must see; the values then stay linear (hartmann6 without a prior, 4 seeds: median final
    regret 0.067 against 0.18 squeezed)."""
    import warnings

    from sklearn.preprocessing import PowerTransformer

    if np.ptp(y) == 0:
        return np.zeros_like(y, dtype=float)
    y = np.asarray(y, dtype=float).reshape(-1, 1)
    transform = PowerTransformer(method="yeo-johnson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        z = transform.fit_transform(y).ravel()
    if transform.lambdas_[0] < 1:  # it would squeeze the good end: keep the values linear
        return (y.ravel() - y.mean()) / standard_deviation(y)
    return z


def _expected_improvement(mu: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    from scipy.stats import norm

    z = (mu - best) / sd
    return sd * (z * norm.cdf(z) + norm.pdf(z))
