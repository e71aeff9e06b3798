"""Optuna samplers behind Ray Tune's ``OptunaSearch``, driven by our define-by-run space.

Shared by the algorithms that only differ in their sampler (random, bayesian, asha's searcher).
Define-by-run is what lets conditional parameters (``depends_on``/``math_cond``) be sampled
in order; pinned values come back as constants.
"""

from __future__ import annotations

from typing import Any

import optuna
from ray.tune.search.optuna import OptunaSearch

from automl.algorithms.base import AlgoContext
from automl.space.params import SearchSpace


class SpaceOptunaSearch(OptunaSearch):
    """``OptunaSearch`` over a :class:`SearchSpace` that can propose a configuration again
    (automl.resume.replay): its raw draws are enqueued in the study, so the sampler's model
    sees it as one of its own trials.

    The restored sampler's random state is the one saved before those trials were first drawn:
    left as it is, its next draws would repeat their configurations. Each replay reseeds it
    (Optuna's ``reseed_rng``, meant for samplers copied with their state), so a resumed run does
    not propose a configuration twice (it is not seed-reproducible after a kill in any case).
    """

    def __init__(self, space: SearchSpace, **kwargs: Any) -> None:
        super().__init__(space=space.suggest, **kwargs)
        self.search_space = space

    def replayable(self, params: dict[str, Any]) -> bool:
        try:
            draws = self.search_space.draws(params)
            return self.search_space.suggest(optuna.trial.FixedTrial(draws)) == params
        except (KeyError, ValueError):
            return False

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        from automl.resume.replay import take

        params = take(trial_id)
        # _ot_trials / _ot_study: private attributes of the pinned Ray (automl.run.ray_private).
        if params is not None and trial_id not in self._ot_trials:
            self._ot_study.enqueue_trial(self.search_space.draws(params))
            self._ot_study.sampler.reseed_rng()
        return super().suggest(trial_id)


def optuna_search(ctx: AlgoContext, sampler: optuna.samplers.BaseSampler) -> SpaceOptunaSearch:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return SpaceOptunaSearch(ctx.space, metric=ctx.metric, mode=ctx.mode, sampler=sampler)
