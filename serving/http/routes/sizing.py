"""POST /v1/sizing — node plans per cluster/region from the champion's forecasts."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from serving.http.deps import ModelDep, SettingsDep
from serving.http.schemas import SizingRequest, SizingResponse, error_responses
from serving.http.services.sizing_service import plan

router = APIRouter(prefix="/v1", tags=["decisions"])


@router.post(
    "/sizing",
    response_model=SizingResponse,
    summary="Nodes of which type each region needs over the horizon, with reasons and cost",
    responses=error_responses(404, 413, 422, 503),
)
async def sizing(body: SizingRequest, model: ModelDep, settings: SettingsDep) -> SizingResponse:
    """Forecast every region of the clusters and size it (runs off the event loop)."""
    payload = await asyncio.to_thread(plan, model, settings, body)
    return SizingResponse.model_validate(payload)
