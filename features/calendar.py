"""Calendar features in each series' local time.

Series ids are ``"<cluster>/<region>"``; the caller passes the timezones as a
mapping keyed by series id or by region name (the part after ``/``), e.g.
``{"cn-north": "Asia/Shanghai"}``. Unknown series use ``default_tz``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from forecasting.forecaster import SERIES, TS


def timezone_of(
    series_id: str, timezones: Mapping[str, str] | None, default_tz: str = "UTC"
) -> str:
    """The timezone of ``series_id``: by full id, then by region (after the last ``/``)."""
    if not timezones:
        return default_tz
    if series_id in timezones:
        return timezones[series_id]
    return timezones.get(series_id.rsplit("/", 1)[-1], default_tz)


def local_calendar(
    ts: pd.DatetimeIndex | pd.Series, tz: str
) -> dict[str, NDArray[np.integer[Any]]]:
    """``hour``, ``dayofweek`` (Mon=0) and ``is_weekend`` of UTC timestamps in zone ``tz``."""
    index = pd.DatetimeIndex(ts)
    if index.tz is None:
        index = index.tz_localize("UTC")
    local = index.tz_convert(tz)
    dow = local.dayofweek.to_numpy()
    return {
        "hour": local.hour.to_numpy(),
        "dayofweek": dow,
        "is_weekend": (dow >= 5).astype(int),
    }


def calendar_features(
    frame: pd.DataFrame, timezones: Mapping[str, str] | None = None, default_tz: str = "UTC"
) -> pd.DataFrame:
    """Add ``hour``, ``dayofweek`` and ``is_weekend`` in each series' local time.

    Args:
        frame: long frame with ``series_id`` and a UTC ``ts``.
        timezones: series id or region name -> IANA timezone.
        default_tz: zone of series the mapping does not name.
    """
    out = frame.copy()
    for col in ("hour", "dayofweek", "is_weekend"):
        out[col] = 0
    for sid, idx in out.groupby(SERIES, sort=False).groups.items():
        cal = local_calendar(out.loc[idx, TS], timezone_of(str(sid), timezones, default_tz))
        for col, values in cal.items():
            out.loc[idx, col] = values
    return out
