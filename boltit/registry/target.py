"""What every registry operation is told: which stores, which model, who acts."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:  # `boltit --help` builds the CLI from this without importing mlflow
    from mlflow import MlflowClient

    from boltit.core.db import Database
    from boltit.core.settings import Settings


class Target(TypedDict):
    """The keyword arguments ``validate``, ``promote``, ``rollback`` and ``sync`` share."""

    client: MlflowClient
    database: Database
    name: str
    actor: str
    settings: Settings


class VersionTarget(Target):
    """``Target`` and the version acted on (``validate``, ``promote``)."""

    version: str | int
