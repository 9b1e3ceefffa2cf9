"""Every test is exactly one kind: ``unit``, ``integration`` or ``e2e`` (see tests/README.md).

The kind is read from what a test uses (its fixtures) or declared on the test or its module;
a collection-time check refuses a test that is declared one kind and uses another's fixtures,
and a run-time check fails a test whose declared kind is lower than what it did (a unit test
that opened an MLflow store, a unit or integration test that started a Python process).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

KINDS = ("unit", "integration", "e2e")

# Fixtures that train a model, open an MLflow store (its migrations take seconds) or reach a
# real server-side store in this process (PostgreSQL, moto's S3 on a thread).
INTEGRATION_FIXTURES = frozenset(
    {
        "mlflow_client",  # a fresh SQLite MLflow store
        "trained_state",  # monitoring
        "trained_versions",  # registry
        "versions",  # registry/test_paired_gates.py
        "model_dir",  # serving (and every served app built on it)
        "trained",  # training/test_train.py
        "lineage",  # training/test_evaluation_set.py
        "postgres_url",  # a PostgreSQL database of the test's own
        "moto_endpoint",  # S3 (and CloudWatch) over HTTP
    }
)
STORE_MARKERS = frozenset({"postgres", "s3"})
# Fixtures that start other processes: `boltit serve` replicas, `mlflow server`.
E2E_FIXTURES = frozenset(
    {
        "served",  # serving/test_bounds.py: one `boltit serve` for the module
        "cluster",  # serving/test_following.py: two replicas under load
        "mlflow_ui",  # registry/test_sync.py: `mlflow server`
        "browser",  # tests/browser: Chromium (and Playwright's driver) for the session
        "page",  # tests/browser: a page in that Chromium
    }
)


def kind_of(item: pytest.Item) -> str:
    """The one kind ``item`` is, from its declared markers and its fixtures.

    Raises ``pytest.UsageError`` when the declarations contradict each other or the fixtures.
    """
    marks = {mark.name for mark in item.iter_markers()}
    declared = marks & set(KINDS)
    used = set(getattr(item, "fixturenames", ()))
    # A test marked `postgres` or `s3` reaches that store even when it asks for it late
    # (``request.getfixturevalue`` in a parametrised fixture).
    by_fixture = (
        "e2e"
        if used & E2E_FIXTURES
        else "integration"
        if used & INTEGRATION_FIXTURES or marks & STORE_MARKERS
        else None
    )
    if len(declared) > 1:
        raise pytest.UsageError(f"{item.nodeid} is marked {sorted(declared)}: one kind only")
    if not declared:
        return by_fixture or "unit"
    (kind,) = declared
    # An e2e test may use integration fixtures (it starts a service on a trained model);
    # a test declared lower than its fixtures is not what it says.
    if by_fixture is not None and KINDS.index(kind) < KINDS.index(by_fixture):
        found = sorted(used & (E2E_FIXTURES | INTEGRATION_FIXTURES) | marks & STORE_MARKERS)
        raise pytest.UsageError(f"{item.nodeid} is marked {kind} but uses {found}")
    return kind


def mark_kinds(items: Iterable[pytest.Item]) -> None:
    """Give every item exactly one kind marker."""
    for item in items:
        kind = kind_of(item)
        if not item.get_closest_marker(kind):
            item.add_marker(kind)
        kinds = [name for name in KINDS if item.get_closest_marker(name)]
        if kinds != [kind]:
            raise pytest.UsageError(f"{item.nodeid} has kinds {kinds}: one kind only")


class KindGuard:
    """Watches, through Python's audit hooks, what the running test does.

    Audit hooks cannot be removed, so one guard is installed per session and told which
    test is running. Only Python processes count as "started a process": libraries call
    ``git`` on their own (MLflow records the source commit) without the test asking.
    """

    def __init__(self) -> None:
        self.kind: str | None = None
        self.seen: list[str] = []
        self._python_bin = Path(sys.executable).parent

    def install(self) -> None:
        sys.addaudithook(self._hook)

    def start(self, kind: str) -> None:
        self.kind, self.seen = kind, []

    def stop(self) -> list[str]:
        seen, self.kind, self.seen = self.seen, None, []
        return seen

    def _hook(self, event: str, args: tuple[object, ...]) -> None:
        if self.kind is None or self.kind == "e2e":
            return
        if event in ("subprocess.Popen", "os.posix_spawn", "os.fork"):
            program = self._program(event, args)
            if program is not None:
                self.seen.append(f"started {program}: mark it e2e")
        elif event == "sqlite3.connect" and self.kind == "unit":
            database = str(args[0]) if args else ""
            if Path(database).name == "mlflow.db":
                self.seen.append(f"opened the MLflow store {database}: mark it integration")

    def _program(self, event: str, args: tuple[object, ...]) -> str | None:
        if event == "os.fork":
            return "a forked process"
        executable, argv = args[0], args[1]
        first = executable or (argv[0] if isinstance(argv, list | tuple) and argv else argv)
        if not isinstance(first, str | bytes | Path):
            return None
        path = Path(first.decode() if isinstance(first, bytes) else first)
        if path.parent == self._python_bin or path.name.startswith("python"):
            return str(path)
        return None
