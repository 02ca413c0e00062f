"""Byte sizes and rates from text (``40m``, ``40MiB``, ``1.5GB``) through ``pydantic.ByteSize``."""

from __future__ import annotations

import re
from decimal import Decimal

from pydantic import ByteSize, TypeAdapter, ValidationError

from forecasting.errors import ConfigError

_BYTES: TypeAdapter[ByteSize] = TypeAdapter(ByteSize)
_SIZE_RE = re.compile(ByteSize.byte_string_re.pattern)
#: The largest size or rate accepted (a signed 64-bit integer: what files and rsync count in).
MAX_BYTES = 2**63 - 1


def parse_size(text: str | int | float, *, what: str = "size") -> int:
    """Bytes in ``text``: a number with an optional SI or IEC unit (``500MB``, ``2GiB``, ``40m``).

    Raises:
        ConfigError: empty, not a size, not a whole number of bytes, negative or above
            :data:`MAX_BYTES`; the message names ``what``.
    """
    if isinstance(text, str):
        text = text.strip()
        if text.lower().endswith("/s") or text.lower().endswith("ps"):
            text = text[:-2].strip()
        if not text:
            raise ConfigError(f"{what}: empty; give a number with an optional unit such as 40MiB")
        _check_whole(text, what)
    try:
        value = int(_BYTES.validate_python(text))
    except ValidationError:
        raise ConfigError(
            f"{what}: cannot parse {text!r}; use a number with an optional unit "
            f"such as 40MiB, 500MB, 1GiB"
        ) from None
    if value < 0:
        raise ConfigError(f"{what}: must be >= 0, got {text!r}")
    if value > MAX_BYTES:
        raise ConfigError(f"{what}: {text!r} is too large (at most {MAX_BYTES} bytes)")
    return value


def _check_whole(text: str, what: str) -> None:
    """Refuse a size that is a fraction of a byte (``1.5B``); ByteSize would truncate it."""
    match = _SIZE_RE.match(text)
    if match is None:
        return  # ByteSize reports it
    unit = (match[2] or "b").lower()
    multiplier = ByteSize.byte_sizes.get(unit)
    if (
        multiplier is not None
        and (exact := Decimal(match[1]) * int(multiplier)) != exact.to_integral_value()
    ):
        raise ConfigError(f"{what}: {text!r} is not a whole number of bytes")


def parse_rate(text: str | int | float, *, what: str = "--bwlimit") -> float:
    """A bandwidth such as ``"40MiB"`` or ``"40MiB/s"`` in bytes per second (> 0)."""
    rate = parse_size(text, what=what)
    if rate <= 0:
        raise ConfigError(f"{what}: must be > 0, got {text!r}")
    return float(rate)
