"""One ticket's answer as the service returns it, and its JSON encoding.

``ClassificationPublic`` (``boltit.serving.schemas``) documents the response in OpenAPI;
answers themselves are plain slotted dataclasses encoded by orjson in the same field order,
which skips building and serialising a pydantic model per ticket on the hot path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class Classification:
    """What the model said, what was done with it, and why (fields as in the API)."""

    ticket_id: str
    category: str
    priority: str | None
    confidence: float
    model_version: str
    auto_applied: bool
    reason: str
    latency_ms: float


def classification_json(answer: Classification) -> bytes:
    """The ``POST /classify`` response body."""
    return orjson.dumps(answer)


def batch_json(answers: Sequence[Classification]) -> bytes:
    """The ``POST /classify/batch`` response body."""
    return orjson.dumps({"results": answers})
