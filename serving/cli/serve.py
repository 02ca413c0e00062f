"""`replicast serve`: the HTTP API under uvicorn (one app in this process, or N workers)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import tempfile
from typing import Annotated, Any

import typer

from forecasting.errors import ConfigError
from forecasting.settings import get_settings
from serving.cli import APP_OPTIONS
from serving.cli.errors import handle_errors
from serving.cli.render import err_console

logger = logging.getLogger(__name__)

#: Seconds uvicorn waits for in-flight requests after SIGTERM before closing them.
GRACEFUL_SHUTDOWN_S = 30


app = typer.Typer(**APP_OPTIONS)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` listens on this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.command("serve")
@handle_errors
def serve(
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to bind. Default: settings serve.host (127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", min=1, max=65535, help="Port. Default: settings serve.port."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            help="Worker processes. Default: settings serve.workers (1). Each loads the "
            "champion; /metrics on any of them gives the figures of all.",
        ),
    ] = None,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="Dev mode: mutating routes are open when no API token is set. "
            "Never in production.",
        ),
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", help="Log level of the service.")
    ] = "INFO",
) -> None:
    """Serve forecasts, sizing plans, priorities and sync runs over HTTP.

    Loads the MLflow champion (replicast-load) at start and refreshes it every
    serve.refresh_seconds; the docs are at /docs. Mutating routes (sync runs,
    /admin/reload) need REPLICAST_SERVE__API_TOKEN; without it they are not
    mounted unless --dev is given. SIGTERM lets in-flight requests finish.
    """
    # deferred: uvicorn, FastAPI and prometheus_client, not for --help
    import uvicorn

    from serving.http.app import WORKER_LOG_LEVEL_ENV, create_app
    from serving.http.metrics import MULTIPROC_ENV
    from serving.http.server import DrainingServer

    settings = get_settings()
    if dev:
        serve_cfg = settings.serve.model_copy(update={"dev_mode": True})
        settings = settings.model_copy(update={"serve": serve_cfg})
    serve_cfg = settings.serve
    if serve_cfg.api_token and not serve_cfg.api_token.strip():
        raise ConfigError("serve.api_token: only whitespace; set a real token or none")
    if not serve_cfg.api_token and not serve_cfg.dev_mode:
        err_console.print(
            "[yellow]warning:[/] no REPLICAST_SERVE__API_TOKEN: sync runs and /admin "
            "routes are disabled (set a token, or pass --dev on a workstation)"
        )
    bind_host = host or serve_cfg.host
    if serve_cfg.dev_mode and not serve_cfg.api_token and not is_loopback(bind_host):
        raise ConfigError(
            f"--dev without an API token on --host {bind_host}: the mutating routes (sync "
            "runs, /admin) would be open to the network; bind 127.0.0.1 or set "
            "REPLICAST_SERVE__API_TOKEN"
        )
    bind_port = port or serve_cfg.port
    err_console.print(f"replicast API on http://{bind_host}:{bind_port} (docs at /docs)")
    options: dict[str, Any] = {
        "host": bind_host,
        "port": bind_port,
        "log_config": None,
        "log_level": log_level.lower(),
        "access_log": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "proxy_headers": False,
    }
    n_workers = workers or serve_cfg.workers
    if n_workers > 1:  # uvicorn's supervisor; each worker shuts down gracefully itself
        # one metrics directory for all workers (theirs if the environment names one)
        given = os.environ.get(MULTIPROC_ENV)
        with (
            contextlib.nullcontext(given)
            if given
            else tempfile.TemporaryDirectory(prefix="replicast-metrics-")
        ) as shared:
            # uvicorn spawns workers from an import string: they read the settings
            # themselves, and the command's own options reach them through the environment
            os.environ[MULTIPROC_ENV] = shared
            os.environ[WORKER_LOG_LEVEL_ENV] = log_level.upper()
            if dev:
                os.environ["REPLICAST_SERVE__DEV_MODE"] = "true"
            uvicorn.run(
                "serving.http.app:create_worker_app", factory=True, workers=n_workers, **options
            )
        return
    service = create_app(settings, log_level=log_level.upper())
    server = DrainingServer(uvicorn.Config(service, **options))
    server.run()
    if not server.started:
        raise typer.Exit(3)
