"""Operator routes (bearer token)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from forecasting.errors import ModelNotFoundError
from serving.http.deps import ModelCacheDep, TokenRequired
from serving.http.schemas import ReloadResult, error_responses

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[TokenRequired])


@router.post(
    "/reload",
    response_model=ReloadResult,
    summary="Reload the champion from the registry now",
    responses=error_responses(401, 503),
)
async def reload(cache: ModelCacheDep) -> ReloadResult:
    result = await asyncio.to_thread(cache.refresh)
    if result.outcome == "failed":
        raise ModelNotFoundError(
            f"reload failed, still serving version {result.version}: {result.detail}"
        )
    return ReloadResult(
        outcome=result.outcome, version=result.version, previous_version=result.previous_version
    )
