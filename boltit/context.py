"""What a CLI command needs, built once from settings by the root callback."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import typer
from mlflow import MlflowClient

from boltit.db import Database
from boltit.settings import Settings


@dataclass
class AppContext:
    """Settings plus lazily opened database and MLflow client."""

    settings: Settings

    @cached_property
    def database(self) -> Database:
        return Database(self.settings.database_url)

    @cached_property
    def mlflow_client(self) -> MlflowClient:
        from boltit.tracking import configure_mlflow

        return configure_mlflow(self.settings)


def app_context(ctx: typer.Context) -> AppContext:
    """The context the root callback stored on the click context."""
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):
        raise RuntimeError("boltit root callback did not run")
    return obj
