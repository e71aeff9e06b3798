"""Trial actors start on the workers Ray has already started, not on new ones.

Ray Tune registers every trainable with a runtime environment of its own
(``_ActorClassCache.get``: ``{"env_vars": {"PL_DISABLE_FORK": "1", ...}}`` plus a few variables
copied from the driver). Ray cannot place an actor with a runtime environment on the idle
workers it prestarts at ``ray.init`` (they have none): it starts a new worker through
``setup_worker.py``, which imports Ray once to set the environment up and then execs the real
worker, which imports Ray again. On 2 idle cores that is ~4 s before the first trial's process
starts, and the prestarted workers are discarded (``benchmarks/results/startup-idle.md``, traced
with ``strace -f -e execve``).

On an instance this process started (``ray.init(address="local")``) every Ray process inherits
the driver's environment, so those variables already have their values in the workers when the
driver holds them: the engine sets ``PL_DISABLE_FORK`` before ``ray.init`` (``_RAY_ENV``), and the
copied variables come from the driver's own environment. Then the runtime environment changes
nothing, and :func:`register_without_runtime_env` registers the trainable without it. The same
holds for an experiment ``automl serve`` runs on the local instance it started: the server sets
:data:`INHERITS_ENV` in the experiment's environment, which is the server's. On a cluster
(``--address`` otherwise) the workers' environment is not the driver's, and Tune's registration is
kept.
"""

from __future__ import annotations

import functools
import os
from typing import Any

# Set by `automl serve` for the runs it starts on its own local Ray instance.
INHERITS_ENV = "AUTOML_RAY_INHERITS_ENV"
_local = False  # whether this process's experiment runs on a Ray instance it started itself


def register_without_runtime_env(local: bool) -> bool:
    """For an experiment on a Ray instance this process started (``local``): register Tune's
    trainables with no runtime env when it would only set variables the workers already
    inherit. Returns whether that applies (False on a cluster, or with a Ray other than the
    pinned one: Tune's registration as before)."""
    from automl.run.ray.ray_private import actor_class_cache, is_pinned

    global _local
    _local = local
    if not local or not is_pinned():
        return False
    cache_class, default_env, propagated = actor_class_cache()
    original = cache_class.get
    if getattr(original, "_automl_no_runtime_env", False):
        return True

    @functools.wraps(original)
    def get(self: Any, trainable_cls: Any) -> Any:
        wanted = {**default_env, **{k: os.environ[k] for k in propagated if k in os.environ}}
        if not _local or any(os.environ.get(key) != value for key, value in wanted.items()):
            return original(self, trainable_cls)  # a worker would lack one: Tune's way
        if trainable_cls not in self._cache:
            import ray

            self._cache[trainable_cls] = ray.remote(trainable_cls)
        return self._cache[trainable_cls]

    get._automl_no_runtime_env = True  # type: ignore[attr-defined]
    cache_class.get = get
    return True
