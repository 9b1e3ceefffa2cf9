"""The serving core: routes each ticket to a version, predicts, decides, stores, counts."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from mlflow import MlflowClient
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from boltit.core import flags
from boltit.core.db import Database
from boltit.core.flags import FlagValues
from boltit.core.schema import utcnow
from boltit.core.settings import Settings
from boltit.core.vocabulary import (
    AUTO_APPLY_FLAG,
    CHALLENGER,
    PRODUCTION,
    SERVED_BY_CANARY,
    SERVED_BY_CANARY_FALLBACK,
    SERVED_BY_PRODUCTION,
)
from boltit.serving.classification import Classification
from boltit.serving.decision import auto_apply_decision, in_canary
from boltit.serving.flag_watcher import FlagWatcher
from boltit.serving.follower import AliasFollower, LoadedModel, ModelFollower, replica_name
from boltit.serving.predictor import Prediction
from boltit.serving.prometheus import ServiceMetrics
from boltit.serving.ticket_writer import ShadowScorer, ticket_writer

log = logging.getLogger(__name__)

# Work above this many characters per request is predicted in a worker thread so the
# event loop keeps answering (/ready, small requests); below it, the thread hop costs more
# than the prediction (see bench/).
INLINE_MAX_CHARS = 2_000

# Builds one more collector for /metrics from the running service: how the composition root
# adds the monitor's alert rules without serving importing monitoring.
CollectorFactory = Callable[["ServingService"], Collector]


def new_ticket_id() -> str:
    """32 hex digits: the time in nanoseconds, then 64 random bits.

    Ids in creation order keep the primary-key index append-only: random ones touch a
    different index page per row, which made each SQLite group commit write ~80 % more
    pages (and the checkpointer copy them again).
    """
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"


class NoModelError(Exception):
    """No version is loaded yet; the caller answers 503."""


class PredictionFailedError(Exception):
    """The loaded model raised while predicting; the caller answers a JSON 500."""

    def __init__(self, *, version: str, error: BaseException) -> None:
        super().__init__(
            f"model version {version} failed to classify: {type(error).__name__}: {error}"[:1000]
        )
        self.version = version


class ServingService:
    """Everything one replica runs: alias followers, flag watcher, ticket writer, metrics."""

    def __init__(
        self,
        *,
        settings: Settings,
        client: MlflowClient,
        database: Database,
        collectors: Sequence[CollectorFactory] = (),
    ) -> None:
        self.settings = settings
        self.database = database
        self._client = client
        self.follower = ModelFollower(
            production=self._follow(PRODUCTION),
            challenger=None,  # followed while the flags give it a part (_follow_challenger)
            interval_seconds=settings.poll_interval_seconds,
        )
        self._challenger_lock = threading.Lock()
        # The environment's values are the flags' first values; the table rules after that.
        self.flags = FlagWatcher(
            database=database,
            defaults=flags.defaults_from(settings),
            interval_seconds=settings.flag_poll_interval_seconds,
            on_change=self._follow_challenger,
        )
        self.shadow = ShadowScorer(database, challenger=self.challenger)
        self.writer = ticket_writer(database, after_commit=self._shadow_committed)
        self.metrics = ServiceMetrics(database=database, models=self.loaded_models)
        for build in collectors:
            self.metrics.add_collector(build(self))

    def _follow(self, alias: str) -> AliasFollower:
        settings = self.settings
        return AliasFollower(
            client=self._client,
            database=self.database,
            name=settings.model_name,
            alias=alias,
            retry_seconds=settings.load_retry_seconds,
            retry_max_seconds=settings.load_retry_max_seconds,
        )

    def _follow_challenger(self, values: FlagValues) -> None:
        """Follow the challenger alias while shadow or a canary share needs it; else let go.

        Loading happens in the follower's thread (woken here), so a flag change never waits
        for a model load; until it is loaded, every ticket is Production's. A replica holds a
        challenger only while it has a part, so one left behind by ``validate`` costs nothing.
        """
        with self._challenger_lock:
            following = self.follower.challenger is not None
            if values.challenger_needed and not following:
                self.follower.challenger = self._follow(CHALLENGER)
                self.follower.wake()
            elif not values.challenger_needed and following:
                self.follower.challenger = None

    def _shadow_committed(self, rows: list[dict[str, Any]]) -> None:
        """Queue committed Production tickets for shadow scoring while the flag is on."""
        if self.flags.shadow_enabled:
            self.shadow.submit(rows)

    def served_version(self) -> str | None:
        """The Production version loaded now, if any."""
        model = self.production
        return model.version if model is not None else None

    @property
    def production(self) -> LoadedModel | None:
        """The version serving Production traffic."""
        return self.follower.production.current

    def challenger(self) -> LoadedModel | None:
        """The challenger version, when followed and loaded."""
        follower = self.follower.challenger
        return follower.current if follower is not None else None

    def loaded_models(self) -> list[LoadedModel]:
        """Every loaded version."""
        return [f.current for f in self.follower.followers() if f.current is not None]

    def served_categories(self) -> set[str]:
        """The categories of every loaded version (Production and, when followed, challenger)."""
        return {
            category for model in self.loaded_models() for category in model.predictor.categories
        }

    def start(self) -> None:
        """Seed and read the flags, load the aliases once, then start the background threads."""
        flags.seed_defaults(self.database, self.flags.defaults)
        self.flags.refresh()  # follows the challenger when the flags give it a part
        self.follower.check_all()
        self.writer.start()
        self.shadow.start()
        self.flags.start()
        self.follower.start()

    def stop(self) -> None:
        """Stop following, then flush the queues."""
        self.follower.stop()
        self.flags.stop()
        self.writer.stop()
        self.shadow.stop()

    async def classify(self, texts: Sequence[str]) -> list[Classification]:
        """Classify tickets, decide auto-apply, and return once every row is committed.

        A ticket routed to the canary whose model raises is answered by Production and
        stored as ``canary-fallback``: the caller never sees the canary's failure.

        Raises:
            NoModelError: no version has been loaded yet.
            PredictionFailedError: the Production model raised (nothing is stored for the
                request).
            StoreUnavailableError: the ticket store could not commit.
        """
        started = time.perf_counter()
        production = self.production  # read once: a swap mid-request changes nothing here
        if production is None:
            raise NoModelError("no model version is loaded yet")
        now = self.flags.current  # one snapshot of the flags for the whole request
        routes = self._route(texts, production, percent=now.canary_percent)
        served = await self._predict(texts, routes, production)
        latency_ms = (time.perf_counter() - started) * 1000 / len(texts)
        rows, results = self._decide(
            texts, served, latency_ms, auto_apply_enabled=now.auto_apply_enabled
        )
        await self.writer.write(rows)
        self._count(rows)
        return results

    async def _predict(
        self,
        texts: Sequence[str],
        routes: dict[str, tuple[LoadedModel, list[int]]],
        production: LoadedModel,
    ) -> list[Served]:
        """Each ticket's answer, the version that gave it and its route, in request order."""
        served: list[Served | None] = [None] * len(texts)
        inline = self.settings.predict_inline and sum(map(len, texts)) <= INLINE_MAX_CHARS
        for route, (model, indices) in routes.items():
            batch = [texts[i] for i in indices]
            try:
                answers = await _answers(model, batch, indices, inline=inline)
            except Exception as exc:  # whatever a model raises is its failure, not ours
                if route != SERVED_BY_CANARY:
                    raise PredictionFailedError(version=model.version, error=exc) from exc
                log.warning(
                    "canary version %s failed on %d tickets (%s: %s); Production answers them",
                    model.version,
                    len(batch),
                    type(exc).__name__,
                    str(exc)[:200],
                )
                route, model = SERVED_BY_CANARY_FALLBACK, production
                try:
                    answers = await _answers(production, batch, indices, inline=inline)
                except Exception as exc:
                    raise PredictionFailedError(version=production.version, error=exc) from exc
            for index, answer in answers:
                served[index] = (answer, model, route)
        assert all(entry is not None for entry in served)  # every index was routed
        return served  # type: ignore[return-value]

    def _decide(
        self,
        texts: Sequence[str],
        served: list[Served],
        latency_ms: float,
        *,
        auto_apply_enabled: bool,
    ) -> tuple[list[dict[str, Any]], list[Classification]]:
        """The auto-apply decision per ticket, as the rows to store and the answers to return."""
        threshold = self.settings.auto_apply_threshold
        now = utcnow()
        rows: list[dict[str, Any]] = []
        results: list[Classification] = []
        for index, (answer, model, served_by) in enumerate(served):
            applied, reason = auto_apply_decision(
                confidence=answer.confidence,
                threshold=threshold,
                enabled=auto_apply_enabled,
                on_trial=model.version if served_by == SERVED_BY_CANARY else None,
            )
            ticket_id = new_ticket_id()
            rows.append(
                {
                    "id": ticket_id,
                    # PostgreSQL text cannot hold NUL; the stored copy marks it instead.
                    "text": texts[index].replace("\x00", "\ufffd"),
                    "category": answer.category,
                    "priority": answer.priority,
                    "confidence": answer.confidence,
                    "model_name": model.name,
                    "model_version": model.version,
                    "served_by": served_by,
                    "latency_ms": latency_ms,
                    "auto_applied": applied,
                    "reason": reason,
                    "created_at": now,
                }
            )
            results.append(
                Classification(
                    ticket_id=ticket_id,
                    category=answer.category,
                    priority=answer.priority,
                    confidence=answer.confidence,
                    model_version=model.version,
                    auto_applied=applied,
                    reason=reason,
                    latency_ms=round(latency_ms, 3),
                )
            )
        return rows, results

    def _route(
        self, texts: Sequence[str], production: LoadedModel, *, percent: float
    ) -> dict[str, tuple[LoadedModel, list[int]]]:
        """Which tickets the canary answers (sticky by text), once its version is loaded."""
        challenger = self.challenger() if percent > 0 else None
        if challenger is None:
            return {SERVED_BY_PRODUCTION: (production, list(range(len(texts))))}
        routes: dict[str, tuple[LoadedModel, list[int]]] = {}
        for index, text in enumerate(texts):
            if in_canary(text, percent=percent):
                routes.setdefault(SERVED_BY_CANARY, (challenger, []))[1].append(index)
            else:
                routes.setdefault(SERVED_BY_PRODUCTION, (production, []))[1].append(index)
        return routes

    def _count(self, rows: list[dict[str, Any]]) -> None:
        observe = self.metrics.observe_prediction
        for row in rows:
            observe(
                category=row["category"],
                version=row["model_version"],
                served_by=row["served_by"],
                confidence=row["confidence"],
                applied=row["auto_applied"],
            )

    def set_flags(
        self,
        *,
        actor: str,
        reason: str | None,
        auto_apply_enabled: bool | None = None,
        shadow_enabled: bool | None = None,
        canary_percent: float | None = None,
    ) -> FlagValues:
        """Persist the given flags in one transaction (each change audited) and apply them
        here at once; other replicas follow by polling.

        Raises:
            FlagValueError: ``canary_percent`` is outside 0-100 (nothing is written).
        """
        if canary_percent is not None:
            flags.checked_canary_percent(canary_percent)
        with self.database.session() as session:
            if auto_apply_enabled is not None:
                flags.set_flag(
                    session, AUTO_APPLY_FLAG, enabled=auto_apply_enabled, actor=actor, reason=reason
                )
            if shadow_enabled is not None:
                flags.set_shadow(session, shadow_enabled, actor=actor, reason=reason)
            if canary_percent is not None:
                flags.set_canary_percent(session, canary_percent, actor=actor, reason=reason)
        return self.flags.refresh()


# One ticket's answer, the version that gave it, and its route (``tickets.served_by``).
Served = tuple[Prediction, LoadedModel, str]


async def _answers(
    model: LoadedModel, batch: list[str], indices: list[int], *, inline: bool
) -> list[tuple[int, Prediction]]:
    """``model``'s answers to ``batch``, paired with their request indices."""
    if inline:
        predicted = model.predictor.predict(batch)
    else:
        predicted = await run_in_threadpool(model.predictor.predict, batch)
    return list(zip(indices, predicted, strict=True))


def admin_actor() -> str:
    """How admin API writes appear in the audit history."""
    return f"admin-api@{replica_name()}"
