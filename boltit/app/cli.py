"""The ``boltit`` console script: root callback plus every package's commands.

Each package's commands load when they are invoked, not before: an on-call engineer's
``boltit flags set`` must not pay for importing the service, the demo's HTTP client or the
training stack. ``boltit --help`` loads them all to list them.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup

from boltit.core.console import err
from boltit.core.errors import BoltitError

# Every command name, in help order, and the module whose ``register`` adds it
# (tests/app/test_lazy_commands.py checks this against the modules themselves).
COMMAND_MODULES: dict[str, str] = {
    "train": "boltit.training.cli",
    "retrain": "boltit.training.cli",
    "validate": "boltit.registry.cli",
    "approve": "boltit.registry.cli",
    "promote": "boltit.registry.cli",
    "rollback": "boltit.registry.cli",
    "history": "boltit.registry.cli",
    "serve": "boltit.app.serve",
    "up": "boltit.app.serve",
    "check-data": "boltit.data_checks.cli",
    "drift": "boltit.data_checks.cli",
    "analyze-recent": "boltit.data_checks.cli",
    "model-metrics": "boltit.monitoring.cli",
    "recompute-accuracy": "boltit.monitoring.cli",
    "export-predictions": "boltit.monitoring.cli",
    "demo": "boltit.app.demo",
    "registry": "boltit.registry.cli",
    "monitor": "boltit.monitoring.cli",
    "incident": "boltit.monitoring.cli",
    "smoke": "boltit.monitoring.smoke_cli",
    "alarms": "boltit.monitoring.alarms_cli",
    "shadow": "boltit.monitoring.shadow_cli",
    "report": "boltit.monitoring.monthly_cli",
    "flags": "boltit.app.flags_cli",
    "rollout": "boltit.app.rollout_cli",
    "token": "boltit.app.clients_cli",
    "pipeline": "boltit.app.pipeline",
    "score": "boltit.batch.cli",
}


def module_commands(module_name: str) -> dict[str, Any]:
    """The click commands that module ``module_name``'s ``register`` adds to an app."""
    holder = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    importlib.import_module(module_name).register(holder)
    return dict(typer.main.get_group(holder).commands)


class _LazyCommands(MutableMapping[str, Any]):
    """Command name → click command, importing a command's module on first access."""

    def __init__(self, modules: dict[str, str]) -> None:
        self._modules = modules
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            module = self._modules[name]  # KeyError: no such command
            for loaded_name, command in module_commands(module).items():
                self._loaded.setdefault(loaded_name, command)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        raise TypeError("boltit commands cannot be removed")

    def __iter__(self) -> Iterator[str]:
        yield from self._modules
        yield from (name for name in self._loaded if name not in self._modules)

    def __len__(self) -> int:
        return len(self._modules.keys() | self._loaded.keys())


class _LazyGroup(TyperGroup):
    """The root group: knows every command's name, imports a command only to run or list it."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        eager = self.commands
        self.commands = _LazyCommands(COMMAND_MODULES)
        self.commands.update(eager)


def build_app() -> typer.Typer:
    """The CLI: the root callback; each package's commands load when invoked."""
    app = typer.Typer(
        name="boltit",
        help="BoltIT ticket-classifier lifecycle around the MLflow model registry.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        cls=_LazyGroup,
    )

    @app.callback()
    def root(ctx: typer.Context) -> None:
        """Settings come from the environment and an optional .env (see README)."""
        from pydantic import ValidationError

        from boltit.core.context import AppContext
        from boltit.core.settings import load_settings

        try:
            settings = load_settings()
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise BoltitError(f"invalid settings: {problems}") from exc
        ctx.obj = AppContext(settings=settings)

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
