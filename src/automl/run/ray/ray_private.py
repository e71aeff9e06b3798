"""Every private Ray API the engine uses, behind one small module, checked against the pinned Ray.

Ray Tune's public API has no hook for what these do; each accessor says why it is needed. They
are imported lazily (Ray is heavy, and only the engine's processes need them). With a Ray other
than :data:`PINNED_RAY` they may have moved or changed: :func:`is_pinned` lets callers fall back
to Tune's default behaviour, and :func:`check_version` logs it once.

Private *attributes* used on Ray objects (not importable, so documented here and at the use):
``Trial.run_metadata.checkpoint_manager._latest_checkpoint_result`` and
``PopulationBasedTraining._trial_state`` / ``_save_trial_state`` (automl.algorithms.pbt/pb2,
PBT's exploit state), ``TuneController.checkpoint`` (automl.run.ray.tune_state, save-on-change gate),
``OptunaSearch._ot_study`` / ``_ot_trials`` (automl.algorithms.optuna_searcher, a replayed
suggestion).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

log = logging.getLogger(__name__)

PINNED_RAY = "2.60.0"  # pyproject pins ray[tune]==2.60.0; the accessors below are checked on it


def is_pinned() -> bool:
    import ray

    return ray.__version__ == PINNED_RAY


@functools.cache
def check_version() -> bool:
    """Whether the installed Ray is the pinned one (logged once when it is not)."""
    if not is_pinned():
        import ray

        log.warning("ray %s is not the pinned %s: private Ray APIs automl relies on may differ",
                    ray.__version__, PINNED_RAY)
        return False
    return True


def train_storage() -> Any:
    """``ray.train._internal.storage``: its ``_FilesystemSyncer.sync_up`` is replaced by an
    atomic, synchronous copy (automl.run.ray.atomic_sync), because Ray's background sync could leave the
    workspace's experiment state behind what Tune had saved."""
    from ray.train._internal import storage

    return storage


def restored_run_config(tuner: Any) -> Any:
    """The ``RunConfig`` of a restored ``Tuner`` (``tuner._local_tuner._run_config``): Tune
    restores callbacks and stoppers from its pickle without their live parts (observers, the
    failure count's recorder), and ``Tuner.restore`` takes neither, so the driver sets its own
    on the restored config."""
    return tuner._local_tuner._run_config


def training_session() -> Any:
    """The running trial's Ray Train session (or None): its ``stop_event`` tells a trial that
    Tune wants it stopped before its next report (no public API exposes it)."""
    from ray.train._internal.session import get_session

    return get_session()


def training_result_class() -> type:
    """``_TrainingResult``: PBT's exploit hands the child a (checkpoint, metrics) pair of this
    type; automl.algorithms.pbt builds one to point the child at its own copy of the file."""
    from ray.train._internal.session import _TrainingResult

    return _TrainingResult


def convert_to_experiment_list(experiments: Any) -> list[Any]:
    """Tune's normalisation of ``Searcher.add_configurations`` input (a searcher that overrides
    that method receives what Tune passes, and must normalise it the same way)."""
    from ray.tune.experiment import _convert_to_experiment_list

    return _convert_to_experiment_list(experiments)


def tune_controller_class() -> type:
    """``TuneController`` (not exported): automl.run.ray.tune_state wraps its ``checkpoint`` method so
    that Tune saves its experiment state only when it changed."""
    from ray.tune.execution.tune_controller import TuneController

    return TuneController


def trial_class() -> type:
    """``ray.tune.experiment.Trial``: automl.resume.replay replaces its ``generate_id``
    classmethod while a resumed run creates again the trials Tune had not saved (the id is drawn
    before the searcher is asked, and no public API lets a searcher name a trial)."""
    from ray.tune.experiment import Trial

    return Trial


def actor_class_cache() -> tuple[type, dict[str, str], frozenset[str]]:
    """``_ActorClassCache`` with the variables Tune puts in every trainable's runtime env (its
    defaults, and the names it copies from the driver): automl.run.ray.prestarted_workers registers
    trainables without that runtime env on a local instance, whose workers inherit them anyway,
    so that trials start on Ray's prestarted workers."""
    from ray.tune.execution import class_cache

    return (class_cache._ActorClassCache, dict(class_cache.DEFAULT_ENV_VARS),
            frozenset(class_cache.ENV_VARS_TO_PROPAGATE))


def air_usage() -> Any:
    """``ray.air._internal.usage``: its ``tag_callbacks`` imports mlflow in the controller only to
    record a usage tag; automl.run.ray.usage_tags skips it while usage stats are disabled."""
    from ray.air._internal import usage

    return usage
