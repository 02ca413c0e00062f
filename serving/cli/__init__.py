"""The ``replicast`` command line: a lazy root that loads a command's module only when it runs.

``replicast --help`` lists the commands from :data:`COMMANDS` without importing any of
them, and ``replicast sync`` imports the sync module alone: pandas, MLflow, Prophet and
the rest load only in the commands that use them. Each module under ``serving/cli/``
defines its commands on ``app``, a :class:`typer.Typer` of its own.
"""

from __future__ import annotations

import functools
import importlib
from typing import Annotated, Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup

#: The options of every command module's ``typer.Typer``: plain (click) help text. Rich
#: help imports ~0.3 s of modules on every ``--help``; the commands' output stays rich.
APP_OPTIONS: dict[str, Any] = {"add_completion": False, "rich_markup_mode": None}


class Entry(NamedTuple):
    module: str
    help: str


#: command name -> the module that defines it and its one-line help (shown by --help).
COMMANDS: dict[str, Entry] = {
    "simulate": Entry(
        "serving.cli.simulate", "Generate a deterministic fleet: node metrics and segment access."
    ),
    "ingest": Entry(
        "serving.cli.ingest",
        "Validate files or source URIs into the lake; bad rows go to quarantine.",
    ),
    "train": Entry(
        "serving.cli.train",
        "Backtest every model, register the champion in MLflow, write forecasts.",
    ),
    "forecast": Entry(
        "serving.cli.train",
        "Load the champion and write the next horizon of forecasts to the lake.",
    ),
    "report": Entry("serving.cli.train", "Show the latest training run's leaderboard from MLflow."),
    "backtest": Entry(
        "serving.cli.backtest", "Backtest every model on univariate series files (CSV or Parquet)."
    ),
    "plan": Entry(
        "serving.cli.decisions",
        "Write sizing plans and priority queues; --json adds decision backtests.",
    ),
    "backtest-sizing": Entry(
        "serving.cli.decisions", "Replay node-sizing policies on demand series files."
    ),
    "backtest-priority": Entry(
        "serving.cli.decisions", "Stale-read exposure of replication orderings on an access trace."
    ),
    "sync": Entry(
        "serving.cli.sync", "Replicate segments hot-first: atomic, resumable, within budgets."
    ),
    "serve": Entry("serving.cli.serve", "Serve the HTTP API (FastAPI + uvicorn)."),
    "collect": Entry(
        "serving.cli.sources",
        "Sample PostgreSQL (primary and replicas) into the lake continuously.",
    ),
    "schedule": Entry(
        "serving.cli.jobs", "Run the batch jobs at their cron times (--list: next runs)."
    ),
    "run": Entry("serving.cli.jobs", "Run one batch job now."),
}


class LazyGroup(TyperGroup):
    """A typer group whose commands are imported on first use, listed from :data:`COMMANDS`."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if self._listing:  # the root's --help: name and help, no import
            return TyperCommand(cmd_name, help=entry.help, short_help=entry.help)
        return load_command(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def load_command(name: str) -> Any:
    """Import the module of command ``name`` and return its click command."""
    module = importlib.import_module(COMMANDS[name].module)
    group = typer.main.get_group(module.app)
    command = group.commands[name]
    command.name = name
    command.invoke = _with_logging(command.invoke)  # type: ignore[method-assign]
    return command


def _with_logging(invoke: Any) -> Any:
    """``command.invoke``, configuring the logs first: only a command that runs pays for
    that (``replicast CMD --help`` exits while its options are parsed, before invoke)."""

    @functools.wraps(invoke)
    def run(ctx: Any) -> Any:
        from serving.logs import configure_logging

        params = ctx.find_root().params
        configure_logging(
            str(params.get("log_level") or "INFO").upper(), json=params.get("log_json")
        )
        return invoke(ctx)

    return run


app = typer.Typer(
    name="replicast",
    cls=LazyGroup,
    help=(
        "Forecast load on replicated databases, size each region's nodes, and "
        "replicate the hottest segments first.\n\n"
        "Settings come from replicast.toml and REPLICAST_* environment variables; "
        "with neither, embedded defaults use ./var for the lake and MLflow."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help, as APP_OPTIONS
)


@app.callback()
def _root(
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = "INFO",
    log_json: Annotated[
        bool | None,
        typer.Option(
            "--log-json/--log-text", help="JSON log lines (default when stderr is not a TTY)."
        ),
    ] = None,
) -> None:
    """Forecast load, size nodes, replicate hot segments first."""
    # the options are read by the command that runs (see _with_logging)


def main() -> None:
    app()
