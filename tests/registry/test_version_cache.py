"""``load_version_cached``: a loaded version is reused, and the least recently used one goes."""

from __future__ import annotations

from mlflow import MlflowClient

from boltit.core.settings import Settings
from boltit.registry.scoring import load_version_cached
from tests.registry.conftest import TrainedVersions, clone_version


def test_the_least_recently_used_version_is_loaded_again(
    registry_settings: Settings, trained_client: MlflowClient, trained_versions: TrainedVersions
) -> None:
    name = registry_settings.model_name
    versions = [trained_versions.good, trained_versions.bad]
    versions += [clone_version(trained_client, name=name, version=versions[0]) for _ in range(3)]
    first, second, *others = versions

    loaded = {v: load_version_cached(name=name, version=v) for v in (first, second, *others[:2])}
    assert load_version_cached(name=name, version=first) is loaded[first]  # used again: newest
    load_version_cached(name=name, version=others[2])  # a fifth version: one of four must go

    assert load_version_cached(name=name, version=first) is loaded[first]
    reloaded = load_version_cached(name=name, version=second)
    assert reloaded is not loaded[second]
    assert reloaded.version == second
