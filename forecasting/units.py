"""Byte sizes and rates from text (``40m``, ``40MiB``, ``1.5GB``) through ``pydantic.ByteSize``."""

from __future__ import annotations

from pydantic import ByteSize, TypeAdapter, ValidationError

from forecasting.errors import ConfigError

_BYTES: TypeAdapter[ByteSize] = TypeAdapter(ByteSize)


def parse_size(text: str | int | float, *, what: str = "size") -> int:
    """Bytes in ``text``: a number with an optional SI or IEC unit (``500MB``, ``2GiB``, ``40m``).

    Raises:
        ConfigError: not a size, or negative; the message names ``what``.
    """
    if isinstance(text, str):
        text = text.strip()
        if text.lower().endswith("/s") or text.lower().endswith("ps"):
            text = text[:-2]
    try:
        value = int(_BYTES.validate_python(text))
    except ValidationError:
        raise ConfigError(
            f"{what}: cannot parse {text!r}; use a number with an optional unit "
            f"such as 40MiB, 500MB, 1GiB"
        ) from None
    if value < 0:
        raise ConfigError(f"{what}: must be >= 0, got {text!r}")
    return value


def parse_rate(text: str | int | float, *, what: str = "--bwlimit") -> float:
    """A bandwidth such as ``"40MiB"`` or ``"40MiB/s"`` in bytes per second (> 0)."""
    rate = parse_size(text, what=what)
    if rate <= 0:
        raise ConfigError(f"{what}: must be > 0, got {text!r}")
    return float(rate)
