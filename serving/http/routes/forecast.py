"""POST /v1/forecast — the hot path: inline prediction on the event loop, orjson out."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Response

from serving.http.deps import ModelDep
from serving.http.schemas import ForecastRequest, ForecastResponse, error_responses
from serving.http.services.forecast_service import forecast_payload

router = APIRouter(prefix="/v1", tags=["forecast"])

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC


@router.post(
    "/forecast",
    response_model=ForecastResponse,
    summary="Forecast quantiles of known series or of an ad-hoc history",
    responses=error_responses(404, 413, 422, 503),
)
async def forecast(body: ForecastRequest, model: ModelDep) -> Response:
    """Forecast with the serving champion; the response names the one version used.

    Runs inline (``async def``, no thread-pool hop): the model's array fast path
    takes well under a millisecond for one series.
    """
    payload = forecast_payload(model, body)
    return Response(orjson.dumps(payload, option=_JSON_OPTIONS), media_type="application/json")
