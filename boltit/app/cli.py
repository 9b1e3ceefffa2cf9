"""The ``boltit`` console script: root callback plus every package's commands."""

from __future__ import annotations

import logging
import os
import warnings

import typer
from pydantic import ValidationError

from boltit.core.console import err
from boltit.core.context import AppContext
from boltit.core.errors import BoltitError
from boltit.core.settings import load_settings


def build_app() -> typer.Typer:
    """Assemble the CLI from each package's own ``register`` function."""
    from boltit.app import clients_cli, demo, flags_cli, serve
    from boltit.data_checks import cli as data_checks_cli
    from boltit.monitoring import cli as monitoring_cli
    from boltit.registry import cli as registry_cli
    from boltit.training import cli as training_cli

    app = typer.Typer(
        name="boltit",
        help="BoltIT ticket-classifier lifecycle around the MLflow model registry.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def root(ctx: typer.Context) -> None:
        """Settings come from the environment and an optional .env (see README)."""
        try:
            settings = load_settings()
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise BoltitError(f"invalid settings: {problems}") from exc
        ctx.obj = AppContext(settings=settings)

    for module in (
        training_cli,
        registry_cli,
        serve,
        data_checks_cli,
        monitoring_cli,
        flags_cli,
        clients_cli,
        demo,
    ):
        module.register(app)
    return app


def _quiet_libraries() -> None:
    # MLflow and Alembic narrate every store open; users want only our output.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("alembic", "mlflow", "great_expectations", "urllib3", "botocore"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")


def main() -> None:
    """Entry point of the ``boltit`` console script."""
    _quiet_libraries()
    app = build_app()
    try:
        app()
    except BoltitError as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(130) from None
