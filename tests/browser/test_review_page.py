"""The /review page in Debian's Chromium: log in, correct, confirm a page, keyboard only.

With ``BOLTIT_SCREENSHOTS=docs/images`` the tests also write the README's screenshots
(``review-*.png``); failures leave screenshots through this folder's conftest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from boltit.core.db import Database
from boltit.core.schema import Ticket
from boltit.core.settings import Settings
from tests.serving.conftest import (  # noqa: F401  (fixtures used by name)
    ServiceThread,
    add_client,
    live_settings,
    model_dir,
    production_v1,
)
from tests.serving.review_tickets import insert_tickets, ticket_rows

pytestmark = pytest.mark.e2e

SCREENSHOTS_ENV = "BOLTIT_SCREENSHOTS"
REPOSITORY = Path(__file__).resolve().parents[2]
COUNT = 40


def _shoot(page: Page, name: str) -> None:
    folder = os.environ.get(SCREENSHOTS_ENV)
    if folder:
        # Relative to the repository: the tests run in their own tmp_path.
        target = REPOSITORY / folder
        target.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target / f"review-{name}.png"), full_page=False)


@pytest.fixture
def store(live_settings: Settings) -> Iterator[Database]:  # noqa: F811
    database = Database(live_settings.database_url)
    yield database
    database.dispose()


@pytest.fixture
def seeded(store: Database) -> list[dict[str, object]]:
    """40 low-confidence tickets, lowest first; the first has an agent's label."""
    from boltit.core import tickets

    texts = (
        "VPN drops every ten minutes when I work from home",
        "laptop fan is very loud and the battery drains in an hour",
        "need a licence for the design software, approved by my manager",
        "cannot open the finance share, access denied",
        "please change my address in the HR system",
    )
    rows = ticket_rows(COUNT, seed=21, texts=texts)
    for row in rows:
        row["confidence"] = min(float(row["confidence"]), 0.72)  # type: ignore[arg-type]
    insert_tickets(store, rows)
    ordered = sorted(rows, key=lambda r: (r["confidence"], r["id"]))
    with store.session() as session:
        tickets.add_feedback(session, str(ordered[0]["id"]), category="Access", client="agent-7")
    return ordered


@pytest.fixture
def service(live_settings: Settings, production_v1: str) -> Iterator[ServiceThread]:  # noqa: F811
    with ServiceThread(live_settings) as running:
        yield running


def _log_in(page: Page, url: str, token: str) -> None:
    page.goto(f"{url}/review?queue=low-confidence")
    expect(page).to_have_url(re.compile(r"/review/login\?next="))
    page.get_by_label("Client token").fill(token)
    _shoot(page, "login")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#queue-count")).to_contain_text("reviewed")


def test_correct_a_ticket_and_confirm_a_page_with_the_mouse(
    page: Page,
    service: ServiceThread,
    live_settings: Settings,  # noqa: F811
    store: Database,
    seeded: list[dict[str, object]],
) -> None:
    token = add_client(live_settings, "sme-anna", "review")
    _log_in(page, service.url, token)
    progress = page.locator("#queue-progress")
    expect(progress).to_have_attribute("value", "0")
    expect(page.locator("#queue-count")).to_contain_text(f"0 of {COUNT} reviewed")
    first = page.locator("article.ticket").first
    expect(first).to_have_attribute("data-ticket", str(seeded[0]["id"]))
    expect(first.locator(".history")).to_contain_text("agent-7")
    expect(first.locator(".top3 button")).to_have_count(3)
    expect(page.locator("#panel")).to_contain_text("Accuracy on reviewed tickets")
    _shoot(page, "queue")

    predicted = str(seeded[0]["category"])
    options = first.locator('select[name="category"] option').all_inner_texts()
    correction = next(c for c in options if c not in (predicted, "Access"))
    first.locator('select[name="category"]').select_option(correction)
    first.get_by_role("button", name="Correct").click()
    expect(page.locator(".notice")).to_contain_text("1 ticket labelled")
    expect(progress).to_have_attribute("value", "1")
    expect(page.locator(f'article[data-ticket="{seeded[0]["id"]}"]')).to_have_count(0)

    page.get_by_role("button", name=re.compile(r"Confirm all 25 predictions")).click()
    expect(page.locator(".notice")).to_contain_text("25 tickets labelled")
    expect(progress).to_have_attribute("value", "26")
    expect(page.locator("#queue-count")).to_contain_text(f"26 of {COUNT} reviewed")
    expect(page.locator("article.ticket")).to_have_count(COUNT - 26)
    expect(page.locator("#panel table[data-kind=version]")).to_contain_text("26")
    _shoot(page, "after-confirm")

    with store.session() as session:
        reviewed = session.scalars(select(Ticket).where(Ticket.reviewed_at.is_not(None))).all()
    assert len(reviewed) == 26
    assert {t.id for t in reviewed} == {str(r["id"]) for r in seeded[:26]}
    assert all(t.feedback_client == "sme-anna" for t in reviewed)
    corrected = next(t for t in reviewed if t.id == seeded[0]["id"])
    assert corrected.feedback_category == correction
    assert [(f.client, f.kind) for f in corrected.feedback_history] == [
        ("agent-7", "feedback"),
        ("sme-anna", "review"),
    ]
    assert all(t.feedback_category == t.category for t in reviewed if t is not corrected)


def test_keyboard_only(
    page: Page,
    service: ServiceThread,
    live_settings: Settings,  # noqa: F811
    store: Database,
    seeded: list[dict[str, object]],
) -> None:
    token = add_client(live_settings, "sme-kim", "review")
    page.goto(f"{service.url}/review")
    page.keyboard.type(token)  # the token field has the focus
    page.keyboard.press("Enter")
    expect(page.locator("#queue-count")).to_contain_text(f"0 of {COUNT} reviewed")

    page.keyboard.press("c")  # confirm the first ticket's prediction
    expect(page.locator("#queue-progress")).to_have_attribute("value", "1")
    second = page.locator("article.ticket").nth(1)
    second_id = second.get_attribute("data-ticket")
    pick = second.locator('.top3 button[data-key="2"]').get_attribute("value")
    page.keyboard.press("j")
    expect(second).to_be_focused()
    page.keyboard.press("2")  # its second most likely category
    expect(page.locator("#queue-progress")).to_have_attribute("value", "2")
    page.keyboard.press("Shift+A")  # and the rest of the page
    expect(page.locator("#queue-progress")).to_have_attribute("value", "27")

    with store.session() as session:
        first = session.get(Ticket, str(seeded[0]["id"]))
        picked = session.get(Ticket, second_id)
        reviewed = session.scalar(
            select(Ticket.id).where(Ticket.reviewed_at.is_not(None)).order_by(Ticket.id).limit(1)
        )
    assert first is not None and first.feedback_category == first.category
    assert first.feedback_client == "sme-kim"
    assert picked is not None and picked.feedback_category == pick
    assert reviewed is not None
