"""Request and response models of the HTTP API; limits come from settings at app build time."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonDict

from boltit.core.model_contract import ServedVersion

DEFAULT_MAX_TEXT_CHARS = 20_000
DEFAULT_MAX_BATCH = 256


# Characters that show nothing: whitespace, controls, zero-width and other format marks
# (U+200B-U+200F, U+2060-U+206F, U+FEFF, variation selectors, tags), fillers that render
# as blank (Hangul U+115F/U+1160/U+3164/U+FFA0, braille blank U+2800).
_INVISIBLE_CLASS = (
    "\\s\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0"
    "\U000e0000-\U000e007f"
)
_INVISIBLE = re.compile(f"[{_INVISIBLE_CLASS}]*")
# The same rule in the OpenAPI document: at least one visible character (a JSON Schema
# pattern matches anywhere in the string), so a schema-valid text is never refused as blank.
VISIBLE_TEXT: JsonDict = {"pattern": f"[^{_INVISIBLE_CLASS}]"}


def is_blank(value: str) -> bool:
    """True when ``value`` has no visible character (empty, whitespace, zero-width only)."""
    return _INVISIBLE.fullmatch(value) is not None


def _not_blank(value: str) -> str:
    if is_blank(value):
        raise ValueError("text is empty or only whitespace or invisible characters")
    _valid_unicode(value)
    return value


def _valid_unicode(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "text contains an unpaired surrogate (\\uD800-\\uDFFF), not Unicode"
        ) from None


def _iso_time(value: object) -> object:
    # Pydantic reads a bare number as a Unix time; the API declares ISO 8601 (date-time).
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.\d*)?\s*", value):
        raise ValueError("must be an ISO 8601 time such as 2026-12-01T09:00:00Z, not a number")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_time)]


class ClassifyRequest(BaseModel):
    """One ticket to classify."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(
        min_length=1,
        max_length=DEFAULT_MAX_TEXT_CHARS,
        description=f"Ticket text, 1 to {DEFAULT_MAX_TEXT_CHARS} characters, not only whitespace.",
        json_schema_extra=VISIBLE_TEXT,
    )

    _check_text = field_validator("text")(_not_blank)


TicketText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=DEFAULT_MAX_TEXT_CHARS),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": DEFAULT_MAX_TEXT_CHARS, **VISIBLE_TEXT}
    ),
]


class BatchClassifyRequest(BaseModel):
    """Several tickets, classified and stored together."""

    model_config = ConfigDict(extra="forbid", strict=True)

    texts: list[TicketText] = Field(
        min_length=1,
        max_length=DEFAULT_MAX_BATCH,
        description=f"1 to {DEFAULT_MAX_BATCH} ticket texts.",
    )

    @field_validator("texts")
    @classmethod
    def _texts_not_blank(cls, value: list[str]) -> list[str]:
        for index, text in enumerate(value):
            if is_blank(text):
                raise ValueError(
                    f"texts[{index}] is empty or only whitespace or invisible characters"
                )
            _valid_unicode(text)
        return value


class ClassificationPublic(BaseModel):
    """What the model said, what was done with it, and why."""

    ticket_id: str
    category: str
    priority: str | None
    confidence: float
    model_version: str
    auto_applied: bool
    reason: str
    latency_ms: float


class BatchClassificationPublic(BaseModel):
    """One answer per text, in order."""

    results: list[ClassificationPublic]


class LoadFailurePublic(BaseModel):
    """A version this replica refused to serve."""

    version: str
    alias: str
    error: str
    at: datetime


class HealthPublic(BaseModel):
    """Liveness: the process answers, plus what it serves and what failed to load."""

    status: Literal["ok", "degraded"]
    model: ServedVersion | None
    challenger: ServedVersion | None
    load_errors: list[LoadFailurePublic]
    registry_error: str | None
    flags: dict[str, bool | float]
    flag_error: str | None
    insecure_open: bool = Field(
        False, description="True when callers without a token may classify, label and export."
    )


class ReadyPublic(BaseModel):
    """Readiness: a model is loaded."""

    ready: bool
    version: str | None


class FeatureFlagsPublic(BaseModel):
    """Runtime switches shared by every replica."""

    auto_apply_enabled: bool
    shadow_enabled: bool = Field(
        description="Production's tickets are also scored by the challenger (never returned)."
    )
    canary_percent: float = Field(
        ge=0, le=100, description="Share of tickets the challenger answers (never auto-applied)."
    )


# Absent means "leave it"; the document says so (a boolean or a number, never null, and at
# least one of the three), so clients and the contract test see the real rule.
_Switch = Annotated[bool | None, WithJsonSchema({"type": "boolean"})]
_Share = Annotated[float | None, WithJsonSchema({"type": "number", "minimum": 0, "maximum": 100})]
_FLAG_FIELDS = ("auto_apply_enabled", "shadow_enabled", "canary_percent")


class FeatureFlagsUpdate(BaseModel):
    """A change of one or more flags (absent ones stay); the reason goes into the audit history."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"anyOf": [{"required": [name]} for name in _FLAG_FIELDS]},
    )

    auto_apply_enabled: _Switch = None
    shadow_enabled: _Switch = None
    canary_percent: _Share = Field(None, ge=0, le=100, allow_inf_nan=False)
    reason: str | None = Field(None, max_length=500)

    @field_validator(*_FLAG_FIELDS, mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only for a value sent: null would read as "leave it" and hide a client's bug.
        if value is None:
            raise ValueError("leave the flag out to keep it; null is not a value")
        return value

    @model_validator(mode="after")
    def _changes_something(self) -> FeatureFlagsUpdate:
        if all(getattr(self, name) is None for name in _FLAG_FIELDS):
            raise ValueError(f"give at least one of {', '.join(_FLAG_FIELDS)}")
        return self


class FeedbackRequest(BaseModel):
    """The agent's correction: the ground truth for accuracy and retraining."""

    model_config = ConfigDict(extra="forbid", strict=True)

    category: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    priority: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16)] | None
    ) = None
    new_category: bool = Field(
        False,
        description="True to add a category no served model version knows; without it such "
        "a category is refused with 422.",
    )


class FeedbackPublic(BaseModel):
    """One label a ticket was given; the newest is its current label."""

    model_config = ConfigDict(from_attributes=True)

    category: str
    priority: str | None
    new_category: bool
    client: str | None
    kind: Literal["feedback", "correction"]
    at: datetime


class TicketPublic(BaseModel):
    """A stored ticket with its prediction and any feedback."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    text: str
    category: str
    priority: str | None
    confidence: float
    model_name: str
    model_version: str
    served_by: str
    latency_ms: float
    auto_applied: bool
    reason: str
    created_at: datetime
    feedback_category: str | None
    feedback_priority: str | None
    feedback_at: datetime | None
    feedback_new_category: bool
    feedback_client: str | None
    feedback_history: list[FeedbackPublic]


class ReloadPublic(BaseModel):
    """What a forced reload did, per alias."""

    results: list[dict[str, object]]


class WebhookAck(BaseModel):
    """A verified delivery was accepted."""

    accepted: bool
    action: str
