"""``/metrics``: Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from boltit.serving.deps import ServiceDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    """Requests, errors, latency, confidence, predictions per version, accuracy from feedback."""
    body = await run_in_threadpool(service.metrics.render)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
