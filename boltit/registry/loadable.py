"""Whether a version can serve: proven by the history, else by loading it.

Loading a model costs seconds (download, unpickle, warm-up) and the full MLflow stack;
an emergency alias move must not pay it for a version that already served. A version
that served (a promotion, rollback or accepted sync moved Production to it) or that a
serving replica loaded (a ``model_swap`` row) is known to load, so the check is skipped
and the history says so.
"""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy.orm import Session

from boltit.core import audit
from boltit.core.errors import BadInputError
from boltit.core.light import mlflow_is_light
from boltit.registry.history import serving_timeline

# The audit detail a promotion or rollback records when it did not load the model.
SKIPPED_AS_SERVED = "skipped: served before"
LOADED = "loaded"
# A child that prints this prefix found the model unloadable; the rest is the reason.
_FAILURE_PREFIX = "unloadable: "


def known_to_load(session: Session, *, name: str, version: str) -> bool:
    """True when ``version`` of ``name`` served, or a serving replica loaded it."""
    if version in serving_timeline(session, model_name=name):
        return True
    swaps = audit.history(session, model_name=name, actions=["model_swap"])
    return any(event.to_version == version for event in swaps)


def load_failure(*, name: str, version: str) -> str | None:
    """Why ``version`` cannot be loaded, or None when it loads.

    A process that imported MLflow light cannot load models, so it asks a child.
    """
    if mlflow_is_light():
        return _load_failure_in_child(name=name, version=version)
    from boltit.registry.scoring import load_version

    try:
        load_version(name=name, version=version)
    except BadInputError as exc:
        return str(exc)
    return None


def _load_failure_in_child(*, name: str, version: str) -> str | None:
    import mlflow

    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = mlflow.get_tracking_uri()
    env["MLFLOW_REGISTRY_URI"] = mlflow.get_registry_uri()
    child = subprocess.run(
        [sys.executable, "-m", "boltit.registry.loadable", name, version],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in child.stdout.splitlines():
        if line.startswith(_FAILURE_PREFIX):
            return line.removeprefix(_FAILURE_PREFIX)
    if child.returncode != 0:
        tail = (child.stderr.strip().splitlines() or ["no output"])[-1]
        return f"version {version} of {name!r} cannot be checked: {tail}"
    return None


def _main(argv: list[str]) -> int:
    name, version = argv
    failure = load_failure(name=name, version=version)
    if failure is not None:
        print(_FAILURE_PREFIX + failure.replace("\n", " "))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
