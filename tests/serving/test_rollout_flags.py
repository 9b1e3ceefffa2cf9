"""Shadow and the canary share as runtime flags: two replicas on one database follow a change
within a second, load the challenger on demand, never auto-apply a canary's answer, and answer
with Production when the canary raises."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient
from sqlalchemy import select

from boltit.core import audit, flags
from boltit.core.db import Database
from boltit.core.flags import FlagValues
from boltit.core.schema import ShadowPrediction, Ticket
from boltit.core.settings import Settings
from boltit.core.vocabulary import PREDICTION_ERROR
from boltit.serving.decision import auto_apply_decision
from boltit.serving.flag_watcher import FlagWatcher
from tests.model_code import register_model_code
from tests.serving.conftest import (
    ADMIN_TOKEN,
    MODEL,
    ServiceThread,
    add_client,
    bearer,
    register_version,
    wait_for,
)
from tests.serving.raising_model_code import RAISE_MARKER

ADMIN = bearer(ADMIN_TOKEN)
RAISING_CODE = Path(__file__).with_name("raising_model_code.py")
SUBJECTS = (
    "my laptop will not boot after the update",
    "the vpn connection drops every few minutes",
    "printer on this floor is jammed again",
    "please reset my password, I am locked out",
    "outlook keeps asking for my credentials",
)


def tickets(count: int, *, tag: str) -> list[str]:
    """``count`` distinct, ordinary ticket texts."""
    return [f"{tag} {i}: {SUBJECTS[i % len(SUBJECTS)]}" for i in range(count)]


def flags_of(http: httpx.Client) -> dict[str, Any]:
    answer = http.get("/admin/feature-flags")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def put_flags(http: httpx.Client, **change: Any) -> dict[str, Any]:
    answer = http.put("/admin/feature-flags", json=change, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def loaded_challenger(http: httpx.Client) -> str | None:
    challenger = http.get("/health").json()["challenger"]
    return None if challenger is None else str(challenger["version"])


def classify_all(http: httpx.Client, texts: list[str]) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    for start in range(0, len(texts), 200):
        batch = http.post("/classify/batch", json={"texts": texts[start : start + 200]})
        assert batch.status_code == 200, batch.text
        answers.extend(batch.json()["results"])
    return answers


def shadowed_ids(database: Database) -> set[str]:
    with database.session() as session:
        return set(session.scalars(select(ShadowPrediction.ticket_id)))


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def replica_settings(request: pytest.FixtureRequest, live_settings: Settings) -> Settings:
    """Settings of replicas that share one project database (SQLite, or PostgreSQL)."""
    if request.param == "sqlite":
        return live_settings
    postgres_url = request.getfixturevalue("postgres_url")
    return live_settings.model_copy(update={"database_url_override": postgres_url})


@pytest.fixture
def replicas(replica_settings: Settings) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Two replicas of the service (each its own app, flag watcher and follower)."""
    with ExitStack() as stack:
        clients = []
        for _ in range(2):
            running = stack.enter_context(ServiceThread(replica_settings))
            clients.append(stack.enter_context(httpx.Client(base_url=running.url, timeout=60)))
        yield clients[0], clients[1]


def test_two_replicas_follow_shadow_and_canary_changes_at_runtime(
    replica_settings: Settings,
    replicas: tuple[httpx.Client, httpx.Client],
    production_v1: str,
    mlflow_client: MlflowClient,
    model_dir: Path,
    tmp_path: Path,
) -> None:
    a, b = replicas
    challenger = register_version(mlflow_client, model_dir, tmp_path)
    mlflow_client.set_registered_model_alias(MODEL, "challenger", challenger)
    database = Database(replica_settings.database_url)
    try:
        off = {"auto_apply_enabled": True, "shadow_enabled": False, "canary_percent": 0.0}
        assert flags_of(a) == flags_of(b) == off
        assert loaded_challenger(a) is None and loaded_challenger(b) is None  # no part: not held

        # A canary share set on one replica: the other follows within a second.
        assert put_flags(a, canary_percent=30, reason="canary step 1") == {
            **off,
            "canary_percent": 30.0,
        }
        assert wait_for(lambda: flags_of(b)["canary_percent"] == 30.0, timeout=1.0) <= 1.0
        for replica in (a, b):
            wait_for(lambda r=replica: loaded_challenger(r) == challenger, timeout=15)

        texts = tickets(400, tag="canary")
        first = classify_all(b, texts)
        again = classify_all(a, texts)
        # Sticky by text, and the same on every replica.
        assert [x["model_version"] for x in first] == [x["model_version"] for x in again]
        canary = [x for x in first if x["model_version"] == challenger]
        production = [x for x in first if x["model_version"] == production_v1]
        assert len(canary) + len(production) == len(texts)
        assert abs(len(canary) / len(texts) - 0.30) < 0.07
        # A version on trial never acts on a ticket; Production's confident answers do.
        assert not any(x["auto_applied"] for x in canary)
        assert {x["reason"] for x in canary} == {
            f"triage: canary v{challenger} is on trial; auto-apply waits for its promotion"
        }
        assert any(x["auto_applied"] for x in production)

        # Shadow on (set on b): a follows; Production's tickets are scored by the challenger.
        put_flags(b, shadow_enabled=True, reason="collect evidence")
        assert wait_for(lambda: flags_of(a)["shadow_enabled"] is True, timeout=1.0) <= 1.0
        scored = [
            x
            for x in classify_all(a, tickets(40, tag="shadow-1"))
            if x["model_version"] == production_v1
        ]
        wanted = {x["ticket_id"] for x in scored}
        # The scorer works in order: once these are in, anything queued before them is too,
        # so equality also shows that nothing was shadowed while the flag was off.
        wait_for(lambda: shadowed_ids(database) == wanted, timeout=15)

        # Shadow off: nothing more is queued (the next "on" batch proves the queue skipped them).
        put_flags(a, shadow_enabled=False)
        assert wait_for(lambda: flags_of(b)["shadow_enabled"] is False, timeout=1.0) <= 1.0
        classify_all(a, tickets(40, tag="shadow-off"))
        put_flags(a, shadow_enabled=True)
        later = [
            x
            for x in classify_all(a, tickets(10, tag="shadow-2"))
            if x["model_version"] == production_v1
        ]
        wanted |= {x["ticket_id"] for x in later}
        wait_for(lambda: shadowed_ids(database) == wanted, timeout=15)

        # Both off in one request: every replica lets the challenger go.
        assert put_flags(b, canary_percent=0, shadow_enabled=False, reason="done") == off
        for replica in (a, b):
            wait_for(lambda r=replica: loaded_challenger(r) is None, timeout=2)
        assert {x["model_version"] for x in classify_all(a, texts[:50])} == {production_v1}

        with database.session() as session:
            changes = audit.history(session, actions=["flag_change"])
            served_by = {t.id: t.served_by for t in session.scalars(select(Ticket))}
    finally:
        database.dispose()
    assert {served_by[x["ticket_id"]] for x in canary} == {"canary"}
    assert {served_by[x["ticket_id"]] for x in production} == {"production"}
    assert [(e.details or {}).get("flag") for e in changes] == [
        "canary_percent",
        "shadow_enabled",
        "shadow_enabled",
        "shadow_enabled",
        "shadow_enabled",
        "canary_percent",
    ]
    assert [((e.details or {})["from"], (e.details or {})["to"]) for e in changes] == [
        (0.0, 30.0),
        (False, True),
        (True, False),
        (False, True),
        (True, False),
        (30.0, 0.0),
    ]
    assert changes[0].reason == "canary step 1" and changes[-1].reason == "done"
    assert all(" via admin-api@serving@" in e.actor for e in changes)  # who, via which replica


def test_a_canary_that_raises_is_answered_by_production_and_counted(
    live_settings: Settings,
    production_v1: str,
    mlflow_client: MlflowClient,
    model_dir: Path,
    database: Database,
) -> None:
    broken = register_model_code(RAISING_CODE, model_dir=model_dir, name=MODEL)
    mlflow_client.set_registered_model_alias(MODEL, "challenger", broken)
    with (
        ServiceThread(live_settings) as running,
        httpx.Client(base_url=running.url, timeout=30) as http,
    ):
        put_flags(http, canary_percent=100, reason="all on the canary")
        wait_for(lambda: loaded_challenger(http) == broken, timeout=15)
        fine = http.post("/classify", json={"text": "my laptop will not boot"})
        failing = http.post("/classify", json={"text": f"vpn is down {RAISE_MARKER}"})
        batch = http.post(
            "/classify/batch", json={"texts": ["printer jammed", f"{RAISE_MARKER} mouse"]}
        )
        metrics = http.get("/metrics").text

    assert fine.status_code == failing.status_code == batch.status_code == 200
    assert fine.json()["model_version"] == broken
    answered = [failing.json(), *batch.json()["results"]]
    # The user never sees the canary's failure: the whole routed batch goes to Production.
    assert [x["model_version"] for x in answered] == [production_v1] * 3
    with database.session() as session:
        stored = {t.id: t for t in session.scalars(select(Ticket))}
        errors = audit.history(session, actions=[PREDICTION_ERROR])
    assert stored[fine.json()["ticket_id"]].served_by == "canary"
    assert stored[fine.json()["ticket_id"]].auto_applied is False
    assert {stored[x["ticket_id"]].served_by for x in answered} == {"canary-fallback"}
    assert {stored[x["ticket_id"]].model_version for x in answered} == {production_v1}
    assert errors == []  # every request was answered
    assert f'model_version="{production_v1}",served_by="canary-fallback"' in metrics


def test_the_admin_api_needs_an_admin_and_refuses_bad_changes(
    live_settings: Settings, production_v1: str, database: Database
) -> None:
    agent = bearer(add_client(live_settings, "agent", "classify", "read"))
    with (
        ServiceThread(live_settings) as running,
        httpx.Client(base_url=running.url, timeout=30) as http,
    ):
        change = {"canary_percent": 10}
        assert http.put("/admin/feature-flags", json=change).status_code == 401
        wrong = bearer("nope")
        assert http.put("/admin/feature-flags", json=change, headers=wrong).status_code == 403
        assert http.put("/admin/feature-flags", json=change, headers=agent).status_code == 403
        refused = {
            "nothing": {"reason": "no change"},
            "null is not a value": {"shadow_enabled": None},
            "over 100": {"canary_percent": 100.5},
            "negative": {"canary_percent": -1},
            "a string": {"canary_percent": "10"},
            "not a switch": {"shadow_enabled": "yes"},
            "unknown flag": {"canary": 10},
        }
        answers = {
            what: http.put("/admin/feature-flags", json=body, headers=ADMIN)
            for what, body in refused.items()
        }
        still = flags_of(http)
        # The old request (auto-apply alone) keeps working.
        old = http.put("/admin/feature-flags", json={"auto_apply_enabled": False}, headers=ADMIN)
    for what, answer in answers.items():
        assert answer.status_code == 422, (what, answer.text)
    assert "at least one of auto_apply_enabled, shadow_enabled, canary_percent" in (
        answers["nothing"].text
    )
    assert "canary_percent" in answers["over 100"].text
    assert still == {"auto_apply_enabled": True, "shadow_enabled": False, "canary_percent": 0.0}
    assert old.status_code == 200
    assert old.json() == {**still, "auto_apply_enabled": False}
    with database.session() as session:
        changes = audit.history(session, actions=["flag_change"])
    assert [(e.details or {}).get("flag") for e in changes] == ["auto_apply_enabled"]


def test_a_canary_on_trial_never_auto_applies_however_confident() -> None:
    applied, reason = auto_apply_decision(
        confidence=0.999, threshold=0.75, enabled=True, on_trial="7"
    )
    assert (applied, reason) == (
        False,
        "triage: canary v7 is on trial; auto-apply waits for its promotion",
    )
    assert auto_apply_decision(confidence=0.999, threshold=0.75, enabled=True)[0] is True


def test_the_watcher_reports_each_change_once_as_one_snapshot(database: Database) -> None:
    seen: list[FlagValues] = []
    defaults = FlagValues(auto_apply_enabled=True, shadow_enabled=False, canary_percent=0.0)
    watcher = FlagWatcher(
        database=database, defaults=defaults, interval_seconds=0.25, on_change=seen.append
    )
    watcher.refresh()
    watcher.refresh()  # nothing changed: no call
    with database.session() as session:
        flags.set_canary_percent(session, 5, actor="alice", reason=None)
        flags.set_shadow(session, True, actor="alice", reason=None)
    watcher.refresh()
    watcher.refresh()

    assert seen == [
        defaults,
        FlagValues(auto_apply_enabled=True, shadow_enabled=True, canary_percent=5.0),
    ]
    assert watcher.values == {
        "auto_apply_enabled": True,
        "shadow_enabled": True,
        "canary_percent": 5.0,
    }
    assert seen[-1].challenger_needed and not seen[0].challenger_needed
