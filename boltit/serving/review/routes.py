"""``/review``: the queues page, its login, and the forms that label tickets.

Every route but the login form needs a reviewer's session (others are sent to the login
page), and every form posted needs the session's CSRF token (403 without it). Forms post and
redirect back (303), so the page works without JavaScript; ``templates/review.js`` adds keyboard
shortcuts and refreshes the live panel.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from boltit.core import tickets
from boltit.core.clients import Scope
from boltit.core.errors import BadInputError, NotFoundError
from boltit.core.settings import Settings
from boltit.serving.auth import ServiceAuth
from boltit.serving.review import queries
from boltit.serving.review.labelling import Label, NoModelLoadedError, record_labels
from boltit.serving.review.queries import QUEUE_TITLES, Filters, Queue
from boltit.serving.review.session import (
    COOKIE,
    SESSION_SECONDS,
    Reviewer,
    SessionCodec,
    SessionData,
    csrf_matches,
    logged_in,
    new_visitor,
    reviewer_of,
    session_secret,
)
from boltit.serving.review.top_categories import top_categories
from boltit.serving.service import ServingService

HERE = Path(__file__).parent
MENU_SECONDS = 30.0  # the filter menus' versions and categories are re-read this often

router = APIRouter(prefix="/review", include_in_schema=False)


class LoginRequiredError(Exception):
    """No reviewer session: the visitor is sent to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class CsrfRefusedError(Exception):
    """A form posted without this session's CSRF token."""


class BadQueueChoiceError(Exception):
    """A queue or filter in the query string that cannot be read (400, the message says why)."""


@dataclass
class ReviewPage:
    """What the routes share: templates, the session codec, the service and its clients."""

    templates: Environment
    codec: SessionCodec
    service: ServingService
    auth: ServiceAuth
    threshold: float
    menus: tuple[float, list[str], list[str]] | None = None

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(name).render(titles=QUEUE_TITLES, **context)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def set_session(self, response: Response, request: Request, data: SessionData) -> None:
        response.set_cookie(
            COOKIE,
            self.codec.encode(data),
            max_age=SESSION_SECONDS,
            path="/review",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def filter_menus(self) -> tuple[list[str], list[str]]:
        """Served versions and known categories, re-read every ``MENU_SECONDS``.

        Known categories (those of the loaded versions and accepted new ones) fill both the
        category filter and the correction menu; every label is checked again when stored.
        """
        now = time.monotonic()
        if self.menus is None or now - self.menus[0] > MENU_SECONDS:
            served = self.service.served_categories()
            with self.service.database.session() as session:
                versions = queries.served_versions(session)
                known = sorted(served | tickets.accepted_new_categories(session))
            self.menus = (now, versions, known)
        return self.menus[1], self.menus[2]


def install_review_page(app: FastAPI, settings: Settings) -> None:
    """Serve ``/review`` on ``app`` (built by ``create_app``, whose state holds the service)."""
    app.state.review = ReviewPage(
        templates=Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True),
            auto_reload=False,
        ),
        codec=SessionCodec(session_secret(settings)),
        service=app.state.service,
        auth=app.state.auth,
        threshold=settings.auto_apply_threshold,
    )

    @app.exception_handler(LoginRequiredError)
    async def _to_login(_request: Request, exc: LoginRequiredError) -> Response:
        return RedirectResponse(f"/review/login?{urlencode({'next': exc.next_url})}", 303)

    @app.exception_handler(CsrfRefusedError)
    async def _refuse(_request: Request, _exc: CsrfRefusedError) -> Response:
        return _csrf_refused(app.state.review)

    @app.exception_handler(BadQueueChoiceError)
    async def _bad_choice(request: Request, exc: BadQueueChoiceError) -> Response:
        page: ReviewPage = app.state.review
        reviewer = reviewer_of(_session(request, page), page.auth.registry)
        return page.render("error.html", 400, reviewer=reviewer, message=str(exc))

    app.include_router(router)


async def get_page(request: Request) -> ReviewPage:
    page: ReviewPage = request.app.state.review
    return page


PageDep = Annotated[ReviewPage, Depends(get_page)]


def _session(request: Request, page: ReviewPage) -> SessionData | None:
    return page.codec.decode(request.cookies.get(COOKIE))


async def require_reviewer(request: Request, page: PageDep) -> Reviewer:
    """The logged-in reviewer; anyone else goes to the login page."""
    reviewer = reviewer_of(_session(request, page), page.auth.registry)
    if reviewer is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequiredError(target if request.method == "GET" else "/review")
    return reviewer


ReviewerDep = Annotated[Reviewer, Depends(require_reviewer)]


@dataclass(frozen=True)
class ReviewerForm:
    """A form posted by the logged-in reviewer, its CSRF token checked."""

    reviewer: Reviewer
    form: Any

    def field(self, name: str) -> str | None:
        return _field(self.form, name)


async def checked_form(request: Request, page: PageDep, reviewer: ReviewerDep) -> ReviewerForm:
    """The posted form of a reviewer's session; 403 when its CSRF token does not match."""
    form = await request.form()
    if not csrf_matches(_session(request, page), _field(form, "csrf")):
        raise CsrfRefusedError
    return ReviewerForm(reviewer, form)


ReviewerFormDep = Annotated[ReviewerForm, Depends(checked_form)]


@dataclass(frozen=True)
class QueueChoice:
    """The queue and filters a query string asks for."""

    queue: Queue
    filters: Filters


async def choose_queue(
    queue: str | None = None,
    category: str | None = None,
    version: str | None = None,
    since: str | None = None,
    until: str | None = None,
    seed: str | None = None,
) -> QueueChoice:
    try:
        return QueueChoice(
            queries.parse_queue(queue),
            Filters.parse(category=category, version=version, since=since, until=until, seed=seed),
        )
    except BadInputError as exc:
        raise BadQueueChoiceError(str(exc)) from exc


QueueChoiceDep = Annotated[QueueChoice, Depends(choose_queue)]


def _safe_next(value: str | None) -> str:
    # Only back into the review page: never an open redirect.
    if value and value.startswith("/review") and not value.startswith("//"):
        return value
    return "/review"


@router.get("/login")
async def login_form(request: Request, page: PageDep, next: str | None = None) -> Response:
    """The login form: a client token with the review scope."""
    data = _session(request, page)
    if reviewer_of(data, page.auth.registry) is not None:
        return RedirectResponse(_safe_next(next), 303)
    data = data or new_visitor()
    response = page.render("login.html", csrf=data.csrf, next=_safe_next(next), error=None)
    page.set_session(response, request, data)
    return response


@router.post("/login")
async def login(request: Request, page: PageDep) -> Response:
    """Check the token and the form's CSRF token; start a session."""
    form = await request.form()
    data = _session(request, page)
    if not csrf_matches(data, _field(form, "csrf")):
        return _csrf_refused(page)
    assert data is not None
    next_url = _safe_next(_field(form, "next"))
    token = (_field(form, "token") or "").strip()
    client = page.auth.registry.authenticate(token) if token else None
    error = None
    if client is None:
        error = "That token is not recognised (wrong, or revoked)."
    elif not client.allows(Scope.review):
        error = (
            f"Client {client.name!r} lacks the review scope; create a reviewer with "
            "'boltit token create NAME --scope review'."
        )
    if error is not None or client is None:
        return page.render("login.html", 401, csrf=data.csrf, next=next_url, error=error)
    response = RedirectResponse(next_url, 303)
    page.set_session(response, request, logged_in(client))
    return response


@router.post("/logout", dependencies=[Depends(checked_form)])
async def logout() -> Response:
    """End the session (a reviewer's form, its CSRF token checked)."""
    response = RedirectResponse("/review/login", 303)
    response.delete_cookie(COOKIE, path="/review")
    return response


@router.get("")
async def queue_page(
    request: Request,
    page: PageDep,
    reviewer: ReviewerDep,
    choice: QueueChoiceDep,
    after: str | None = None,
) -> Response:
    """One page of a review queue, with its progress and the filters."""
    chosen, filters = choice.queue, choice.filters

    def load() -> dict[str, Any]:
        with page.service.database.session() as session:
            found = queries.queue_page(
                session, chosen, filters, threshold=page.threshold, after=after
            )
            rows = list(found.tickets)
            for ticket in rows:  # loaded while the session is open
                _ = ticket.feedback_history
            session.expunge_all()
        versions, categories = page.filter_menus()
        return {
            "page": found,
            "rows": rows,
            "versions": versions,
            "categories": categories,
            "known": categories,
            "top": top_categories(rows, page.service.loaded_models()),
        }

    try:
        found = await run_in_threadpool(load)
    except BadInputError as exc:
        return _bad_request(page, reviewer, str(exc))
    state = {"queue": chosen.value, **filters.query()}
    if after:
        state["after"] = after
    return page.render(
        "queue.html",
        reviewer=reviewer,
        queue=chosen,
        queues=list(Queue),
        filters=filters,
        back=urlencode(state),
        queue_query=urlencode({"queue": chosen.value, **filters.query()}),
        next_query=(
            urlencode({**state, "after": found["page"].next_cursor})
            if found["page"].next_cursor
            else None
        ),
        notice=request.query_params.get("notice"),
        **found,
    )


@router.get("/progress")
async def queue_progress(
    page: PageDep,
    reviewer: ReviewerDep,
    choice: QueueChoiceDep,
) -> Response:
    """A queue's progress bar (reviewed of total under the filters), as an HTML fragment.

    Asked for by the page's script once the page has loaded: counting a queue reads an
    index range of every ticket in it, which the first paint should not wait for.
    """
    chosen, filters = choice.queue, choice.filters

    def load() -> queries.Progress:
        with page.service.database.session() as session:
            return queries.progress(session, chosen, filters, threshold=page.threshold)

    return page.render("progress.html", progress=await run_in_threadpool(load))


@router.get("/panel")
async def panel(page: PageDep, reviewer: ReviewerDep) -> Response:
    """The live panel: the accuracy on reviewed tickets per version and per category."""

    def load() -> dict[str, Any]:
        with page.service.database.session() as session:
            return {"panel": queries.accuracy_panel(session)}

    return page.render("panel.html", **(await run_in_threadpool(load)))


@router.post("/tickets/{ticket_id}")
async def label_ticket(ticket_id: str, page: PageDep, posted: ReviewerFormDep) -> Response:
    """Confirm the prediction (no category) or correct it (a category); back to the queue."""
    if not queries.is_ticket_id(ticket_id):
        return _bad_request(page, posted.reviewer, f"{ticket_id!r} is not a ticket id", 404)
    category = (posted.field("category") or "").strip() or None
    label = Label(ticket_id=ticket_id, category=category)
    return await _record(page, posted, [label])


@router.post("/confirm-page")
async def confirm_page(page: PageDep, posted: ReviewerFormDep) -> Response:
    """Confirm the prediction of every ticket of the page; back to the queue."""
    ids = [str(value) for value in posted.form.getlist("ticket_id")]
    bad = [value for value in ids if not queries.is_ticket_id(value)]
    if bad:
        return _bad_request(page, posted.reviewer, f"{bad[0]!r} is not a ticket id")
    labels = [Label(ticket_id=ticket_id) for ticket_id in dict.fromkeys(ids)]
    return await _record(page, posted, labels)


async def _record(page: ReviewPage, posted: ReviewerForm, labels: list[Label]) -> Response:
    reviewer, back = posted.reviewer, posted.field("back")
    served = page.service.served_categories()
    try:
        stored = await run_in_threadpool(
            record_labels, page.service.database, labels, reviewer=reviewer.name, served=served
        )
    except NotFoundError as exc:
        return _bad_request(page, reviewer, str(exc), status=404)
    except tickets.UnknownCategoryError as exc:
        return _bad_request(page, reviewer, str(exc), status=422)
    except NoModelLoadedError as exc:
        return _bad_request(page, reviewer, str(exc), status=503)
    except BadInputError as exc:
        return _bad_request(page, reviewer, str(exc), status=409)
    query = back if back and "\n" not in back and "\r" not in back else ""
    notice = f"{len(stored)} ticket{'s' if len(stored) != 1 else ''} labelled"
    joiner = "&" if query else ""
    return RedirectResponse(f"/review?{query}{joiner}{urlencode({'notice': notice})}", 303)


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _csrf_refused(page: ReviewPage) -> Response:
    return page.render(
        "error.html",
        403,
        reviewer=None,
        message="The form's CSRF token is missing or does not match this session; "
        "reload the page and try again.",
    )


def _bad_request(page: ReviewPage, reviewer: Reviewer, message: str, status: int = 400) -> Response:
    return page.render("error.html", status, reviewer=reviewer, message=message)
