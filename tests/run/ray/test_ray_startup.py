"""What keeps Ray's start-up off the first trial's path (benchmarks/results/startup.md):
trainables on a local instance carry no runtime env (so Ray's prestarted workers take them),
and Ray's usage tag does not import mlflow in the controller while usage stats are off."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from automl.run.ray import prestarted_workers, usage_tags  # noqa: E402
from automl.run.ray.ray_private import actor_class_cache, air_usage  # noqa: E402


class Trainable:
    pass


@pytest.fixture
def cache(monkeypatch):
    cache_class, _, _ = actor_class_cache()
    monkeypatch.setattr(cache_class, "get", cache_class.get)  # restored after the test
    monkeypatch.setattr(prestarted_workers, "_local", False)
    return cache_class


def _runtime_env(remote_cls) -> dict | None:
    return remote_cls._default_options.get("runtime_env")


def test_local_instance_registers_trainables_without_runtime_env(cache, monkeypatch):
    monkeypatch.setenv("PL_DISABLE_FORK", "1")  # the engine sets it before ray.init
    assert prestarted_workers.register_without_runtime_env(local=True)
    assert _runtime_env(cache().get(Trainable)) is None


def test_cluster_or_missing_variable_keeps_tunes_runtime_env(cache, monkeypatch):
    monkeypatch.setenv("PL_DISABLE_FORK", "1")
    assert not prestarted_workers.register_without_runtime_env(local=False)
    assert _runtime_env(cache().get(Trainable))["env_vars"]["PL_DISABLE_FORK"] == "1"
    prestarted_workers.register_without_runtime_env(local=True)
    monkeypatch.delenv("PL_DISABLE_FORK")  # a worker would not inherit it: Tune's way
    assert _runtime_env(cache().get(Trainable))["env_vars"]["PL_DISABLE_FORK"] == "1"


def test_usage_tag_of_callbacks_is_skipped_only_while_usage_stats_are_off(monkeypatch):
    usage = air_usage()
    monkeypatch.setattr(usage, "tag_callbacks", usage.tag_callbacks)
    original = usage.tag_callbacks
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")
    assert not usage_tags.skip_callback_tags() and usage.tag_callbacks is original
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    assert usage_tags.skip_callback_tags() and usage.tag_callbacks is not original
    assert usage.tag_callbacks([object()]) is False
