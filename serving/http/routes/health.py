"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from serving.http.deps import LakeDep, MetricsDep, ModelCacheDep
from serving.http.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="A champion model serves (503 only when none can)",
    description="200 while a model serves, with `degraded` saying what is wrong meanwhile "
    "(registry unreachable, a refused champion, a failed lake read); 503 when no model "
    "can serve or the lake cannot be read at all.",
    responses={503: {"model": Readiness, "description": "not ready; `reason` says why"}},
)
async def readyz(cache: ModelCacheDep, lake: LakeDep, response: Response) -> Readiness:
    state = cache.readiness()
    ready, reason = state.ready, state.reason
    if ready and not lake.root.is_dir():
        ready, reason = False, f"lake directory {lake.root} does not exist (ingest data first)"
    model = cache.current
    response.status_code = 200 if ready else 503
    return Readiness(
        ready=ready,
        reason=reason,
        degraded=state.degraded,
        model=model.name if model else None,
        model_version=model.version if model else None,
        registry_up=cache.registry_up,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "text exposition format"}},
)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=metrics.content_type)
