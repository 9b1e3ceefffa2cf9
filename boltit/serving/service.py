"""The serving core: routes each ticket to a version, predicts, decides, stores, counts."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from mlflow import MlflowClient
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from boltit.core import flags
from boltit.core.db import Database
from boltit.core.schema import utcnow
from boltit.core.settings import Settings
from boltit.core.vocabulary import AUTO_APPLY_FLAG, CHALLENGER, PRODUCTION
from boltit.serving.classification import Classification
from boltit.serving.decision import auto_apply_decision, in_canary
from boltit.serving.flag_watcher import FlagWatcher
from boltit.serving.follower import AliasFollower, LoadedModel, ModelFollower, replica_name
from boltit.serving.predictor import Prediction
from boltit.serving.prometheus import ServiceMetrics
from boltit.serving.ticket_writer import ShadowScorer, ticket_writer

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
        use_challenger = settings.shadow_enabled or settings.canary_percent > 0

        def follow(alias: str) -> AliasFollower:
            return AliasFollower(
                client=client,
                database=database,
                name=settings.model_name,
                alias=alias,
                retry_seconds=settings.load_retry_seconds,
                retry_max_seconds=settings.load_retry_max_seconds,
            )

        self.follower = ModelFollower(
            production=follow(PRODUCTION),
            challenger=follow(CHALLENGER) if use_challenger else None,
            interval_seconds=settings.poll_interval_seconds,
        )
        self.flags = FlagWatcher(
            database=database,
            defaults={AUTO_APPLY_FLAG: settings.auto_apply_enabled},
            interval_seconds=settings.flag_poll_interval_seconds,
        )
        self.shadow = (
            ShadowScorer(database, challenger=self.challenger) if settings.shadow_enabled else None
        )
        self.writer = ticket_writer(
            database, after_commit=self.shadow.submit if self.shadow else None
        )
        self.metrics = ServiceMetrics(database=database, models=self.loaded_models)
        for build in collectors:
            self.metrics.add_collector(build(self))

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
        flags.seed_flag(
            self.database,
            AUTO_APPLY_FLAG,
            value=self.settings.auto_apply_enabled,
            actor="environment",
        )
        self.flags.refresh()
        self.follower.check_all()
        self.writer.start()
        if self.shadow is not None:
            self.shadow.start()
        self.flags.start()
        self.follower.start()

    def stop(self) -> None:
        """Stop following, then flush the queues."""
        self.follower.stop()
        self.flags.stop()
        self.writer.stop()
        if self.shadow is not None:
            self.shadow.stop()

    async def classify(self, texts: Sequence[str]) -> list[Classification]:
        """Classify tickets, decide auto-apply, and return once every row is committed.

        Raises:
            NoModelError: no version has been loaded yet.
            PredictionFailedError: the model raised (nothing is stored for the request).
            StoreUnavailableError: the ticket store could not commit.
        """
        started = time.perf_counter()
        production = self.production  # read once: a swap mid-request changes nothing here
        if production is None:
            raise NoModelError("no model version is loaded yet")
        routes = self._route(texts, production)
        answers = await self._predict(texts, routes)
        latency_ms = (time.perf_counter() - started) * 1000 / len(texts)
        rows, results = self._decide(texts, routes, answers, latency_ms)
        await self.writer.write(rows)
        self._count(rows)
        return results

    async def _predict(
        self, texts: Sequence[str], routes: dict[str, tuple[LoadedModel, list[int]]]
    ) -> list[Prediction | None]:
        """Each routed model's answers, back in request order."""
        answers: list[Prediction | None] = [None] * len(texts)
        inline = self.settings.predict_inline and sum(map(len, texts)) <= INLINE_MAX_CHARS
        for model, indices in routes.values():
            batch = [texts[i] for i in indices]
            try:
                if inline:
                    predicted = model.predictor.predict(batch)
                else:
                    predicted = await run_in_threadpool(model.predictor.predict, batch)
                for index, answer in zip(indices, predicted, strict=True):
                    answers[index] = answer
            except Exception as exc:  # whatever a model raises is its failure, not ours
                raise PredictionFailedError(version=model.version, error=exc) from exc
        return answers

    def _decide(
        self,
        texts: Sequence[str],
        routes: dict[str, tuple[LoadedModel, list[int]]],
        answers: list[Prediction | None],
        latency_ms: float,
    ) -> tuple[list[dict[str, Any]], list[Classification]]:
        """The auto-apply decision per ticket, as the rows to store and the answers to return."""
        enabled = self.flags.auto_apply_enabled
        threshold = self.settings.auto_apply_threshold
        now = utcnow()
        rows: list[dict[str, Any]] = []
        results: list[Classification] = []
        served = {i: (model, served_by) for served_by, (model, idx) in routes.items() for i in idx}
        for index, maybe in enumerate(answers):
            assert maybe is not None  # every index was routed above
            answer = maybe
            model, served_by = served[index]
            applied, reason = auto_apply_decision(
                confidence=answer.confidence, threshold=threshold, enabled=enabled
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
        self, texts: Sequence[str], production: LoadedModel
    ) -> dict[str, tuple[LoadedModel, list[int]]]:
        challenger = self.challenger()
        percent = self.settings.canary_percent
        routes: dict[str, tuple[LoadedModel, list[int]]] = {}
        for index, text in enumerate(texts):
            if challenger is not None and in_canary(text, percent=percent):
                routes.setdefault("canary", (challenger, []))[1].append(index)
            else:
                routes.setdefault("production", (production, []))[1].append(index)
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

    def set_auto_apply(self, *, enabled: bool, actor: str, reason: str | None) -> dict[str, bool]:
        """Persist a flag change (audited) and apply it here at once; others follow by polling."""
        with self.database.session() as session:
            flags.set_flag(session, AUTO_APPLY_FLAG, enabled=enabled, actor=actor, reason=reason)
        return self.flags.refresh()


def admin_actor() -> str:
    """How admin API writes appear in the audit history."""
    return f"admin-api@{replica_name()}"
