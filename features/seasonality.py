"""Season lengths in steps, derived from a pandas frequency alias."""

from __future__ import annotations

from typing import Literal

import pandas as pd

from forecasting.errors import ConfigError

Period = Literal["day", "week"]
_PERIODS: dict[Period, pd.Timedelta] = {"day": pd.Timedelta(days=1), "week": pd.Timedelta(weeks=1)}


def season_length(freq: str, period: Period) -> int:
    """Steps of ``freq`` in one ``period``: ``("1h", "day") -> 24``, ``("1h", "week") -> 168``.

    Raises:
        ConfigError: ``freq`` is not a fixed pandas frequency or does not divide the period.
    """
    try:
        # pandas takes a fixed (Tick) offset here; pandas-stubs do not list offsets
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"forecast.freq={freq!r}: not a fixed pandas frequency ({exc})") from exc
    if step <= pd.Timedelta(0):
        raise ConfigError(f"forecast.freq={freq!r}: must be a positive duration")
    steps = _PERIODS[period] / step
    if steps < 1 or abs(steps - round(steps)) > 1e-9:
        raise ConfigError(
            f"forecast.freq={freq!r} does not divide one {period}; use e.g. '1h', '30min', '15min'"
        )
    return int(round(steps))
