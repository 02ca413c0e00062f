"""The ``replicast`` command line: one typer app, one module per group of commands."""

from __future__ import annotations

import typer

from serving import (
    cli_backtest,
    cli_decisions,
    cli_ingest,
    cli_serve,
    cli_simulate,
    cli_sources,
    cli_sync,
    cli_train,
)

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

for module in (
    cli_simulate,
    cli_ingest,
    cli_train,
    cli_backtest,
    cli_decisions,
    cli_sync,
    cli_serve,
    cli_sources,
):
    module.register(app)


def main() -> None:
    app()
