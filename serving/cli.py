"""The ``replicast`` command line: one typer app, one module per group of commands."""

from __future__ import annotations

import typer

from serving import (
    cli_backtest,
    cli_decisions,
    cli_ingest,
    cli_jobs,
    cli_serve,
    cli_simulate,
    cli_sources,
    cli_sync,
    cli_train,
)
from serving.logs import configure_logging

app = typer.Typer(
    name="replicast",
    help=(
        "Forecast load on replicated databases, size each region's nodes, and "
        "replicate the hottest segments first.\n\n"
        "Settings come from replicast.toml and REPLICAST_* environment variables; "
        "with neither, embedded defaults use ./var for the lake and MLflow."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
    log_json: bool | None = typer.Option(
        None, "--log-json/--log-text", help="JSON log lines (default when stderr is not a TTY)."
    ),
) -> None:
    """Forecast load, size nodes, replicate hot segments first."""
    configure_logging(log_level.upper(), json=log_json)


for module in (
    cli_simulate,
    cli_ingest,
    cli_train,
    cli_backtest,
    cli_decisions,
    cli_sync,
    cli_serve,
    cli_sources,
    cli_jobs,
):
    module.register(app)


def main() -> None:
    app()
