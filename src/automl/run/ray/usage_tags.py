"""Ray's usage tags stay off the controller's start-up path when usage stats are disabled.

``tune.run`` calls ``ray.air._internal.usage.tag_callbacks(callbacks)`` whenever callbacks are
given (the engine always gives its Recorder). To name built-in callbacks it imports Ray's
MLflow, W&B and Comet integrations, and the MLflow one imports ``mlflow``: 1.5 s of CPU in the
controller between ``Tuner.fit`` and the first trial (cProfile of ``automl run`` on 2 idle cores),
although MLflow runs in its own logging process. The tag is only recorded for Ray's usage
statistics, which the engine disables (``RAY_USAGE_STATS_ENABLED=0``), so nothing is lost by not
computing it then.
"""

from __future__ import annotations

import os


def skip_callback_tags() -> bool:
    """Replace ``tag_callbacks`` by a no-op while usage stats are disabled (pinned Ray only).
    Returns whether it was replaced."""
    from automl.run.ray.ray_private import air_usage, is_pinned

    if not is_pinned() or os.environ.get("RAY_USAGE_STATS_ENABLED") != "0":
        return False
    usage = air_usage()

    def tag_callbacks(callbacks: object) -> bool:
        return False

    usage.tag_callbacks = tag_callbacks
    return True
