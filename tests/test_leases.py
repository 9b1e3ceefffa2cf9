"""Leader leases on SQLite and PostgreSQL: one holder, expiry, takeover, renewal, release."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from mlflow import MlflowClient

from boltit.core import audit
from boltit.core.db import Database
from boltit.core.leases import (
    LEASE_ACQUIRED,
    LEASE_RELEASED,
    Leadership,
    claim,
    lease_name,
    new_holder_id,
    read_lease,
    release,
)
from boltit.core.settings import Settings

NAME = lease_name("monitor", "ticket-classifier")


# Marked at collection, so `-m "not postgres"` deselects those and they count as integration.
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Database]:
    """The project database on each engine the leases must work on."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = settings.database_url
    database = Database(url)
    yield database
    database.dispose()


def _acquisitions(database: Database) -> list[tuple[str, str | None]]:
    with database.session() as session:
        events = audit.history(session, actions=[LEASE_ACQUIRED, LEASE_RELEASED])
        return [(e.action, e.actor) for e in events]


def test_holder_ids_name_the_host_and_process_and_differ() -> None:
    first, second = new_holder_id(), new_holder_id()
    assert first != second
    host, pid, _ = first.split(":")
    assert host and int(pid) > 0


def test_a_second_holder_waits_until_the_lease_expires_then_takes_over(store: Database) -> None:
    first = claim(store, name=NAME, holder="a", seconds=2.0, model_name="m")
    assert (first.held, first.acquired, first.lease.term) == (True, True, 1)
    refused = claim(store, name=NAME, holder="b", seconds=2.0)
    assert not refused.held and refused.lease.holder == "a"
    assert refused.lease.expires_at is not None and refused.lease.acquired_at is not None
    assert refused.lease.expires_at > refused.lease.acquired_at

    time.sleep(2.2)  # past the lease: "a" is presumed dead
    taken = claim(store, name=NAME, holder="b", seconds=30, model_name="m")
    assert (taken.held, taken.acquired, taken.took_over_from) == (True, True, "a")
    assert taken.lease.term == 2
    # "a" comes back: its lease is gone, it does not get it back by renewing.
    back = claim(store, name=NAME, holder="a", seconds=30)
    assert not back.held and back.lease.holder == "b"
    assert _acquisitions(store) == [(LEASE_ACQUIRED, "a"), (LEASE_ACQUIRED, "b")]
    with store.session() as session:
        takeover = audit.history(session, actions=[LEASE_ACQUIRED])[-1]
        assert takeover.model_name == "m"
        assert takeover.details == {
            "lease": NAME,
            "holder": "b",
            "term": 2,
            "previous_holder": "a",
        }
        assert takeover.reason and "from a" in takeover.reason


def test_renewal_keeps_the_lease_past_its_first_period(store: Database) -> None:
    claim(store, name=NAME, holder="a", seconds=1.5)
    for _ in range(5):  # 2.5 s in all, longer than the lease
        time.sleep(0.5)
        renewed = claim(store, name=NAME, holder="a", seconds=1.5)
        assert renewed.held and not renewed.acquired
        assert not claim(store, name=NAME, holder="b", seconds=1.5).held
    lease = read_lease(store, NAME)
    assert lease is not None and lease.term == 1
    assert lease.renewed_at is not None and lease.acquired_at is not None
    assert (lease.renewed_at - lease.acquired_at).total_seconds() >= 2.0


def test_release_hands_over_at_once_and_only_by_the_holder(store: Database) -> None:
    claim(store, name=NAME, holder="a", seconds=60)
    assert release(store, name=NAME, holder="b") is False  # not theirs to give
    assert not claim(store, name=NAME, holder="b", seconds=60).held
    assert release(store, name=NAME, holder="a") is True
    taken = claim(store, name=NAME, holder="b", seconds=60)
    assert taken.held and taken.took_over_from is None  # released, not expired
    assert _acquisitions(store) == [
        (LEASE_ACQUIRED, "a"),
        (LEASE_RELEASED, "a"),
        (LEASE_ACQUIRED, "b"),
    ]


def test_a_bad_period_is_refused(store: Database) -> None:
    from boltit.core.errors import BoltitError

    with pytest.raises(BoltitError, match="positive number of seconds"):
        claim(store, name=NAME, holder="a", seconds=0)
    assert read_lease(store, NAME) is None


def _race(database: Database, contenders: int, attempt: Callable[[str], bool]) -> list[str]:
    """Every contender claims at the same instant; returns the ones that won."""
    barrier = threading.Barrier(contenders)
    winners: list[str] = []
    errors: list[BaseException] = []

    def contend(holder: str) -> None:
        try:
            barrier.wait(timeout=30)
            if attempt(holder):
                winners.append(holder)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(f"h{i}",)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return winners


def test_racing_claimants_of_a_new_lease_and_of_an_expired_one_have_one_winner(
    store: Database,
) -> None:
    # Periods far longer than a race takes, however loaded the machine: one winner each.
    def attempt_on(name: str) -> Callable[[str], bool]:
        return lambda holder: claim(store, name=name, holder=holder, seconds=60).held

    first = _race(store, 6, attempt_on(NAME))
    assert len(first) == 1
    expired = lease_name("sync", "ticket-classifier")
    claim(store, name=expired, holder="dead", seconds=0.5)
    time.sleep(0.7)
    second = _race(store, 6, attempt_on(expired))
    assert len(second) == 1
    for name, winners, term in ((NAME, first, 1), (expired, second, 2)):
        lease = read_lease(store, name)
        assert lease is not None and (lease.holder, lease.term) == (winners[0], term)


def test_leadership_leads_renews_and_hands_over_when_stopped(store: Database) -> None:
    said: list[str] = []
    with Leadership(
        store, name=NAME, seconds=3.0, holder="leader", on_change=said.append
    ) as leader:
        assert leader.is_leader
        standby = Leadership(store, name=NAME, seconds=3.0, holder="standby", on_change=said.append)
        standby.start()
        assert not standby.is_leader
        time.sleep(3.5)  # past one period: the leader's thread renewed it
        assert leader.is_leader and not standby.claim_now()
    # Stopping released it; the standby's next claim leads.
    assert standby.claim_now() and standby.is_leader
    standby.stop()
    assert said[0] == f"leading: holds lease {NAME!r} as leader (nobody held it)"
    assert said[1].startswith(f"standing by: lease {NAME!r} is held by leader until ")
    assert said.count(said[1]) == 1  # said once, not at every claim
    assert f"released lease {NAME!r}" in said
    assert f"leading: holds lease {NAME!r} as standby (nobody held it)" in said


def test_a_leader_that_stops_renewing_is_replaced_within_a_period(store: Database) -> None:
    # A holder killed with -9 stops renewing without releasing: its claims just end.
    claim(store, name=NAME, holder="killed", seconds=1.0)
    standby = Leadership(store, name=NAME, seconds=1.0, holder="standby")
    standby.start()
    try:
        assert not standby.is_leader
        started = time.monotonic()
        while not standby.is_leader and time.monotonic() - started < 10:
            time.sleep(0.05)
        waited = time.monotonic() - started
        assert standby.is_leader
        assert waited < 1.0 + 1.0 / 3 + 2.0  # the period, one renewal interval, slack
    finally:
        standby.stop()
    with store.session() as session:
        takeover = audit.history(session, actions=[LEASE_ACQUIRED])[-1]
    assert takeover.details is not None and takeover.details["previous_holder"] == "killed"


def test_the_sync_watcher_syncs_only_while_it_leads(
    settings: Settings, mlflow_client: MlflowClient, database: Database
) -> None:
    from boltit.registry.sync_watcher import watch_forever

    name = lease_name("sync", settings.model_name)
    claim(database, name=name, holder="other copy", seconds=60)
    errors: list[str] = []
    with Leadership(database, name=name, seconds=60, holder="this copy") as leadership:

        def passes() -> int:
            return watch_forever(
                client=mlflow_client,
                database=database,
                name=settings.model_name,
                actor="watcher",
                settings=settings,
                interval=0.01,
                on_outcome=lambda outcome: None,
                on_error=errors.append,
                max_passes=2,
                leadership=leadership,
            )

        assert passes() == 0 and errors == []  # standing by: no pass, so nothing to say
        release(database, name=name, holder="other copy")
        assert leadership.claim_now()
        assert passes() == 2  # leading: each pass reports the model it waits for
        assert errors == [f"no registered model named {settings.model_name!r}"]


def test_monitor_watch_runs_passes_only_while_it_leads(
    settings: Settings, mlflow_client: MlflowClient, database: Database
) -> None:
    from boltit.monitoring.monitor import watch

    name = lease_name("monitor", settings.model_name)
    said: list[str] = []
    common = {"settings": settings, "database": database, "client": mlflow_client}
    claim(database, name=name, holder="other copy", seconds=60)
    assert watch(**common, interval=0.05, passes=3, on_leadership=said.append) == 0
    assert len(said) == 1  # once per leader, not once per turn
    assert said[0].startswith(f"standing by: lease {name!r} is held by other copy until ")
    release(database, name=name, holder="other copy")
    assert watch(**common, interval=0.05, passes=2, on_leadership=said.append) == 2
    assert said[1].startswith(f"leading: holds lease {name!r}")
    assert said[2] == f"released lease {name!r}"  # handed back when the loop ends
    lease = read_lease(database, name)
    assert lease is not None and lease.holder is None
