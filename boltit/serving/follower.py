"""Follow a registry alias: load and warm each new version in the background, swap atomically.

A version that fails to load is refused and the old one (if any) keeps serving; the
failure goes to the audit history (once per version) and to ``/health``. While the alias
still points at it, the load is retried with exponential backoff, so a version whose files
come back (a restored artifact store, a flaky network share) is served without a reload.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.schema import utcnow
from boltit.serving.predictor import ModelLoadError, Predictor, load_predictor

log = logging.getLogger(__name__)


def replica_name() -> str:
    """This process's name in the audit history (uvicorn workers are separate processes)."""
    return f"serving@{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """One warmed model version, ready to answer."""

    name: str
    version: str
    alias: str
    run_id: str | None
    loaded_at: datetime
    predictor: Predictor


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """A version that was refused, and why."""

    version: str
    alias: str
    error: str
    at: datetime


@dataclass
class CheckResult:
    """What one look at the alias did."""

    alias: str
    version: str | None
    swapped: bool = False
    error: str | None = None
    notes: list[str] = field(default_factory=list)


Loader = Callable[[str], Predictor]


@dataclass(slots=True)
class RetryState:
    """When a refused version is tried again: after ``delay``, doubling up to the cap."""

    attempts: int
    delay: float
    next_at: float  # time.monotonic()


class AliasFollower:
    """Keeps ``current`` on the version an alias points at.

    Requests read ``current`` once per call; the swap is a single reference
    assignment, so no request ever sees a half-loaded model.
    """

    def __init__(
        self,
        *,
        client: MlflowClient,
        database: Database,
        name: str,
        alias: str,
        loader: Loader = load_predictor,
        retry_seconds: float = 1.0,
        retry_max_seconds: float = 60.0,
    ) -> None:
        self.client = client
        self.database = database
        self.name = name
        self.alias = alias
        self._loader = loader
        self.current: LoadedModel | None = None
        self.failures: deque[LoadFailure] = deque(maxlen=20)
        self._refused: dict[str, RetryState] = {}
        self._retry_seconds = retry_seconds
        self._retry_max_seconds = max(retry_max_seconds, retry_seconds)
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.wanted: str | None = None  # the version the alias points at, loaded or not

    def check(self, *, force: bool = False) -> CheckResult:
        """Resolve the alias once and load its version if it is new (or ``force``)."""
        with self._lock:
            return self._check(force=force)

    def _check(self, *, force: bool) -> CheckResult:
        try:
            version_info = self.client.get_model_version_by_alias(self.name, self.alias)
        except MlflowException as exc:
            # A missing alias (e.g. no challenger) is normal; the serving model stays.
            self.last_error = None if _is_missing(exc) else str(exc.message)
            if _is_missing(exc) and self.alias != "Production" and self.current is not None:
                self.current = None
            return CheckResult(alias=self.alias, version=None, error=self.last_error)
        except Exception as exc:  # registry unreachable: keep serving what we have
            self.last_error = f"registry unavailable: {exc}"
            return CheckResult(alias=self.alias, version=None, error=self.last_error)
        self.last_error = None
        version = str(version_info.version)
        self.wanted = version
        result = CheckResult(alias=self.alias, version=version)
        current = self.current
        if current is not None and current.version == version and not force:
            return result
        retry = self._refused.get(version)
        if retry is not None and not force and time.monotonic() < retry.next_at:
            return result
        try:
            predictor = self._loader(f"models:/{self.name}/{version}")
        except ModelLoadError as exc:
            self._refuse(version, str(exc), force=force)
            result.error = str(exc)
            return result
        except Exception as exc:  # anything a broken artifact throws must not stop the thread
            self._refuse(version, f"{type(exc).__name__}: {exc}", force=force)
            result.error = str(exc)
            return result
        loaded = LoadedModel(
            name=self.name,
            version=version,
            alias=self.alias,
            run_id=version_info.run_id,
            loaded_at=utcnow(),
            predictor=predictor,
        )
        # A model is hundreds of thousands of long-lived objects; left in the collected
        # generations, each full collection walks them all and stalls every request for
        # ~200 ms (the p99 of bench/serve_bench.py). Frozen, the collector skips them.
        gc.freeze()
        self.current = loaded  # the atomic swap
        retried = self._refused.pop(version, None)
        result.swapped = True
        details: dict[str, object] = {
            "alias": self.alias,
            "replica": replica_name(),
            "forced": force,
        }
        if retried is not None:
            details["failed_attempts"] = retried.attempts
        self._record(
            action="model_swap",
            from_version=current.version if current else None,
            to_version=version,
            reason=f"{self.alias} alias now points at version {version}"
            + (f" (loaded after {retried.attempts} failed attempts)" if retried else ""),
            details=details,
        )
        return result

    def _refuse(self, version: str, error: str, *, force: bool = False) -> None:
        retry = self._refused.get(version)
        if retry is not None:
            retry.attempts += 1
            retry.delay = min(retry.delay * 2, self._retry_max_seconds)
            retry.next_at = time.monotonic() + retry.delay
        if retry is not None and not force:
            # Already in the history and on /health: a background retry only backs off.
            log.warning(
                "%s version %s still fails to load (attempt %d, next in %.0f s): %s",
                self.name,
                version,
                retry.attempts,
                retry.delay,
                error[:500],
            )
            return
        if retry is None:
            self._refused[version] = RetryState(
                attempts=1,
                delay=self._retry_seconds,
                next_at=time.monotonic() + self._retry_seconds,
            )
        self.failures.append(
            LoadFailure(version=version, alias=self.alias, error=error[:2000], at=utcnow())
        )
        current = self.current
        log.error("refused %s version %s: %s", self.name, version, error)
        self._record(
            action="load_failure",
            from_version=current.version if current else None,
            to_version=version,
            reason=error[:2000],
            details={
                "alias": self.alias,
                "replica": replica_name(),
                "still_serving": current.version if current else None,
            },
        )

    def _record(self, **event: object) -> None:
        try:
            with self.database.session() as session:
                audit.record(
                    session,
                    actor=replica_name(),
                    model_name=self.name,
                    **event,  # type: ignore[arg-type]
                )
        except Exception:  # the audit store being down must not stop serving
            log.exception("could not record %s in the audit history", event.get("action"))


def _is_missing(exc: MlflowException) -> bool:
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") or (
        "not found" in str(exc.message).lower()
    )


class ModelFollower:
    """Polls the Production (and, when used, challenger) aliases in one background thread.

    ``wake()`` makes it look now instead of at the next interval (webhooks use it).
    """

    def __init__(
        self,
        *,
        production: AliasFollower,
        challenger: AliasFollower | None,
        interval_seconds: float,
    ) -> None:
        self.production = production
        self.challenger = challenger
        self.interval_seconds = interval_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def followers(self) -> list[AliasFollower]:
        """Every alias being followed."""
        return [f for f in (self.production, self.challenger) if f is not None]

    def start(self) -> None:
        """Start polling in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="model-follower", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the aliases now."""
        self._wake.set()

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def check_all(self, *, force: bool = False) -> list[CheckResult]:
        """Look at every followed alias once."""
        return [follower.check(force=force) for follower in self.followers()]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_all()
            except Exception:  # never let the follower die; the next poll retries
                log.exception("alias check failed")
            self._wake.wait(self.interval_seconds)
            self._wake.clear()
