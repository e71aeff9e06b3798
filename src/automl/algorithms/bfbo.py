"""``bfbo``: batch Bayesian optimization for parallel full-budget trials.

Plain sequential BO asked for N suggestions while N trials run would return N copies of one
point (the acquisition maximum does not move until a result arrives). This searcher is a
Gaussian process with an upper-confidence-bound acquisition and **local penalization**
(González, Dai, Hennig, Lawrence: "Batch Bayesian Optimization via Local Penalization",
AISTATS 2016): every running trial's point x_j multiplies the acquisition by
``φ_j(x) = Φ((L·‖x − x_j‖ − M + μ(x_j)) / σ(x_j))`` - the probability that x lies outside the
ball around x_j that, given the GP and a Lipschitz constant L of the objective, cannot contain
the optimum M. Points near a running trial are discounted in proportion to how much that trial
is expected to tell, so concurrent suggestions spread out without waiting for results.

Why this and not the alternatives
    * Optuna's ``GPSampler`` (the other natural choice) has no ``constant_liar`` in Optuna 5 and
      needs torch, which the engine must not import (it only drives trainers). TPE with
      constant liar is what ``bayesian`` already is.
    * Local penalization needs no re-fit per pending point (constant liar/kriging believer
      re-fit the GP with fake values), and does not depend on the fake value's choice.
    * scikit-learn's GP and scipy (a declared dependency and its own) are enough.

Model
    Each configuration is encoded in [0, 1]^d: numeric parameters scaled inside their range in
    the space they are searched in (log for log scale, the exponent for powers), categoricals
    one-hot. Kernel: constant × Matérn 5/2 with one length scale per dimension (ARD) + white
    noise; observations standardized. UCB = μ + κσ with κ = 2, made positive with a softplus
    as local penalization requires; L is the largest GP-mean gradient norm seen on the
    candidates (finite differences), M the best observation.
Acquisition maximization
    Over a candidate set: random configurations plus Gaussian perturbations of the best
    observed ones, all generated through the space (conditions, multiples, powers and
    weights respected; every suggestion passes ``SearchSpace.validate``).
Start
    The first suggestions (a third of the budget, between 2 and 10, and at least until two
    results are in) come from a scrambled Sobol sequence: space-filling, and distinct even when
    drawn concurrently.
Budget and reproducibility
    Every trial runs the full budget (``train.num_epochs`` locked); only results at that budget
    reach the model. With one trial at a time, the same seed gives the same suggestions (seeded
    Sobol, candidates and GP restarts; the fake trainer's results are deterministic).
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
from ray.tune.search import Searcher

from automl.algorithms.gaussian_process import fit_gp, standard_deviation
from automl.algorithms.plan import AlgoContext, Plan
from automl.space.codec import Codec
from automl.space.params import SearchSpace

KAPPA = 2.0
RANDOM_CANDIDATES = 768
LOCAL_CANDIDATES = 64  # per incumbent
INCUMBENTS = 5


class BatchBOSearcher(Searcher):
    """GP-UCB with local penalization of the running trials' points (see the module doc)."""

    def __init__(self, space: SearchSpace, metric: str, mode: str, seed: int, budget: int,
                 n_initial: int, max_suggestions: int, kappa: float = KAPPA) -> None:
        super().__init__(metric=metric, mode=mode)
        self.space = space
        self.seed = seed
        self.budget = budget
        self.n_initial = n_initial
        self.kappa = kappa
        self.codec = Codec(space)
        self.sign = 1.0 if mode == "max" else -1.0
        self.observed: list[tuple[dict[str, Any], float]] = []  # (config, sign × metric)
        self.pending: dict[str, dict[str, Any]] = {}
        self.suggested = 0
        self._sobol = self._sobol_points(max(max_suggestions, n_initial))

    def _sobol_points(self, count: int) -> np.ndarray:
        from scipy.stats import qmc

        dims = max(1, len(self.codec.params))
        return qmc.Sobol(dims, scramble=True, seed=self.seed).random_base2(
            max(1, math.ceil(math.log2(max(count, 2)))))

    # -- Searcher API ------------------------------------------------------------------------
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
            self.sign = 1.0 if mode == "max" else -1.0
        return True

    def replayable(self, params: dict[str, Any]) -> bool:
        """Any valid configuration can be proposed again (automl.resume.replay)."""
        try:
            self.space.validate(params)
        except ValueError:
            return False
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        from automl.resume.replay import take

        index = self.suggested
        config = take(trial_id)  # a trial created before a crash, created again
        if config is None:
            initial = index < self.n_initial or len(self.observed) < 2 or not self.codec.params
            config = self._initial(index) if initial else self._model_suggestion(index)
        self.suggested += 1
        self.pending[trial_id] = config
        return dict(config)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        config = self.pending.pop(trial_id, None)
        if config is None or error or not result:
            return
        value = result.get(self.metric)
        epoch = result.get("epoch")
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        if epoch is not None and int(epoch) < self.budget:
            return  # stopped before the full budget: not comparable with the others
        self.observed.append((config, self.sign * float(value)))

    def save(self, checkpoint_path: str) -> None:
        from pathlib import Path

        from automl.results.records import atomic_write_bytes

        atomic_write_bytes(Path(checkpoint_path), pickle.dumps(self.__dict__))

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))

    # -- suggestions -------------------------------------------------------------------------
    def _initial(self, index: int) -> dict[str, Any]:
        points = self._sobol
        if index >= len(points):
            rng = np.random.default_rng([self.seed, index])
            return self.codec.decode(rng.random(points.shape[1]))
        return self.codec.decode(points[index])

    def _model_suggestion(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, index])
        configs = self._candidates(rng)
        X = np.array([self.codec.features(c) for c in self.observed_configs()])
        y = np.array([v for _, v in self.observed])
        gp = fit_gp(X, y, self.seed)
        features = np.array([self.codec.features(c) for c in configs])
        mu, sd = gp.predict(features, return_std=True)
        score = np.log(_softplus(mu + self.kappa * sd) + 1e-12)
        pending = [self.codec.features(c) for c in self.pending.values()]
        if pending:
            y_std = (y - y.mean()) / standard_deviation(y)
            score += self._log_penalty(gp, features, np.array(pending), y_std)
        taken = np.array([self.codec.features(c) for c in [*self.observed_configs(),
                                                            *self.pending.values()]])
        for i in np.argsort(-score, kind="stable"):
            if np.min(np.linalg.norm(taken - features[i], axis=1)) > 1e-9:
                return configs[i]
        return self._initial(index)  # every candidate already tried (tiny discrete space)

    def observed_configs(self) -> list[dict[str, Any]]:
        return [config for config, _ in self.observed]

    def _candidates(self, rng: np.random.Generator) -> list[dict[str, Any]]:
        dims = len(self.codec.params)
        units = [rng.random((RANDOM_CANDIDATES, dims))]
        best = sorted(self.observed, key=lambda item: -item[1])[:INCUMBENTS]
        for config, _ in best:
            centre = self.codec.encode_unit(config)
            for scale in (0.02, 0.1):
                noise = rng.normal(0.0, scale, (LOCAL_CANDIDATES // 2, dims))
                units.append(np.clip(centre + noise, 0.0, 1.0))
        return [self.codec.decode(u) for u in np.vstack(units)]

    def _log_penalty(self, gp, features: np.ndarray, pending: np.ndarray,
                     y_std: np.ndarray) -> np.ndarray:
        """Σ_j log φ_j(x) (local penalization, in standardized units)."""
        from scipy.stats import norm

        lipschitz = _lipschitz(gp, features[: min(len(features), 256)])
        best = float(np.max(y_std))
        mu_j, sd_j = gp.predict(pending, return_std=True)
        sd_j = np.maximum(sd_j, 1e-6)
        dist = np.linalg.norm(features[:, None, :] - pending[None, :, :], axis=2)
        z = (lipschitz * dist - best + mu_j[None, :]) / sd_j[None, :]
        return np.sum(norm.logcdf(z), axis=1)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _lipschitz(gp, points: np.ndarray, h: float = 1e-3) -> float:
    """Largest norm of the GP mean's gradient over ``points`` (central differences)."""
    dims = points.shape[1]
    grads = np.zeros_like(points)
    for d in range(dims):
        step = np.zeros(dims)
        step[d] = h
        grads[:, d] = (gp.predict(points + step) - gp.predict(points - step)) / (2 * h)
    value = float(np.max(np.linalg.norm(grads, axis=1))) if len(points) else 0.0
    return max(value, 1e-7)


def plan(ctx: AlgoContext) -> Plan:
    n_initial = max(2, min(10, ctx.max_recommendations // 3))
    searcher = BatchBOSearcher(ctx.space, ctx.metric, ctx.mode, ctx.seed,
                               budget=ctx.budget.max_epochs, n_initial=n_initial,
                               max_suggestions=ctx.max_recommendations)
    return Plan(searcher, None, ctx.max_recommendations,
                description=f"batch BO: GP-UCB with local penalization of running trials, "
                            f"{n_initial} Sobol start-up trials, FIFO, full budget")
