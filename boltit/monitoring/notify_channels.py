"""Where incident notices go: a Slack-compatible incoming webhook and PagerDuty Events API v2.

Each channel turns a :class:`Notice` into its own JSON body; :func:`deliver` posts it with a
short timeout and a bounded number of attempts, and never raises: the outcome is a
:class:`Delivery` for the incident's timeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from boltit.core.settings import Settings

NoticeKind = Literal["open", "action", "mitigated", "resolve"]

# PagerDuty accepts summaries up to 1,024 characters and dedup keys up to 255.
_SUMMARY_LIMIT = 1024
_DEDUP_LIMIT = 255
_SEVERITY = {"SEV-1": "critical", "SEV-2": "error", "SEV-3": "warning"}
# The backoff doubles from here between attempts, capped so the worst case stays bounded.
_FIRST_BACKOFF_SECONDS = 0.25
_MAX_BACKOFF_SECONDS = 2.0


@dataclass(frozen=True)
class Notice:
    """One thing to tell people about an incident."""

    incident_id: int
    kind: NoticeKind
    model_name: str
    model_version: str | None
    severity: str
    title: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def dedup_key(self) -> str:
        """One key per incident, so every update and the resolve land on the same page."""
        return f"boltit/{self.model_name}/incident-{self.incident_id}"[:_DEDUP_LIMIT]


@dataclass(frozen=True)
class Delivery:
    """How one notice went to one channel."""

    channel: str
    ok: bool
    attempts: int
    status: int | None
    error: str | None
    action: str | None = None


class Channel(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    def body(self, notice: Notice) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SlackChannel:
    """A Slack-compatible incoming webhook (``{"text": ..., "blocks": ...}``)."""

    url: str
    name: str = "slack"

    def body(self, notice: Notice) -> dict[str, Any]:
        version = f"v{notice.model_version}" if notice.model_version else "no version"
        heading = {
            "open": f":rotating_light: Incident #{notice.incident_id} opened",
            "action": f"Incident #{notice.incident_id}",
            "mitigated": f":white_check_mark: Incident #{notice.incident_id} mitigated",
            "resolve": f":white_check_mark: Incident #{notice.incident_id} resolved",
        }[notice.kind]
        text = f"{heading} ({notice.severity}) {notice.model_name} {version}: {notice.message}"
        return {
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": notice.title}],
                },
            ],
        }


@dataclass(frozen=True)
class PagerDutyChannel:
    """PagerDuty Events API v2: trigger on open (and updates), acknowledge, resolve."""

    url: str
    routing_key: str
    name: str = "pagerduty"

    @staticmethod
    def action(notice: Notice) -> str:
        # A further trigger with the same dedup key adds to the open alert without paging again.
        return {"open": "trigger", "action": "trigger", "mitigated": "acknowledge"}.get(
            notice.kind, "resolve"
        )

    def body(self, notice: Notice) -> dict[str, Any]:
        action = self.action(notice)
        body: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": action,
            "dedup_key": notice.dedup_key,
        }
        if action == "trigger":
            version = f"v{notice.model_version}" if notice.model_version else "no version"
            body["payload"] = {
                "summary": f"{notice.model_name} {version}: {notice.message}"[:_SUMMARY_LIMIT],
                "source": f"boltit-monitor/{notice.model_name}",
                "severity": _SEVERITY.get(notice.severity, "error"),
                "component": notice.model_name,
                "group": "boltit",
                "class": "model_regression",
                "custom_details": {
                    "incident": notice.incident_id,
                    "title": notice.title,
                    "model_version": notice.model_version,
                    "kind": notice.kind,
                    **notice.details,
                },
            }
        return body


def configured_channels(settings: Settings) -> list[Channel]:
    """The channels the settings name; none when paging is not configured."""
    channels: list[Channel] = []
    if settings.slack_webhook_url is not None and settings.slack_webhook_url.get_secret_value():
        channels.append(SlackChannel(url=settings.slack_webhook_url.get_secret_value()))
    key = settings.pagerduty_routing_key
    if key is not None and key.get_secret_value():
        channels.append(
            PagerDutyChannel(url=settings.pagerduty_url, routing_key=key.get_secret_value())
        )
    return channels


def _retryable(status: int) -> bool:
    # 429 and 5xx are the receiver's momentary trouble; any other 4xx will not get better.
    return status == 429 or status >= 500


def deliver(
    channel: Channel,
    notice: Notice,
    *,
    timeout: float,
    attempts: int,
    http: httpx.Client | None = None,
) -> Delivery:
    """Post ``notice`` to ``channel``, retrying with backoff; never raises."""
    body = channel.body(notice)
    action = body.get("event_action") if isinstance(channel, PagerDutyChannel) else None
    status: int | None = None
    error: str | None = None
    own = http is None
    client = http or httpx.Client(timeout=httpx.Timeout(timeout))
    try:
        for attempt in range(1, attempts + 1):
            try:
                answer = client.post(channel.url, json=body)
                status = answer.status_code
                if status < 300:
                    return Delivery(channel.name, True, attempt, status, None, action)
                error = f"HTTP {status}: {answer.text[:200]}"
                if not _retryable(status):
                    return Delivery(channel.name, False, attempt, status, error, action)
            except httpx.HTTPError as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"[:300]
            if attempt < attempts:
                time.sleep(min(_FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1), _MAX_BACKOFF_SECONDS))
        return Delivery(channel.name, False, attempts, status, error, action)
    finally:
        if own:
            client.close()
