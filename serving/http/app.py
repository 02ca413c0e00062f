"""The FastAPI application factory: ``create_app(settings) -> FastAPI``.

Nothing is built at import. ``uvicorn --factory serving.http.app:create_app`` (what
``replicast serve`` runs) calls the factory in each worker. The lifespan loads
the champion in the background, refreshes it every
``settings.serve.refresh_seconds`` and, on shutdown, cancels the sync runs this
worker executes. Sync run state lives in ``<data_dir>/state/sync_runs.db``, which
every worker shares (any worker answers for any run; one run per target).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from forecasting.errors import ConfigError
from forecasting.lake import Lake
from forecasting.settings import Settings, get_settings
from serving.http.errors import install_error_handlers
from serving.http.metrics import ServiceMetrics
from serving.http.middleware import RequestContextMiddleware, build_access_log
from serving.http.routes import admin, forecast, health, priorities, sizing, sync
from serving.http.services.model_cache import (
    Loader,
    ModelCache,
    VersionProbe,
    registry_loader,
    registry_probe,
)
from serving.http.services.priority_view import PriorityQueueView
from serving.http.services.sync_runs import SyncRunManager
from serving.logs import configure_logging

logger = logging.getLogger(__name__)

DESCRIPTION = """
Forecasts of database load (quantiles from the MLflow champion), node sizing plans,
replication priorities and sync runs.

Mutating routes (`POST /v1/sync/runs`, `DELETE /v1/sync/runs/{id}`, `POST /admin/reload`)
need `Authorization: Bearer <token>` with the token of `REPLICAST_SERVE__API_TOKEN`.
"""


def mutating_routes_enabled(settings: Settings) -> bool:
    """Mutating routes are mounted only with a token, or in dev mode."""
    return bool(settings.serve.api_token) or settings.serve.dev_mode


#: Largest request body accepted (413 beyond): 5000 history points fit easily.
MAX_BODY_BYTES = 1_000_000

#: Retry interval (seconds) while no champion is loaded at all.
FIRST_LOAD_RETRY_S = 5.0


async def _refresh_forever(cache: ModelCache, every: float) -> None:
    await asyncio.to_thread(cache.refresh)
    while True:
        await asyncio.sleep(every if cache.current is not None else min(every, FIRST_LOAD_RETRY_S))
        await asyncio.to_thread(cache.refresh)


def create_app(
    settings: Settings | None = None,
    *,
    configure_logs: bool = True,
    log_level: str = "INFO",
    loader: Loader = registry_loader,
    probe: VersionProbe | None = registry_probe,
) -> FastAPI:
    """Build the replicast HTTP service.

    Args:
        settings: defaults to :func:`forecasting.settings.get_settings`.
        configure_logs: set up structured logging (off in tests that capture logs).
        log_level: the level of those logs.
        loader: loads the champion (default: the MLflow registry of ``settings``).
        probe: returns the champion's version cheaply, or None to always load.

    Raises:
        ConfigError: the settings are unusable (e.g. a token that is only whitespace).
    """
    settings = settings or get_settings()
    if settings.serve.api_token and not settings.serve.api_token.strip():
        raise ConfigError("serve.api_token: only whitespace; set a real token or leave it empty")
    if configure_logs:
        configure_logging(log_level)
    metrics = ServiceMetrics()
    cache = ModelCache(settings, metrics, loader=loader, probe=probe)
    sync_runs = SyncRunManager(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        refresher = asyncio.create_task(
            _refresh_forever(cache, settings.serve.refresh_seconds), name="champion-refresh"
        )
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            await asyncio.to_thread(sync_runs.shutdown)
            metrics.worker_exit()

    app = FastAPI(
        title="replicast",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.settings = settings
    app.state.draining = False  # set by serving.http.server.DrainingServer on SIGTERM
    app.state.metrics = metrics
    app.state.model_cache = cache
    app.state.lake = Lake(settings.lake_dir)
    app.state.priority_view = PriorityQueueView(app.state.lake)
    app.state.sync_runs = sync_runs
    install_error_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        access_log=build_access_log() if configure_logs else None,
        state=app.state,
    )
    app.include_router(health.router)
    app.include_router(forecast.router)
    app.include_router(sizing.router)
    app.include_router(priorities.router)
    if mutating_routes_enabled(settings):
        app.include_router(sync.router)
        app.include_router(admin.router)
    else:
        logger.warning(
            "no API token configured (REPLICAST_SERVE__API_TOKEN) and not in dev mode: "
            "mutating routes (sync runs, admin) are disabled"
        )
    return app


#: Environment of ``replicast serve --workers N``: uvicorn spawns each worker from an
#: import string, so the command's own options reach the workers through these.
WORKER_LOG_LEVEL_ENV = "REPLICAST_SERVE_LOG_LEVEL"


def create_worker_app() -> FastAPI:
    """The app of one ``serve --workers N`` worker process (settings from file and env)."""
    return create_app(log_level=os.environ.get(WORKER_LOG_LEVEL_ENV, "INFO"))
