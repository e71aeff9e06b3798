"""Ray Tune's driver staging folder: one per driver process, not one per second.

Tune writes the driver's files (the experiment state, the searcher's pickle) to
``<Ray session>/artifacts/<timestamp>/<experiment name>/driver_artifacts`` and copies that
folder into the workspace (``ray/tune``) at every save. The timestamp has a one-second
resolution and the experiment name is always ``tune``: two experiments whose drivers share one
Ray instance (``automl serve``, ``--address``) and start in the same second share the folder, and
each copies the other's state into its own workspace; ``automl resume`` then restores the other
experiment's searcher (Optuna's ``KeyError`` on the first result of a restored trial). Ray has
no setting for that folder, so the driver's pid is appended to the timestamp. Tune keeps the
timestamp with the trials, so a resumed run reuses the folder of the run it continues, as Ray
intends (``TuneController._restore_trials``).
"""

from __future__ import annotations

import functools
import os
from typing import Any


def private_driver_staging() -> None:
    """Make every ``StorageContext`` this process creates stage in a folder of its own.

    Private attribute (``StorageContext._timestamp``) of the pinned Ray version (see pyproject).
    """
    from ray.train._internal.storage import StorageContext

    init = StorageContext.__init__
    if getattr(init, "_automl_private_staging", False):
        return

    @functools.wraps(init)
    def __init__(self: StorageContext, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._timestamp = f"{self._timestamp}_{os.getpid()}"

    __init__._automl_private_staging = True  # type: ignore[attr-defined]
    StorageContext.__init__ = __init__  # type: ignore[method-assign]
