"""Optuna samplers behind Ray Tune's ``OptunaSearch``, driven by our define-by-run space.

Shared by the algorithms that only differ in their sampler (random, bayesian, asha's searcher).
Define-by-run is what lets conditional parameters (``depends_on``/``math_cond``) be sampled
in order; pinned values come back as constants.

Several objectives (:mod:`automl.objective`): a multi-objective Optuna study (one direction per
objective; TPESampler is then MOTPE, RandomSampler samples as before) told every objective's
value when a trial completes, or, with ``scalarize: weighted``, a single-objective study told
their weighted sum. Measured objectives (``checkpoint_mb``) are read from the trial's folder at
that moment: Tune tells the searcher before its callbacks (the recorder, whose retention may
delete a checkpoint afterwards).

The template's configuration (:func:`automl.algorithms.plan.template_configuration`) is enqueued
as the first trial, so every result has its baseline (``--no-prior``: not enqueued).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from automl.algorithms.plan import AlgoContext, template_configuration
from automl.objective import Objectives
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

    def __init__(self, space: SearchSpace, objectives: Objectives,
                 trials_dir: Path | None = None, first: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        if objectives.pareto:
            metric: Any = objectives.names
            mode: Any = [o.direction for o in objectives]
        else:  # one objective, or their weighted sum (larger is better)
            metric, mode = objectives.metric, "max" if objectives.weighted else objectives.direction
        super().__init__(space=space.suggest, metric=metric, mode=mode, **kwargs)
        self.search_space = space
        self.objectives = objectives
        self.trials_dir = trials_dir
        if first is not None:
            self._ot_study.enqueue_trial(space.draws(first))

    @property
    def metric(self) -> str:
        """What each result must carry (Tune checks it): the primary objective. The others are
        read when the trial completes (a measured one exists only then)."""
        return self.objectives.metric

    @property
    def mode(self) -> str:
        """The primary's direction, as Tune's wrappers of this searcher pair it with
        :attr:`metric` (the study itself was created with every objective's direction)."""
        return self.objectives.direction

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if len(self.objectives) == 1:  # intermediate values mean nothing to a sum or a front
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        """Tell the study every objective (or their weighted sum); a trial missing one of them
        counts as failed (or pruned when stopped), never as a made-up value."""
        if len(self.objectives) == 1 or trial_id in self._completed_trials \
                or trial_id not in self._ot_trials:
            super().on_trial_complete(trial_id, result, error)
            return
        values = None
        if result:
            scores = dict(result)
            if self.trials_dir is not None and "epoch" in result:
                scores.update(self.objectives.measure(self.trials_dir / trial_id,
                                                      int(result["epoch"])))
            values = self.objectives.values(scores)
        if values is None:
            state, told = (TrialState.FAIL if error or result else TrialState.PRUNED), None
        else:
            state = TrialState.COMPLETE
            told = list(values) if self.objectives.pareto else self.objectives.scalar(values)
        self._ot_study.tell(self._ot_trials[trial_id], told, state=state)
        self._completed_trials.add(trial_id)

    def replayable(self, params: dict[str, Any]) -> bool:
        try:
            draws = self.search_space.draws(params)
            return self.search_space.suggest(optuna.trial.FixedTrial(draws)) == params
        except (KeyError, ValueError):
            return False

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        from automl.resume.replay import take

        params = take(trial_id)
        # _ot_trials / _ot_study: private attributes of the pinned Ray (automl.run.ray.ray_private).
        if params is not None and trial_id not in self._ot_trials:
            self._ot_study.enqueue_trial(self.search_space.draws(params))
            self._ot_study.sampler.reseed_rng()
        return super().suggest(trial_id)


def optuna_search(ctx: AlgoContext, sampler: optuna.samplers.BaseSampler) -> SpaceOptunaSearch:
    """The searcher over ``ctx``'s space and objectives, the template's configuration first
    (unless ``--no-prior``, or the configuration does not exist)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    first = template_configuration(ctx.space) if ctx.prior else None
    return SpaceOptunaSearch(ctx.space, ctx.all_objectives, trials_dir=ctx.trials_dir,
                             first=first, sampler=sampler)


def baseline_description(ctx: AlgoContext) -> str:
    """How a plan's description says where its baseline comes from."""
    if not ctx.prior:
        return "; --no-prior: the template's configuration is not trained (no baseline)"
    if template_configuration(ctx.space) is None:
        return "; no baseline (a searched parameter has no default)"
    return "; the template's configuration first (baseline)"
