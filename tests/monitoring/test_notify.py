"""Paging on real incidents: a local HTTP receiver checks the Slack and PagerDuty payloads,
retries, and that a failing or hanging receiver never holds up the monitor's own actions."""

from __future__ import annotations

import threading
import time

from mlflow import MlflowClient
from pydantic import SecretStr

from boltit.core import audit, flags
from boltit.core.db import Database
from boltit.core.ports import free_port
from boltit.core.settings import Settings
from boltit.core.vocabulary import AUTO_APPLY_FLAG, PRODUCTION
from boltit.monitoring import incidents
from boltit.monitoring.monitor import run_once
from boltit.monitoring.notify import resolve_incident
from boltit.monitoring.notify_channels import (
    Notice,
    PagerDutyChannel,
    SlackChannel,
    deliver,
)
from tests.monitoring.conftest import TrainedState, force_promote
from tests.monitoring.receiver import Receiver, receiver
from tests.monitoring.tickets import add_tickets

Trained = tuple[Settings, MlflowClient, Database, TrainedState]
ROUTING_KEY = "R0UT1NGKEY0123456789012345678901"


def _paging(settings: Settings, url: str, **extra: object) -> Settings:
    return settings.model_copy(
        update={
            "slack_webhook_url": SecretStr(f"{url}/slack"),
            "pagerduty_routing_key": SecretStr(ROUTING_KEY),
            "pagerduty_url": f"{url}/pagerduty",
            **extra,
        }
    )


def _regression(settings: Settings, client: MlflowClient, database: Database) -> None:
    """v1 serves well, then a v2 that never passed its gates is forced live and does badly."""
    force_promote(settings, client, database, "1")
    add_tickets(database, version="1", n=300, accuracy=0.95, seed=1)
    force_promote(settings, client, database, "2")
    add_tickets(database, version="2", n=120, accuracy=0.3, seed=2)


def _notifications(database: Database) -> list[incidents.EventView]:
    view = incidents.get_incident(database, "latest")
    return [e for e in view.events if e.kind == incidents.NOTIFICATION]


def _rolled_back(settings: Settings, client: MlflowClient, database: Database) -> None:
    aliases = client.get_registered_model(settings.model_name).aliases
    assert str(aliases[PRODUCTION]) == "1"
    with database.session() as session:
        assert not flags.read_flag(session, AUTO_APPLY_FLAG, default=True)
        assert [e.action for e in audit.history(session)].count("rollback") == 1


def _notice(kind: str = "open") -> Notice:
    return Notice(
        incident_id=7,
        kind=kind,  # type: ignore[arg-type]
        model_name="ticket-classifier",
        model_version="2",
        severity="SEV-2",
        title="Model regression: ticket-classifier v2: accuracy_floor",
        message="accuracy_floor 0.31 < 0.90",
    )


def test_pagerduty_events_follow_the_incident_with_one_dedup_key() -> None:
    channel = PagerDutyChannel(url="http://unused", routing_key=ROUTING_KEY)
    bodies = {kind: channel.body(_notice(kind)) for kind in ("open", "mitigated", "resolve")}

    assert [b["event_action"] for b in bodies.values()] == ["trigger", "acknowledge", "resolve"]
    assert {b["dedup_key"] for b in bodies.values()} == {"boltit/ticket-classifier/incident-7"}
    assert all(b["routing_key"] == ROUTING_KEY for b in bodies.values())
    payload = bodies["open"]["payload"]
    assert payload["severity"] == "error"
    assert payload["source"] == "boltit-monitor/ticket-classifier"
    assert payload["summary"] == "ticket-classifier v2: accuracy_floor 0.31 < 0.90"
    assert "payload" not in bodies["resolve"]  # acknowledge and resolve need only the key
    slack = SlackChannel(url="http://unused").body(_notice())
    assert "Incident #7 opened" in slack["text"] and "ticket-classifier v2" in slack["text"]


def test_a_client_error_is_not_retried_but_a_server_error_is() -> None:
    with receiver() as got:
        got.script = {"/bad": [400], "/flaky": [503, 429, 200]}
        bad = deliver(SlackChannel(url=f"{got.url}/bad"), _notice(), timeout=5, attempts=3)
        flaky = deliver(SlackChannel(url=f"{got.url}/flaky"), _notice(), timeout=5, attempts=3)

    assert not bad.ok and bad.attempts == 1 and bad.status == 400
    assert flaky.ok and flaky.attempts == 3 and flaky.status == 200
    assert len(got.bodies("/flaky")) == 3


def test_a_hanging_receiver_times_out_and_is_recorded_failed() -> None:
    hang = threading.Event()
    with receiver() as got:
        got.before_answer = lambda path: hang.wait(10)  # answers only after the test ends
        try:
            hung = deliver(
                PagerDutyChannel(url=f"{got.url}/pd", routing_key=ROUTING_KEY),
                _notice(),
                timeout=0.3,
                attempts=2,
            )
        finally:
            hang.set()

    assert not hung.ok and hung.attempts == 2 and hung.status is None
    assert hung.error is not None and "ReadTimeout" in hung.error
    assert hung.action == "trigger"
    assert len(got.bodies("/pd")) == 2


def test_an_incident_pages_on_open_and_resolves_with_the_same_key(trained: Trained) -> None:
    settings, client, database, _ = trained
    _regression(settings, client, database)
    with receiver() as got:
        paging = _paging(settings, got.url)
        result = run_once(settings=paging, database=database, client=client)
        assert result.response.rolled_back_to == "1" and result.response.verified
        incident_id = result.response.incident_id
        assert incident_id is not None
        resolve_incident(
            settings=paging, database=database, incident_id=incident_id, actor="alice", note="fixed"
        )
        pagerduty, slack = got.bodies("/pagerduty"), got.bodies("/slack")

    key = f"boltit/{settings.model_name}/incident-{incident_id}"
    actions = [body["event_action"] for body in pagerduty]
    # Open, auto-apply off and the rollback trigger (one alert), verified acknowledges, resolve.
    assert actions[0] == "trigger" and actions[-1] == "resolve"
    assert "acknowledge" in actions
    assert {body["dedup_key"] for body in pagerduty} == {key}
    opened = pagerduty[0]["payload"]
    assert opened["summary"].startswith(f"{settings.model_name} v2: ")
    assert "accuracy_floor" in opened["summary"]
    assert opened["custom_details"]["incident"] == incident_id
    first = slack[0]["text"]
    assert f"Incident #{incident_id} opened" in first
    assert f"{settings.model_name} v2" in first and "accuracy_floor" in first
    assert any("rolled back from v2 to v1" in body["text"] for body in slack)
    assert f"Incident #{incident_id} resolved" in slack[-1]["text"]

    recorded = _notifications(database)
    assert len(recorded) == len(pagerduty) + len(slack)
    assert all(e.details["ok"] and e.details["attempts"] == 1 for e in recorded)
    assert {e.details["channel"] for e in recorded} == {"slack", "pagerduty"}
    assert {e.details["dedup_key"] for e in recorded} == {key}


def test_a_receiver_that_fails_once_is_retried_and_the_retry_recorded(trained: Trained) -> None:
    settings, client, database, _ = trained
    _regression(settings, client, database)
    with receiver() as got:
        got.script = {"/pagerduty": [500, 202]}
        result = run_once(settings=_paging(settings, got.url), database=database, client=client)

    assert result.response.rolled_back_to == "1"
    first = next(e for e in _notifications(database) if e.details["channel"] == "pagerduty")
    assert first.details["notice"] == "open"
    assert first.details["ok"] and first.details["attempts"] == 2
    assert first.details["status"] == 202
    assert (
        len(got.bodies("/pagerduty"))
        == len([e for e in _notifications(database) if e.details["channel"] == "pagerduty"]) + 1
    )


def test_a_receiver_that_is_down_never_stops_the_rollback(trained: Trained) -> None:
    settings, client, database, _ = trained
    _regression(settings, client, database)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    paging = _paging(settings, down, notify_attempts=2, notify_timeout_seconds=1.0)

    result = run_once(settings=paging, database=database, client=client)

    assert result.response.rolled_back_to == "1" and result.response.verified
    _rolled_back(settings, client, database)
    recorded = _notifications(database)
    assert recorded and all(not e.details["ok"] for e in recorded)
    assert all(e.details["status"] is None for e in recorded)
    # Each channel's first notice used every attempt; later ones one each (it is known down).
    for channel in ("slack", "pagerduty"):
        attempts = [e.details["attempts"] for e in recorded if e.details["channel"] == channel]
        assert attempts[0] == 2 and set(attempts[1:]) == {1}, attempts
    assert all("ConnectError" in e.details["error"] for e in recorded)
    view = incidents.get_incident(database, "latest")
    assert view.status == incidents.MITIGATED


def test_a_hanging_receiver_does_not_hold_up_the_actions(trained: Trained) -> None:
    """The receiver answers the first page only once the rollback is in the history: if paging
    blocked the monitor, the rollback could not happen first and the page would time out."""
    settings, client, database, _ = trained
    _regression(settings, client, database)

    def hold_until_rolled_back(got: Receiver) -> None:
        def wait(path: str) -> None:
            for _ in range(400):
                with database.session() as session:
                    if any(e.action == "rollback" for e in audit.history(session)):
                        return
                time.sleep(0.05)

        got.before_answer = wait

    with receiver() as got:
        hold_until_rolled_back(got)
        paging = _paging(settings, got.url, notify_attempts=1, notify_timeout_seconds=25.0)
        result = run_once(settings=paging, database=database, client=client)

    assert result.response.rolled_back_to == "1"
    _rolled_back(settings, client, database)
    recorded = _notifications(database)
    opened = [e for e in recorded if e.details["notice"] == "open"]
    assert len(opened) == 2 and all(e.details["ok"] for e in opened)
    with database.session() as session:
        rollback_at = next(e.at for e in audit.history(session) if e.action == "rollback")
    # Delivered (answered) after the rollback was recorded: the actions did not wait for it.
    assert all(e.at >= rollback_at for e in opened)
