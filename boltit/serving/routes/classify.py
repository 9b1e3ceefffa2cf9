"""``/classify``: predict, decide auto-apply, store, answer.

These routes are the contract (OpenAPI, validation, every error answer). A well-formed
single-ticket ``POST /classify`` is usually answered by ``boltit.serving.fast_classify``
before FastAPI's router, calling the same ``ServingService.classify`` and encoding the same
bytes; anything it does not take as the happy path comes here.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from boltit.serving.auth import ClassifyClient
from boltit.serving.classification import batch_json, classification_json
from boltit.serving.deps import ServiceDep
from boltit.serving.errors import too_long
from boltit.serving.schemas import (
    BatchClassificationPublic,
    BatchClassifyRequest,
    ClassificationPublic,
    ClassifyRequest,
)

router = APIRouter(tags=["classify"])


@router.post("/classify", response_model=ClassificationPublic)
async def classify(body: ClassifyRequest, service: ServiceDep, _client: ClassifyClient) -> Response:
    """Classify one ticket, store it, and say whether it was auto-applied and why."""
    limit = service.settings.max_text_chars
    if len(body.text) > limit:
        raise too_long("text", len(body.text), limit)
    (result,) = await service.classify([body.text])
    return Response(classification_json(result), media_type="application/json")


@router.post("/classify/batch", response_model=BatchClassificationPublic)
async def classify_batch(
    body: BatchClassifyRequest, service: ServiceDep, _client: ClassifyClient
) -> Response:
    """Classify several tickets in one call; every one is stored."""
    settings = service.settings
    if len(body.texts) > settings.max_batch_size:
        raise too_long("texts", len(body.texts), settings.max_batch_size, unit="tickets")
    for index, text in enumerate(body.texts):
        if len(text) > settings.max_text_chars:
            raise too_long(f"texts[{index}]", len(text), settings.max_text_chars)
    results = await service.classify(body.texts)
    return Response(batch_json(results), media_type="application/json")
