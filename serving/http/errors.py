"""The one mapping of replicast errors to HTTP responses.

Domain code raises the classes of :mod:`forecasting.errors`; this module turns
them into status codes and a small JSON body ``{"detail": ..., "error": ...}``.
Request validation errors keep FastAPI's shape (a list naming each field and
the reason). Anything unexpected is logged with its traceback and answered with
a clean 500 that carries the request id — a last resort, never a design.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from forecasting.errors import (
    ConfigError,
    DataValidationError,
    ModelNotFoundError,
    NotFittedError,
    PathEscapeError,
    ReplicastError,
    SourceError,
    UnknownKeyError,
)
from forecasting.redact import redact
from serving.http.services.series_cache import LakeReadError
from serving.http.services.sync_runs import RunConflictError

logger = logging.getLogger(__name__)

#: Most specific first; the first ``isinstance`` match wins.
STATUS_CODES: tuple[tuple[type[ReplicastError], int], ...] = (
    (UnknownKeyError, 404),
    (PathEscapeError, 422),
    (DataValidationError, 422),
    (ConfigError, 422),
    (ModelNotFoundError, 503),
    (NotFittedError, 503),
    (LakeReadError, 503),
    (SourceError, 502),
    (RunConflictError, 409),
)


def status_code(exc: ReplicastError) -> int:
    """The HTTP status a replicast error maps to (500 for an unmapped subclass)."""
    for kind, code in STATUS_CODES:
        if isinstance(exc, kind):
            return code
    return 500


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


async def _replicast_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ReplicastError)
    code = status_code(exc)
    detail = redact(str(exc))
    if code >= 500:
        logger.warning("request failed: %s: %s", type(exc).__name__, detail)
    headers = {"Retry-After": "5"} if code == 503 else None
    return JSONResponse(
        {"detail": detail, "error": type(exc).__name__}, status_code=code, headers=headers
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {
            "detail": "internal error; the server log has the details",
            "error": "InternalError",
            "request_id": _request_id(request),
        },
        status_code=500,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": errors, "error": "RequestValidationError"}, status_code=422)


def _allowed_methods(request: Request) -> str | None:
    """The documented methods of the path template ``request`` matches (for ``Allow``)."""
    app = request.app
    patterns = getattr(app.state, "_allow_patterns", None)
    if patterns is None:
        patterns = []
        for template, operations in app.openapi().get("paths", {}).items():
            regex = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            methods = sorted(m.upper() for m in operations)
            patterns.append((re.compile(f"^{regex}$"), ", ".join(methods)))
        app.state._allow_patterns = patterns
    for pattern, methods in patterns:
        if pattern.match(request.url.path):
            return methods
    return None


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 400:  # FastAPI could not decode the body (not UTF-8 JSON)
        return JSONResponse(
            {
                "detail": [{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}],
                "error": "RequestValidationError",
            },
            status_code=422,
        )
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = allowed
    return JSONResponse(
        {"detail": exc.detail, "error": "HTTPException"},
        status_code=exc.status_code,
        headers=headers or None,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app`` (call once, from the app factory)."""
    app.add_exception_handler(ReplicastError, _replicast_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
