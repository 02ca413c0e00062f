"""The one mapping of replicast errors to HTTP status codes."""

from __future__ import annotations

import pytest

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
from serving.http.errors import status_code


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (UnknownKeyError("x"), 404),
        (DataValidationError("x"), 422),
        (ConfigError("x"), 422),
        (PathEscapeError("x"), 422),
        (ModelNotFoundError("x"), 503),
        (NotFittedError("x"), 503),
        (SourceError("x"), 502),
        (ReplicastError("x"), 500),
    ],
)
def test_status_codes(exc: ReplicastError, code: int) -> None:
    assert status_code(exc) == code


def test_subclass_maps_like_its_parent() -> None:
    class MissingSeries(UnknownKeyError):
        pass

    assert status_code(MissingSeries("orders/mars")) == 404
