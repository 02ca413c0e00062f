"""Named FastAPI dependencies: settings, the serving model, the lake, the bearer token.

Every dependency is ``async def`` so FastAPI runs it on the event loop (a plain
``def`` dependency would cost a thread-pool hop on the hot path). Objects come
from ``app.state``, set up by :func:`serving.http.app.create_app`.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from forecasting.lake import Lake
from forecasting.settings import Settings
from serving.http.metrics import ServiceMetrics
from serving.http.services.model_cache import ModelCache, ServingModel

_bearer = HTTPBearer(
    auto_error=False,
    description="The API token of settings.serve.api_token (REPLICAST_SERVE__API_TOKEN)",
)


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


async def get_model_cache(request: Request) -> ModelCache:
    return request.app.state.model_cache


async def get_model(request: Request) -> ServingModel:
    """The serving champion; 503 (``ModelNotFoundError``) when none is loaded."""
    return request.app.state.model_cache.require()


async def get_lake(request: Request) -> Lake:
    return request.app.state.lake


async def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let the request through only with ``Authorization: Bearer <api token>``.

    Compared in constant time. In dev mode with no token configured every request
    passes (the app factory refuses to mount mutating routes otherwise).
    """
    expected: str = request.app.state.settings.serve.api_token
    if not expected and request.app.state.settings.serve.dev_mode:
        return
    given = credentials.credentials if credentials is not None else ""
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong bearer token (Authorization: Bearer <api token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelCacheDep = Annotated[ModelCache, Depends(get_model_cache)]
ModelDep = Annotated[ServingModel, Depends(get_model)]
LakeDep = Annotated[Lake, Depends(get_lake)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
#: Add to a route or router: ``dependencies=[TokenRequired]``.
TokenRequired = Depends(require_token)
