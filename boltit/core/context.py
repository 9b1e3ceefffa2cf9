"""What a CLI command needs, built once from settings by the root callback."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import typer

from boltit.core.settings import Settings

if TYPE_CHECKING:  # mlflow and SQLAlchemy cost seconds to import; --help needs neither
    from mlflow import MlflowClient

    from boltit.core.db import Database


@dataclass
class AppContext:
    """Settings plus lazily opened database and MLflow client."""

    settings: Settings

    @cached_property
    def database(self) -> Database:
        from boltit.core.db import Database

        return Database(self.settings.database_url)

    @cached_property
    def mlflow_client(self) -> MlflowClient:
        from boltit.core.tracking import configure_mlflow

        return configure_mlflow(self.settings)


def app_context(ctx: typer.Context) -> AppContext:
    """The context the root callback stored on the click context."""
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):
        raise RuntimeError("boltit root callback did not run")
    return obj
