"""The runbook's smoke tests (step 7) against a running service.

Health and readiness, the served version against the registry's Production alias, known
tickets classified into their categories with sane confidence, the auto-apply flag as
expected, and the p95 latency of a few calls under a budget. Every check is a row; the run
passes when no row failed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
import yaml

from boltit.core.errors import BadInputError
from boltit.core.vocabulary import AUTO_APPLY_FLAG

Outcome = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class SmokeTicket:
    """A ticket whose category is known."""

    text: str
    category: str
    min_confidence: float


@dataclass(frozen=True)
class SmokeCheck:
    """One row of the smoke test's table."""

    name: str
    outcome: Outcome
    detail: str


@dataclass(frozen=True)
class SmokeExpectations:
    """What the service should show; ``None`` leaves that check out (reported as skipped)."""

    version: str | None = None
    categories: frozenset[str] | None = None
    """Categories the served model knows; tickets of other categories are skipped."""
    auto_apply: bool | None = None
    auto_apply_threshold: float = 0.75
    p95_budget_ms: float = 2000.0
    latency_calls: int = 20


@dataclass
class SmokeResult:
    """Every check, in the order run."""

    url: str
    checks: list[SmokeCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.outcome != "fail" for check in self.checks)

    @property
    def failed(self) -> list[SmokeCheck]:
        return [check for check in self.checks if check.outcome == "fail"]

    def summary(self) -> str:
        counts = {o: sum(c.outcome == o for c in self.checks) for o in ("pass", "fail", "skip")}
        text = f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"
        if self.failed:
            text += ": " + "; ".join(f"{c.name}: {c.detail}" for c in self.failed)
        return text


def default_tickets_path() -> Path:
    """The packaged ``smoke_tickets.yaml``."""
    return Path(str(resources.files("boltit.monitoring") / "smoke_tickets.yaml"))


def load_smoke_tickets(path: Path | None = None) -> list[SmokeTicket]:
    """Read the known tickets.

    Raises:
        BadInputError: The file is missing or not in the expected shape.
    """
    path = path or default_tickets_path()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BadInputError(f"cannot read smoke tickets {path}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("tickets"), list):
        raise BadInputError(f"{path}: expected a mapping with a 'tickets' list")
    default = float(document.get("min_confidence", 0.5))
    tickets: list[SmokeTicket] = []
    for number, entry in enumerate(document["tickets"], start=1):
        if not isinstance(entry, dict) or not entry.get("text") or not entry.get("category"):
            raise BadInputError(f"{path}: ticket {number} needs 'text' and 'category'")
        tickets.append(
            SmokeTicket(
                str(entry["text"]),
                str(entry["category"]),
                float(entry.get("min_confidence", default)),
            )
        )
    if not tickets:
        raise BadInputError(f"{path}: no tickets")
    return tickets


def run_smoke(
    *,
    url: str,
    token: str | None,
    tickets: list[SmokeTicket],
    expect: SmokeExpectations,
    timeout: float = 10.0,
) -> SmokeResult:
    """Run every check against the service at ``url``; never raises for what the service does."""
    result = SmokeResult(url=url.rstrip("/"))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=result.url, timeout=timeout, headers=headers) as http:
        health = _probe(result, http, "/health")
        _probe(result, http, "/ready")
        _version(result, http, expect)
        open_service = isinstance(health, dict) and bool(health.get("insecure_open"))
        if token is None and not open_service:
            # One clear row instead of a 401 per ticket.
            result.checks.append(
                SmokeCheck(
                    "classify",
                    "fail",
                    "no client token: set BOLTIT_SMOKE_TOKEN or pass --token "
                    "(a client with the classify scope)",
                )
            )
            _auto_apply(result, health, [], expect)
            return result
        answers = _tickets(result, http, tickets, expect)
        _auto_apply(result, health, answers, expect)
        _latency(result, http, tickets, expect)
    return result


def _get(http: httpx.Client, path: str) -> tuple[int | None, Any, str]:
    try:
        answer = http.get(path)
    except httpx.HTTPError as exc:
        return None, None, f"{type(exc).__name__}: {exc}"
    try:
        body = answer.json()
    except ValueError:
        body = None
    return answer.status_code, body, f"HTTP {answer.status_code}"


def _probe(result: SmokeResult, http: httpx.Client, path: str) -> Any:
    status, body, detail = _get(http, path)
    ok = status == 200
    if ok and isinstance(body, dict) and "status" in body:
        detail += f", status {body['status']}"
    result.checks.append(SmokeCheck(path, "pass" if ok else "fail", detail))
    return body if ok else None


def _version(result: SmokeResult, http: httpx.Client, expect: SmokeExpectations) -> None:
    status, body, detail = _get(http, "/model/version")
    served = body.get("version") if status == 200 and isinstance(body, dict) else None
    name = "/model/version"
    if served is None:
        result.checks.append(SmokeCheck(name, "fail", f"no version: {detail}"))
    elif expect.version is None:
        result.checks.append(SmokeCheck(name, "skip", f"serves v{served}; no expected version"))
    elif str(served) == expect.version:
        result.checks.append(SmokeCheck(name, "pass", f"serves v{served} = Production"))
    else:
        result.checks.append(
            SmokeCheck(name, "fail", f"serves v{served}, Production is v{expect.version}")
        )


def _classify(http: httpx.Client, text: str) -> tuple[dict[str, Any] | None, str]:
    try:
        answer = http.post("/classify", json={"text": text})
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if answer.status_code != 200:
        return None, f"HTTP {answer.status_code}: {answer.text[:120]}"
    return answer.json(), "ok"


def _tickets(
    result: SmokeResult,
    http: httpx.Client,
    tickets: list[SmokeTicket],
    expect: SmokeExpectations,
) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    for ticket in tickets:
        name = f"ticket: {ticket.category}: {ticket.text[:40]}"
        if expect.categories is not None and ticket.category not in expect.categories:
            result.checks.append(SmokeCheck(name, "skip", "the served model has no such category"))
            continue
        answer, detail = _classify(http, ticket.text)
        if answer is None:
            result.checks.append(SmokeCheck(name, "fail", detail))
            continue
        answers.append(answer)
        category, confidence = answer["category"], float(answer["confidence"])
        said = f"{category} at {confidence:.2f} (v{answer['model_version']})"
        if category != ticket.category:
            result.checks.append(SmokeCheck(name, "fail", f"classified {said}"))
        elif confidence < ticket.min_confidence:
            result.checks.append(
                SmokeCheck(name, "fail", f"{said}, under {ticket.min_confidence:g}")
            )
        else:
            result.checks.append(SmokeCheck(name, "pass", said))
    return answers


def _auto_apply(
    result: SmokeResult,
    health: Any,
    answers: list[dict[str, Any]],
    expect: SmokeExpectations,
) -> None:
    name = "auto-apply"
    flags = health.get("flags", {}) if isinstance(health, dict) else {}
    flag = flags.get(AUTO_APPLY_FLAG)
    if expect.auto_apply is None:
        result.checks.append(SmokeCheck(name, "skip", f"flag {flag}; no expectation"))
        return
    applied = sum(bool(a.get("auto_applied")) for a in answers)
    confident = sum(float(a["confidence"]) >= expect.auto_apply_threshold for a in answers)
    wanted = "on" if expect.auto_apply else "off"
    if flag is not expect.auto_apply:
        result.checks.append(SmokeCheck(name, "fail", f"flag is {flag}, expected {wanted}"))
    elif not expect.auto_apply and applied:
        result.checks.append(
            SmokeCheck(name, "fail", f"flag off but {applied} smoke ticket(s) auto-applied")
        )
    elif expect.auto_apply and confident and not applied:
        result.checks.append(
            SmokeCheck(name, "fail", f"flag on but none of {confident} confident tickets applied")
        )
    else:
        result.checks.append(
            SmokeCheck(name, "pass", f"flag {wanted}; {applied}/{len(answers)} auto-applied")
        )


def _latency(
    result: SmokeResult,
    http: httpx.Client,
    tickets: list[SmokeTicket],
    expect: SmokeExpectations,
) -> None:
    name = f"p95 latency of {expect.latency_calls} calls"
    seconds: list[float] = []
    for call in range(expect.latency_calls):
        started = time.perf_counter()
        answer, detail = _classify(http, tickets[call % len(tickets)].text)
        if answer is None:
            result.checks.append(SmokeCheck(name, "fail", f"call {call + 1}: {detail}"))
            return
        seconds.append(time.perf_counter() - started)
    p95_ms = float(np.percentile(seconds, 95)) * 1000
    outcome: Outcome = "pass" if p95_ms <= expect.p95_budget_ms else "fail"
    result.checks.append(
        SmokeCheck(name, outcome, f"{p95_ms:.1f} ms (budget {expect.p95_budget_ms:g} ms)")
    )
