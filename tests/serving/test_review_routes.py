"""The /review page over HTTP: login with a review token, CSRF, labels, bulk confirm, escaping."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from boltit.core import tickets
from boltit.core.clients import ClientFile
from boltit.core.db import Database
from boltit.core.schema import Ticket
from boltit.core.settings import Settings
from boltit.serving.review.session import COOKIE
from tests.serving.conftest import ServiceThread, add_client
from tests.serving.review_tickets import insert_tickets, ticket_rows

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def secure(live_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The service with tokens required (not the serving tests' open mode)."""
    monkeypatch.setenv("BOLTIT_INSECURE_OPEN", "false")
    return live_settings.model_copy(update={"insecure_open": False})


@pytest.fixture
def service(secure: Settings, production_v1: str) -> Iterator[ServiceThread]:
    with ServiceThread(secure) as running:
        yield running


@pytest.fixture
def store(secure: Settings) -> Iterator[Database]:
    database = Database(secure.database_url)
    yield database
    database.dispose()


def _categories(service: ServiceThread) -> list[str]:
    return sorted(service.app.state.service.served_categories())


@contextmanager
def _login(url: str, token: str) -> Iterator[httpx.Client]:
    """A browser-like client logged in with ``token`` through the login form."""
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as browser:
        form = browser.get("/review/login")
        assert form.status_code == 200
        answer = browser.post(
            "/review/login", data={"token": token, "csrf": _csrf(form.text), "next": "/review"}
        )
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/review"
        yield browser


def _progress(browser: httpx.Client, filters: str = "") -> str:
    answer = browser.get(f"/review/progress?queue=low-confidence{filters}")
    assert answer.status_code == 200
    return answer.text


def _csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


def test_nothing_is_served_without_a_reviewer_session(
    service: ServiceThread, secure: Settings
) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as anonymous:
        for path in ("/review", "/review/progress", "/review/panel"):
            answer = anonymous.get(path + "?queue=audit")
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/review/login?next=%2Freview")
        posted = anonymous.post("/review/confirm-page", data={"ticket_id": "ab"})
        assert posted.status_code == 303 and posted.headers["location"].startswith("/review/login")
        login = anonymous.get("/review/login")
        assert login.status_code == 200 and 'name="token"' in login.text
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/review" in cookie
        # A forged cookie is no session.
        anonymous.cookies.set(COOKIE, "e30.forged", path="/review")
        assert anonymous.get("/review").status_code == 303


def test_login_takes_a_token_with_the_review_scope(
    service: ServiceThread, secure: Settings
) -> None:
    agent = add_client(secure, "agent", "feedback")
    reviewer = add_client(secure, "sme", "review")
    with httpx.Client(base_url=service.url, timeout=30) as browser:
        form = browser.get("/review/login")
        csrf = _csrf(form.text)
        refused = browser.post("/review/login", data={"token": agent, "csrf": csrf})
        assert refused.status_code == 401
        assert "Client &#39;agent&#39; lacks the review scope" in refused.text
        wrong = browser.post("/review/login", data={"token": "boltit_nope", "csrf": csrf})
        assert wrong.status_code == 401 and "not recognised" in wrong.text
        # The login form has its own CSRF token: a post from elsewhere is refused.
        assert browser.post("/review/login", data={"token": reviewer}).status_code == 403
    with _login(service.url, reviewer) as browser:
        page = browser.get("/review")
        assert page.status_code == 200 and "signed in as <b>sme</b>" in page.text
        # The reviewer's token revoked: the session ends at the next request.
        ClientFile(secure.clients_path).revoke("sme")
        assert browser.get("/review").status_code == 303


def test_forms_without_the_sessions_csrf_token_are_refused(
    service: ServiceThread, secure: Settings, store: Database
) -> None:
    rows = ticket_rows(5, seed=11)
    insert_tickets(store, rows)
    with _login(service.url, add_client(secure, "sme", "review")) as browser:
        page = browser.get("/review")
        ticket_id = rows[0]["id"]
        for data in ({}, {"csrf": "not-the-token"}):
            refused = browser.post(f"/review/tickets/{ticket_id}", data=data)
            assert refused.status_code == 403 and "CSRF token" in refused.text
            bulk = browser.post("/review/confirm-page", data={**data, "ticket_id": ticket_id})
            assert bulk.status_code == 403
        ok = browser.post(f"/review/tickets/{ticket_id}", data={"csrf": _csrf(page.text)})
        assert ok.status_code == 303
    with store.session() as session:
        reviewed = session.scalars(select(Ticket.id).where(Ticket.reviewed_at.is_not(None)))
        assert list(reviewed) == [ticket_id]


def test_correct_one_ticket_then_confirm_the_page(
    service: ServiceThread, secure: Settings, store: Database
) -> None:
    rows = ticket_rows(40, seed=12)
    for row in rows:
        row["confidence"] = min(row["confidence"], 0.7)  # every one in the low-confidence queue
    insert_tickets(store, rows)
    lowest = sorted(rows, key=lambda r: (r["confidence"], r["id"]))
    first = lowest[0]["id"]
    with store.session() as session:
        tickets.add_feedback(session, first, category="Access", client="agent-1")
    known = _categories(service)
    correction = next(c for c in known if c not in (lowest[0]["category"], "Access"))
    with _login(service.url, add_client(secure, "sme", "review")) as browser:
        page = browser.get("/review?queue=low-confidence")
        assert "<b>0</b> of <b>40</b> reviewed" in _progress(browser)
        order = re.findall(r'data-ticket="([0-9a-f]+)"', page.text)
        assert order == [r["id"] for r in lowest[:25]]
        assert page.text.count("Top 3:") == 25  # v1 is loaded: probabilities for each
        assert "agent-1" in page.text  # the feedback history
        csrf = _csrf(page.text)
        back = "queue=low-confidence"
        answer = browser.post(
            f"/review/tickets/{first}", data={"csrf": csrf, "category": correction, "back": back}
        )
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/review?queue=low-confidence&notice=")
        page = browser.get("/review?queue=low-confidence")
        assert "<b>1</b> of <b>40</b> reviewed" in _progress(browser)
        on_page = re.findall(r'data-ticket="([0-9a-f]+)"', page.text)
        assert first not in on_page and on_page == [r["id"] for r in lowest[1:26]]
        bulk = browser.post(
            "/review/confirm-page",
            data={"csrf": csrf, "back": back, "ticket_id": on_page},
        )
        assert bulk.status_code == 303
        page = browser.get("/review?queue=low-confidence")
        assert "<b>26</b> of <b>40</b> reviewed" in _progress(browser)
        assert "<b>26</b> of <b>40</b>" in _progress(browser, "&version=1&since=2000-01-01")
        assert "<b>0</b> of <b>0</b>" in _progress(browser, "&version=7")
        assert len(re.findall(r'data-ticket="', page.text)) == 14
        panel = browser.get("/review/panel")
        assert panel.status_code == 200 and "<td>v1</td><td>26</td>" in panel.text
    with store.session() as session:
        corrected = session.get(Ticket, first)
        assert corrected is not None
        assert corrected.feedback_category == correction
        assert [(f.category, f.client, f.kind) for f in corrected.feedback_history] == [
            ("Access", "agent-1", "feedback"),
            (correction, "sme", "review"),
        ]
        confirmed = session.scalars(select(Ticket).where(Ticket.id.in_(on_page))).all()
        assert len(confirmed) == 25
        assert all(t.feedback_category == t.category for t in confirmed)
        assert all(t.feedback_client == "sme" and t.reviewed_by == "sme" for t in confirmed)
    # The labels are what retraining reads.
    with store.session() as session:
        labelled = tickets.labelled_tickets(session)
    assert len(labelled) == 26


def test_ticket_text_is_escaped_and_bad_input_is_named(
    service: ServiceThread, secure: Settings, store: Database
) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    rows = ticket_rows(2, seed=13, texts=(hostile,))
    for row in rows:
        row["confidence"] = 0.3
    insert_tickets(store, rows)
    with _login(service.url, add_client(secure, "sme", "review")) as browser:
        page = browser.get("/review")
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
        csrf = _csrf(page.text)
        bad = browser.get("/review?since=yesterday")
        assert bad.status_code == 400 and "since must be a date as YYYY-MM-DD" in bad.text
        unknown = browser.get("/review?queue=nope")
        assert unknown.status_code == 400 and "unknown queue" in unknown.text
        refused = browser.post(
            f"/review/tickets/{rows[0]['id']}", data={"csrf": csrf, "category": "Printers"}
        )
        assert refused.status_code == 422 and "is not known to the served model" in refused.text
        missing = browser.post("/review/tickets/abcdef", data={"csrf": csrf})
        assert missing.status_code == 404 and "ticket abcdef not found" in missing.text
        # The redirect after a label stays on the review page whatever "back" says.
        away = browser.post(
            f"/review/tickets/{rows[1]['id']}", data={"csrf": csrf, "back": "//evil.example/"}
        )
        assert away.headers["location"].startswith("/review?")


def test_the_session_secret_is_kept_in_the_state_folder(secure: Settings) -> None:
    from boltit.serving.review.session import session_secret

    first = session_secret(secure)
    path = Path(secure.state_dir) / "review-secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert session_secret(secure) == first and len(first) >= 32
    given = secure.model_copy(update={"review_secret": SecretStr("x" * 40)})
    assert session_secret(given) == b"x" * 40
