"""One place that turns replicast errors into a clear one-line message and an exit code."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from forecasting.errors import (
    ConfigError,
    DataValidationError,
    ModelNotFoundError,
    ReplicastError,
    SourceError,
    UnknownKeyError,
)
from forecasting.redact import redact

P = ParamSpec("P")
R = TypeVar("R")

EXIT_CODES: dict[type[ReplicastError], int] = {
    ConfigError: 3,
    DataValidationError: 4,
    ModelNotFoundError: 5,
    UnknownKeyError: 6,
    SourceError: 7,
}


def exit_code(exc: ReplicastError) -> int:
    for kind, code in EXIT_CODES.items():
        if isinstance(exc, kind):
            return code
    return 1


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command: a ``ReplicastError`` prints ``error: <message>`` and exits non-zero.

    An ``OSError`` prints ``error: <path>: <reason>`` and exits 1.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ReplicastError as exc:
            from serving.cli.render import err_console  # rich loads only to print an error

            err_console.print(f"[bold red]error:[/] {redact(str(exc))}", highlight=False)
            raise typer.Exit(exit_code(exc)) from None
        except OSError as exc:  # a file system refusal (e.g. the lake cannot be made): one line
            from serving.cli.render import err_console

            where = f"{exc.filename}: " if exc.filename is not None else ""
            err_console.print(
                f"[bold red]error:[/] {redact(f'{where}{exc.strerror or exc}')}", highlight=False
            )
            raise typer.Exit(1) from None

    return wrapper
