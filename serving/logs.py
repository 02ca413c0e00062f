"""Structured logs: JSON lines (or readable lines on a terminal) through structlog.

Every record is redacted (:func:`forecasting.redact.redact`): its message when it is
created (so every handler, test captures included, sees it masked) and the final line
of the handler (tracebacks and structlog event dicts included). JSON lines carry a
traceback as text in ``exception``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from forecasting.redact import redact

_base_factory = logging.getLogRecordFactory()
_TRACEBACKS = logging.Formatter()


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """The default record factory, with a string message and its args redacted.

    A traceback is formatted and redacted here too (``exc_text``, which every stdlib
    formatter prints as it is: MLflow's own stderr handler included).
    """
    record = _base_factory(*args, **kwargs)
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(_TRACEBACKS.formatException(record.exc_info))
    if isinstance(record.msg, str):
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # bad format args: the handler reports them
            return record
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
    return record


def install_redaction() -> None:
    """Redact every log record of the process from now on (idempotent)."""
    logging.setLogRecordFactory(_redacting_factory)


class _CurrentStderr(logging.StreamHandler):
    """A stream handler writing to whatever ``sys.stderr`` is when a record is emitted.

    A handler bound to the ``sys.stderr`` of configuration time keeps writing to it after
    it was swapped and closed (test runners and progress displays swap it), and threads
    that log late (a Dask client's loop) then hit a closed file.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201 - the stream of StreamHandler
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # StreamHandler.__init__ assigns it
        pass


def configure_logging(level: str = "INFO", json: bool | None = None) -> None:
    """Route stdlib ``logging`` and structlog through one renderer; call once per process.

    structlog is imported and configured on the first record emitted (a command that
    logs nothing never loads it: ~0.1 s of start-up).
    """
    install_redaction()
    if json is None:
        json = not sys.stderr.isatty()
    handler = _CurrentStderr()
    handler.setFormatter(_LazyFormatter(json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("cmdstanpy", "prophet", "alembic", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _LazyFormatter(logging.Formatter):
    """Formats through structlog's ``ProcessorFormatter``, built on the first record
    (the handler's lock serialises ``format``)."""

    def __init__(self, json: bool) -> None:
        super().__init__()
        self._json = json
        self._inner: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._inner is None:
            self._inner = _structlog_formatter(self._json)
        return redact(self._inner.format(record))


def _structlog_formatter(json: bool) -> logging.Formatter:
    """Configure structlog and return the formatter of the stdlib handler."""
    import structlog

    def exception_text(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        """``exc_info`` rendered as redacted text in ``exception`` (JSON cannot hold it)."""
        event_dict = structlog.processors.format_exc_info(logger, method, event_dict)
        if isinstance(event_dict.get("exception"), str):
            event_dict["exception"] = redact(event_dict["exception"])
        return event_dict

    render: list[Any] = (
        [exception_text, structlog.processors.JSONRenderer()]
        if json
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
    )
