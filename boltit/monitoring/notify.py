"""Page people about incidents, and record every delivery on the incident's timeline.

Deliveries run on background threads (one per channel, so each channel gets an incident's
notices in order), while the monitor goes on acting: a slow or dead receiver delays nothing
but the end of the pass, by at most its bounded retries. The outcomes are written to the
timeline when the notifier is closed, from the caller's thread.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from boltit.core.db import Database
from boltit.core.errors import NotFoundError
from boltit.core.schema import Incident, utcnow
from boltit.core.settings import Settings
from boltit.monitoring import incidents
from boltit.monitoring.notify_channels import (
    Channel,
    Delivery,
    Notice,
    NoticeKind,
    configured_channels,
    deliver,
)


@dataclass(frozen=True)
class IncidentRef:
    """What a notice says about its incident."""

    id: int
    model_name: str
    model_version: str | None
    severity: str
    title: str

    @classmethod
    def of(cls, incident: Incident) -> IncidentRef:
        return cls(
            incident.id,
            incident.model_name,
            incident.model_version,
            incident.severity,
            incident.title,
        )


@dataclass
class _Pending:
    notice: Notice
    channel: Channel
    future: Future[tuple[Delivery, datetime]]


class Notifier:
    """Sends :class:`Notice` objects to the configured channels without blocking the caller.

    Use as a context manager; leaving it waits for the deliveries (each bounded by its
    timeout and attempts) and records them.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        channels: list[Channel] | None = None,
    ) -> None:
        self._database = database
        self._timeout = settings.notify_timeout_seconds
        self._attempts = settings.notify_attempts
        self._channels = configured_channels(settings) if channels is None else channels
        self._workers = {
            channel.name: ThreadPoolExecutor(1, thread_name_prefix=f"notify-{channel.name}")
            for channel in self._channels
        }
        self._pending: list[_Pending] = []
        self._failing: set[str] = set()
        self.deliveries: list[tuple[Notice, Delivery]] = []

    @property
    def enabled(self) -> bool:
        return bool(self._channels)

    def tell(
        self,
        incident: IncidentRef,
        kind: NoticeKind,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Queue one notice for every channel; returns at once."""
        notice = Notice(
            incident_id=incident.id,
            kind=kind,
            model_name=incident.model_name,
            model_version=incident.model_version,
            severity=incident.severity,
            title=incident.title,
            message=message,
            details=details or {},
        )
        for channel in self._channels:
            future = self._workers[channel.name].submit(self._send, channel, notice)
            self._pending.append(_Pending(notice, channel, future))

    def _send(self, channel: Channel, notice: Notice) -> tuple[Delivery, datetime]:
        # A channel that already failed every attempt in this pass gets one try per later
        # notice, so a dead receiver costs the pass one full retry cycle, not one per notice.
        attempts = 1 if channel.name in self._failing else self._attempts
        delivery = deliver(channel, notice, timeout=self._timeout, attempts=attempts)
        if delivery.ok:
            self._failing.discard(channel.name)
        else:
            self._failing.add(channel.name)
        return delivery, utcnow()

    def _worst_case_seconds(self) -> float:
        # Connect, write and read each get the timeout; backoffs are capped at 2 s.
        return self._attempts * (3 * self._timeout + 2.0) + 1.0

    def close(self) -> list[tuple[Notice, Delivery]]:
        """Wait for every queued delivery, then record each on its incident's timeline."""
        done: list[tuple[Notice, Delivery, datetime]] = []
        for pending in self._pending:
            try:
                delivery, at = pending.future.result(timeout=self._worst_case_seconds())
            except Exception as exc:  # a worker that overran or broke is a failed delivery
                delivery = Delivery(pending.channel.name, False, 0, None, repr(exc)[:300])
                at = utcnow()
            done.append((pending.notice, delivery, at))
        self._pending.clear()
        for worker in self._workers.values():
            worker.shutdown(wait=False, cancel_futures=True)
        if done:
            _record(self._database, done)
        self.deliveries.extend((notice, delivery) for notice, delivery, _ in done)
        return [(notice, delivery) for notice, delivery, _ in done]

    def __enter__(self) -> Notifier:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _record(database: Database, done: list[tuple[Notice, Delivery, datetime]]) -> None:
    with database.session() as session:
        for notice, delivery, at in done:
            incident = session.get(Incident, notice.incident_id)
            if incident is None:  # pragma: no cover - deleted while paging
                continue
            outcome = (
                f"delivered after {delivery.attempts} attempt(s) (HTTP {delivery.status})"
                if delivery.ok
                else f"FAILED after {delivery.attempts} attempt(s): {delivery.error}"
            )
            incidents.add_event(
                session,
                incident,
                kind=incidents.NOTIFICATION,
                message=f"{delivery.channel} {notice.kind} notice {outcome}",
                details={
                    "channel": delivery.channel,
                    "notice": notice.kind,
                    "ok": delivery.ok,
                    "attempts": delivery.attempts,
                    "status": delivery.status,
                    "error": delivery.error,
                    "event_action": delivery.action,
                    "dedup_key": notice.dedup_key,
                },
                at=at,
            )


def resolve_incident(
    *,
    settings: Settings,
    database: Database,
    incident_id: int,
    actor: str,
    note: str | None = None,
) -> list[tuple[Notice, Delivery]]:
    """Mark an incident resolved, then tell the channels (PagerDuty resolves its alert)."""
    with database.session() as session:
        row = session.get(Incident, incident_id)
        if row is None:
            raise NotFoundError(f"incident {incident_id} does not exist")
        incidents.set_status(session, row, status=incidents.RESOLVED, actor=actor, note=note)
        ref = IncidentRef.of(row)
    with Notifier(settings=settings, database=database) as notifier:
        notifier.tell(
            ref, "resolve", f"resolved by {actor}" + (f": {note}" if note else ""), {"actor": actor}
        )
    return notifier.deliveries
