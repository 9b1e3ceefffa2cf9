"""MLflow's client without the data-science stacks, for the commands an on-call engineer runs.

``import mlflow`` pulls in pandas, pyarrow and scipy (dataset and signature helpers) even
to move an alias; that is seconds of a rollback. MLflow's own skinny build runs without
them: every such import sits in ``try/except ImportError``. ``import_mlflow_light()``
imports MLflow while those stacks are refused, so the alias-moving client costs what a
skinny install costs. The price: in that process MLflow cannot load a model (its
signature helpers are missing), so ``boltit.registry.loadable`` checks a model in a child
process there instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

# What the emergency commands must never import (tests/test_light_commands.py checks it).
HEAVY_STACKS = ("pandas", "pyarrow", "scipy", "sklearn", "great_expectations")
# Refused while MLflow imports, too: only its dataset helpers want numpy (0.15 s of CPU,
# about a twentieth of an alias move), and they load it under ``try/except ImportError``.
_REFUSED_WHILE_IMPORTING = (*HEAVY_STACKS, "numpy")

_light = False


class _RefuseHeavyStacks:
    """A meta-path finder that makes the heavy stacks look uninstalled."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        top = name.partition(".")[0]
        # A stack already imported stays importable: half-refusing it would break it.
        if top in _REFUSED_WHILE_IMPORTING and top not in sys.modules:
            raise ModuleNotFoundError(f"{top} is not imported by light commands", name=name)
        return None


def import_mlflow_light() -> None:
    """Import MLflow without pandas, pyarrow, scipy or numpy, unless it is already imported."""
    global _light
    if "mlflow" in sys.modules:
        return
    refuse = _RefuseHeavyStacks()
    sys.meta_path.insert(0, refuse)
    try:
        import mlflow
        import mlflow.client  # noqa: F401
    finally:
        sys.meta_path.remove(refuse)
    _light = True


def mlflow_is_light() -> bool:
    """True when this process imported MLflow through ``import_mlflow_light``."""
    return _light
