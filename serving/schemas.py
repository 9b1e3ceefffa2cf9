"""Request and response models of the HTTP API; limits come from settings at app build time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

DEFAULT_MAX_TEXT_CHARS = 20_000
DEFAULT_MAX_BATCH = 256


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("text is empty or only whitespace")
    _valid_unicode(value)
    return value


def _valid_unicode(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "text contains an unpaired surrogate (\\uD800-\\uDFFF), not Unicode"
        ) from None


class ClassifyRequest(BaseModel):
    """One ticket to classify."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(
        min_length=1,
        max_length=DEFAULT_MAX_TEXT_CHARS,
        description=f"Ticket text, 1 to {DEFAULT_MAX_TEXT_CHARS} characters, not only whitespace.",
    )

    _check_text = field_validator("text")(_not_blank)


TicketText = Annotated[str, StringConstraints(min_length=1, max_length=DEFAULT_MAX_TEXT_CHARS)]


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
            if not text.strip():
                raise ValueError(f"texts[{index}] is empty or only whitespace")
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


class ModelVersionPublic(BaseModel):
    """The version this replica serves."""

    name: str
    version: str
    alias: str
    run_id: str | None
    loaded_at: datetime


class LoadFailurePublic(BaseModel):
    """A version this replica refused to serve."""

    version: str
    alias: str
    error: str
    at: datetime


class HealthPublic(BaseModel):
    """Liveness: the process answers, plus what it serves and what failed to load."""

    status: Literal["ok", "degraded"]
    model: ModelVersionPublic | None
    challenger: ModelVersionPublic | None
    load_errors: list[LoadFailurePublic]
    registry_error: str | None
    flags: dict[str, bool]
    flag_error: str | None


class ReadyPublic(BaseModel):
    """Readiness: a model is loaded."""

    ready: bool
    version: str | None


class FeatureFlagsPublic(BaseModel):
    """Runtime switches shared by every replica."""

    auto_apply_enabled: bool


class FeatureFlagsUpdate(BaseModel):
    """A flag change; the reason goes into the audit history."""

    model_config = ConfigDict(extra="forbid", strict=True)

    auto_apply_enabled: bool
    reason: str | None = Field(None, max_length=500)


class FeedbackRequest(BaseModel):
    """The agent's correction: the ground truth for accuracy and retraining."""

    model_config = ConfigDict(extra="forbid", strict=True)

    category: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    priority: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16)] | None
    ) = None


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


class ReloadPublic(BaseModel):
    """What a forced reload did, per alias."""

    results: list[dict[str, object]]


class WebhookAck(BaseModel):
    """A verified delivery was accepted."""

    accepted: bool
    action: str
