"""Leader leases through the project database: one copy of a loop acts, the others stand by.

The sync watcher and ``monitor --watch`` may run twice (two pods, a restarted node): only the
holder of the loop's lease acts, the others keep claiming and take over within one lease
period of the holder's death. Unlike ``boltit.core.locks``, which holds a row lock for the
length of one move, a lease is held between transactions, so a holder killed with -9 loses it
by expiry and no connection has to die first.

A claim is a compare-and-swap on the row's ``term``: it reads the row, then writes only where
the term is still the one it read, so of two claimants racing for an expired lease the second
finds zero rows updated. PostgreSQL re-checks the condition after waiting for the first
writer; SQLite serialises writers. Time is the database's (``clock_timestamp()``) on
PostgreSQL, where holders run on several hosts; a SQLite file has one host, and its clock.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.errors import BoltitError
from boltit.core.schema import Lease, utcnow

log = logging.getLogger(__name__)

LEASE_ACQUIRED = "lease_acquired"
LEASE_RELEASED = "lease_released"


def lease_name(role: str, model_name: str) -> str:
    """The lease's row key: the loop's role, then the model it acts on."""
    return f"{role}:{model_name}"


def new_holder_id() -> str:
    """``host:pid:random``: unique per process start, readable in the table and the logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class LeaseState:
    """A lease row as it stands."""

    name: str
    holder: str | None
    term: int
    acquired_at: datetime | None
    renewed_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True)
class Claim:
    """What one claim found and did."""

    held: bool  # the claimant holds the lease now
    lease: LeaseState  # the row after the claim
    acquired: bool = False  # the lease changed hands to the claimant in this claim
    took_over_from: str | None = None  # the holder whose lease had expired, if any


def claim(
    database: Database,
    *,
    name: str,
    holder: str,
    seconds: float,
    model_name: str | None = None,
) -> Claim:
    """Take the lease if it is free or expired, renew it if ``holder`` has it.

    A change of hands is written to the audit history in the same transaction.
    """
    if seconds <= 0:
        raise BoltitError(f"a lease must last a positive number of seconds, not {seconds:g}")
    with database.write_session() as session:
        now = database_now(session)
        until = now + timedelta(seconds=seconds)
        row = _read(session, name)
        if row is None:
            insert = pg_insert if database.engine.dialect.name == "postgresql" else sqlite_insert
            statement = (
                insert(Lease)
                .values(
                    name=name,
                    holder=holder,
                    term=1,
                    acquired_at=now,
                    renewed_at=now,
                    expires_at=until,
                )
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(Lease.name)
            )
            if session.execute(statement).first() is not None:
                _record_acquired(session, name, holder, 1, None, model_name)
                return Claim(held=True, lease=_must_read(session, name), acquired=True)
            row = _must_read(session, name)  # a claimant inserted it first: judge their row
        if row.holder == holder:
            renewed = _compare_and_set(
                session, row, renewed_at=now, expires_at=until, holder_must_be=holder
            )
            return Claim(held=renewed, lease=_must_read(session, name))
        if row.holder is not None and row.expires_at is not None and row.expires_at > now:
            return Claim(held=False, lease=row)
        took = _compare_and_set(
            session,
            row,
            holder=holder,
            term=row.term + 1,
            acquired_at=now,
            renewed_at=now,
            expires_at=until,
        )
        if not took:
            return Claim(held=False, lease=_must_read(session, name))
        _record_acquired(session, name, holder, row.term + 1, row, model_name)
        return Claim(
            held=True, lease=_must_read(session, name), acquired=True, took_over_from=row.holder
        )


def release(database: Database, *, name: str, holder: str, model_name: str | None = None) -> bool:
    """Give the lease up if ``holder`` has it, so a standby takes over at its next claim."""
    with database.write_session() as session:
        now = database_now(session)
        done = _rows(
            session.execute(
                update(Lease)
                .where(Lease.name == name, Lease.holder == holder)
                .values(holder=None, expires_at=now)
                .execution_options(synchronize_session=False)
            )
        )
        if done:
            audit.record(
                session,
                action=LEASE_RELEASED,
                actor=holder,
                model_name=model_name,
                reason=f"gave up lease {name!r}",
                details={"lease": name, "holder": holder},
            )
        return done == 1


def read_lease(database: Database, name: str) -> LeaseState | None:
    """The lease's row, or None before anyone claimed it."""
    with database.session() as session:
        return _read(session, name)


def database_now(session: Session) -> datetime:
    """Now, by the database's clock on PostgreSQL (shared by every host), else this host's."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.scalar(text("SELECT clock_timestamp()"))
        if isinstance(value, datetime):
            return value
    return utcnow()


def _read(session: Session, name: str) -> LeaseState | None:
    row = session.execute(select(Lease).where(Lease.name == name)).scalar_one_or_none()
    if row is None:
        return None
    state = LeaseState(
        name=row.name,
        holder=row.holder,
        term=row.term,
        acquired_at=row.acquired_at,
        renewed_at=row.renewed_at,
        expires_at=row.expires_at,
    )
    session.expunge(row)  # the next read must see the row as the database has it now
    return state


def _must_read(session: Session, name: str) -> LeaseState:
    state = _read(session, name)
    if state is None:  # rows are never deleted; only a hand-edited table gets here
        raise BoltitError(f"lease {name!r} vanished while it was claimed")
    return state


def _compare_and_set(
    session: Session, seen: LeaseState, *, holder_must_be: str | None = None, **values: object
) -> bool:
    condition = [Lease.name == seen.name, Lease.term == seen.term]
    if holder_must_be is not None:
        condition.append(Lease.holder == holder_must_be)
    statement = (
        update(Lease)
        .where(*condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _rows(session.execute(statement)) == 1


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _record_acquired(
    session: Session,
    name: str,
    holder: str,
    term: int,
    previous: LeaseState | None,
    model_name: str | None,
) -> None:
    if previous is None or previous.holder is None:
        reason = f"took lease {name!r}, which nobody held"
    else:
        expired = previous.expires_at.isoformat() if previous.expires_at else "-"
        reason = f"took over lease {name!r} from {previous.holder}, expired at {expired}"
    audit.record(
        session,
        action=LEASE_ACQUIRED,
        actor=holder,
        model_name=model_name,
        reason=reason,
        details={
            "lease": name,
            "holder": holder,
            "term": term,
            "previous_holder": None if previous is None else previous.holder,
        },
    )


class Leadership:
    """Keeps claiming one lease from a background thread; a loop acts only while it leads.

    The thread renews every third of the lease, so a leader misses two renewals before a
    standby may take over. ``is_leader`` turns false on this side as soon as the lease could
    have expired, counted from when the last successful claim was sent, so a leader cut off
    from the database stops acting no later than a standby starts.
    A leader whose loop hangs keeps renewing; the lease guards against dead processes, not
    stuck ones.
    """

    def __init__(
        self,
        database: Database,
        *,
        name: str,
        seconds: float,
        holder: str | None = None,
        model_name: str | None = None,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.database = database
        self.name = name
        self.seconds = seconds
        self.holder = holder or new_holder_id()
        self.model_name = model_name
        self._on_change = on_change
        self._held = False
        self._valid_until = 0.0
        self._last_said: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        """True while this process holds the lease and it cannot have expired yet."""
        return self._held and time.monotonic() < self._valid_until

    def claim_now(self) -> bool:
        """One claim or renewal; reports a change of leader. Returns ``is_leader``."""
        sent = time.monotonic()
        try:
            result = claim(
                self.database,
                name=self.name,
                holder=self.holder,
                seconds=self.seconds,
                model_name=self.model_name,
            )
        except SQLAlchemyError as exc:
            self._say(f"cannot claim lease {self.name!r}: {type(exc).__name__}: {exc}".strip())
            return self.is_leader
        was_leader = self._held
        self._held = result.held
        if result.held:
            self._valid_until = sent + self.seconds
        if result.acquired:
            source = (
                f"took over from {result.took_over_from}, whose lease expired"
                if result.took_over_from
                else "nobody held it"
            )
            self._say(f"leading: holds lease {self.name!r} as {self.holder} ({source})")
        elif was_leader and not result.held:
            self._say(f"lost lease {self.name!r} to {result.lease.holder}: standing by")
        elif not result.held:
            until = result.lease.expires_at
            self._say(
                f"standing by: lease {self.name!r} is held by {result.lease.holder}"
                + (f" until {until:%H:%M:%S} UTC" if until else "")
                + f" (this is {self.holder})",
                once_per=result.lease.holder,
            )
        return self.is_leader

    def start(self) -> Leadership:
        """Claim once now, then keep claiming in a daemon thread until :meth:`stop`."""
        self.claim_now()
        self._thread = threading.Thread(target=self._keep_claiming, name=f"lease {self.name}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop claiming and hand the lease back, so a standby leads at its next claim."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.seconds)
        if self._held:
            self._held = False
            try:
                release(
                    self.database, name=self.name, holder=self.holder, model_name=self.model_name
                )
                self._say(f"released lease {self.name!r}")
            except SQLAlchemyError as exc:  # it expires by itself
                log.warning("could not release lease %r: %s", self.name, exc)

    def __enter__(self) -> Leadership:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _keep_claiming(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            self.claim_now()

    def _say(self, message: str, *, once_per: str | None = None) -> None:
        # A standby says who leads once per leader, not at every renewal.
        key = message if once_per is None else f"standby:{once_per}"
        if key == self._last_said:
            return
        self._last_said = key
        log.info("%s", message)
        if self._on_change is not None:
            self._on_change(message)
