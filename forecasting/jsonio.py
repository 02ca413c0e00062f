"""JSON out through orjson: numpy arrays and scalars, datetimes, NaN/inf as null."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson

from forecasting.durable import write_bytes_atomic

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


def _fallback(value: object) -> object:
    if hasattr(value, "item"):  # numpy scalars of odd dtypes, pandas scalars
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def _finite(value: object) -> object:
    """Non-finite floats become None (orjson writes them as null, but be explicit in lists)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dumps(value: object, *, indent: bool = False) -> bytes:
    """``value`` as JSON bytes; NaN and infinities become ``null``."""
    option = _OPTIONS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(_finite(value), default=_fallback, option=option)


def write_json(path: Path, value: object) -> None:
    """Write ``value`` as indented JSON to ``path`` atomically (with a final newline)."""
    write_bytes_atomic(path, dumps(value, indent=True) + b"\n")


def loads(data: bytes | str) -> Any:
    """The value of JSON ``data`` (orjson)."""
    return orjson.loads(data)
