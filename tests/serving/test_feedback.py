"""Feedback that cannot poison retraining: known categories, new ones declared, corrections kept."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from mlflow import MlflowClient

from boltit.core.settings import Settings
from tests.serving.conftest import ADMIN_TOKEN, MODEL, ServiceThread, version_source

# BOLTIT_ADMIN_TOKEN is the client "admin" with every scope; feedback records it as sender.
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def http(live_settings: Settings, production_v1: str) -> Iterator[httpx.Client]:
    with (
        ServiceThread(live_settings) as running,
        httpx.Client(base_url=running.url, timeout=30, headers=AUTH) as client,
    ):
        yield client


def _served_categories(client: MlflowClient, version: str) -> list[str]:
    import json

    folder = version_source(client, version) / "artifacts" / "classifier"
    return sorted(json.loads((folder / "classifier.json").read_text())["categories"])


def _classify(http: httpx.Client, text: str) -> str:
    answer = http.post("/classify", json={"text": text})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["ticket_id"])


def _exported(http: httpx.Client, ticket_id: str) -> dict[str, object]:
    rows = [t for t in http.get("/tickets").json() if t["id"] == ticket_id]
    assert len(rows) == 1
    return rows[0]


def test_unknown_category_is_refused_unless_declared_new(
    http: httpx.Client, mlflow_client: MlflowClient, production_v1: str
) -> None:
    known = _served_categories(mlflow_client, production_v1)
    assert "Printers" not in known and len(known) == 8
    first = _classify(http, "the printer on floor 3 jams on every page")
    second = _classify(http, "printer queue stuck again")

    refused = http.post(f"/tickets/{first}/feedback", json={"category": "Printers"})
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "'Printers' is not known" in detail and f"known: {', '.join(known)}" in detail
    assert '"new_category": true' in detail
    assert _exported(http, first)["feedback_category"] is None  # nothing stored
    assert (
        http.post(f"/tickets/{first}/feedback", json={"category": "hardware"}).json()["detail"]
    ).endswith("did you mean 'Hardware'?; send \"new_category\": true to add a new category")

    accepted = http.post(
        f"/tickets/{first}/feedback", json={"category": "Printers", "new_category": True}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["feedback_category"] == "Printers"
    assert accepted.json()["feedback_new_category"] is True
    # Accepted once, it is known: the next label needs no declaration and is not "new".
    again = http.post(f"/tickets/{second}/feedback", json={"category": "Printers"})
    assert again.status_code == 200 and again.json()["feedback_new_category"] is False
    # Declaring a category new that the model knows records that it was not new.
    known_one = http.post(
        f"/tickets/{second}/feedback", json={"category": known[0], "new_category": True}
    )
    assert known_one.json()["feedback_new_category"] is False
    exported = _exported(http, first)
    assert exported["feedback_new_category"] is True
    assert exported["feedback_history"] == [
        {
            "category": "Printers",
            "priority": None,
            "new_category": True,
            "client": "admin",
            "kind": "feedback",
            "at": exported["feedback_at"],
        }
    ]
    unknown_ticket = http.post("/tickets/0123abcd/feedback", json={"category": "Printers"})
    assert unknown_ticket.status_code == 404
    assert (
        http.post(
            f"/tickets/{first}/feedback", json={"category": "Printers", "new_category": "yes"}
        ).status_code
        == 422
    )  # strict: a boolean, not a string


def test_a_label_is_corrected_by_put_or_superseded_by_post(
    http: httpx.Client, mlflow_client: MlflowClient, production_v1: str
) -> None:
    known = _served_categories(mlflow_client, production_v1)
    ticket = _classify(http, "cannot log in to the vpn since this morning")
    first, second, third = known[0], known[1], known[2]

    assert http.put("/tickets/0123abcd/feedback", json={"category": first}).status_code == 404
    posted = http.post(f"/tickets/{ticket}/feedback", json={"category": first, "priority": "P2"})
    assert posted.status_code == 200
    corrected = http.put(f"/tickets/{ticket}/feedback", json={"category": second})
    assert corrected.status_code == 200, corrected.text
    assert (corrected.json()["feedback_category"], corrected.json()["feedback_priority"]) == (
        second,
        None,
    )
    # A retried PUT changes nothing; an unknown category is refused on PUT as on POST.
    assert http.put(f"/tickets/{ticket}/feedback", json={"category": second}).status_code == 200
    assert http.put(f"/tickets/{ticket}/feedback", json={"category": "Printers"}).status_code == 422
    superseded = http.post(f"/tickets/{ticket}/feedback", json={"category": third})
    assert superseded.status_code == 200

    exported = _exported(http, ticket)
    assert exported["feedback_category"] == third
    history = exported["feedback_history"]
    assert isinstance(history, list)
    assert [(h["category"], h["priority"], h["kind"]) for h in history] == [
        (first, "P2", "feedback"),
        (second, None, "correction"),
        (third, None, "feedback"),
    ]
    assert history[-1]["at"] == exported["feedback_at"]
    assert [h["at"] for h in history] == sorted(h["at"] for h in history)


def test_feedback_waits_for_a_model_to_check_against(
    live_settings: Settings, mlflow_client: MlflowClient
) -> None:
    mlflow_client.create_registered_model(MODEL)  # nothing serves: no categories are known
    with (
        ServiceThread(live_settings) as running,
        httpx.Client(base_url=running.url, timeout=30, headers=AUTH) as http,
    ):
        answer = http.post("/tickets/0123abcd/feedback", json={"category": "Hardware"})
    assert answer.status_code == 503
    assert "no model version is loaded" in answer.json()["detail"]
