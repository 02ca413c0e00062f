"""Lag features: plain lags and seasonal lags (a day and a week back), per series.

Row ``t`` of a series gets ``lag_k = y[t - k]``: only past values, so a model
reading row ``t`` never sees ``y[t]`` or later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from forecasting.forecaster import SERIES, TS, Y


def take(y: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``y[index]`` with NaN where ``index`` falls outside ``0..len(y)-1``."""
    idx = np.asarray(index)
    inside = (idx >= 0) & (idx < y.size)
    out = np.full(idx.shape, np.nan)
    out[inside] = y[idx[inside]]
    return out


def lag_features(frame: pd.DataFrame, lags: Iterable[int]) -> pd.DataFrame:
    """Add ``lag_<k>`` columns (``y`` shifted ``k`` rows within each series).

    Args:
        frame: long frame ``series_id, ts, y``, regular per series.
        lags: positive shifts in steps.

    Returns:
        A new frame (sorted by series and time) with one column per lag.
    """
    lags = list(lags)
    if any(k < 1 for k in lags):
        raise ValueError(f"lags must be >= 1 (past values only), got {lags}")
    out = frame.sort_values([SERIES, TS], kind="stable").reset_index(drop=True)
    grouped = out.groupby(SERIES, sort=False)[Y]
    return out.assign(**{f"lag_{k}": grouped.shift(k) for k in lags})


def seasonal_lag_features(
    frame: pd.DataFrame, season_lengths: Mapping[str, int] | None = None
) -> pd.DataFrame:
    """Add ``lag_<name>`` columns: the value one season back (``lag_day``, ``lag_week``).

    Args:
        frame: long frame ``series_id, ts, y``, regular per series.
        season_lengths: name -> steps; defaults to hourly ``{"day": 24, "week": 168}``.
    """
    seasons = dict(season_lengths or {"day": 24, "week": 168})
    out = frame.sort_values([SERIES, TS], kind="stable").reset_index(drop=True)
    grouped = out.groupby(SERIES, sort=False)[Y]
    return out.assign(**{f"lag_{name}": grouped.shift(m) for name, m in seasons.items()})
