from __future__ import annotations

import pytest

from forecasting.errors import ConfigError
from forecasting.units import MAX_BYTES, parse_rate, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [("40MiB", 40 * 2**20), ("1.1KB", 1100), ("1.5KiB", 1536), ("0", 0), ("40MiB/s", 40 * 2**20)],
)
def test_parse_size_reads_units(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("  ", "empty"),
        ("/s", "empty"),
        ("1.5B", "whole number"),
        ("99999999999999999999999EiB", "too large"),
        ("9223372036854775808", "too large"),
        (2**64, "too large"),
        ("fast", "cannot parse"),
    ],
)
def test_parse_size_refuses_empty_fractional_and_huge(text: str | int, why: str) -> None:
    with pytest.raises(ConfigError, match=f"--budget-bytes: .*{why}"):
        parse_size(text, what="--budget-bytes")


def test_parse_size_accepts_the_largest_int64() -> None:
    assert parse_size(str(MAX_BYTES)) == MAX_BYTES


@pytest.mark.parametrize("text", ["", "0", "99999999999999999999999EiB/s"])
def test_parse_rate_refuses_empty_zero_and_huge(text: str) -> None:
    with pytest.raises(ConfigError, match="--bwlimit"):
        parse_rate(text)
