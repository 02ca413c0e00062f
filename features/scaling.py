"""Per-series scale normalisation, so one global model fits series of any size.

At an origin ``t`` a series is described by its **level** (mean of the last
``level_window`` values) and its **spread** (mean absolute seasonal difference
over the last ``spread_window`` values, i.e. the in-sample seasonal-naive error
that MASE divides by; lag-1 differences when a season is not available yet).
A value ``v`` becomes ``(v - level) / spread``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from forecasting.forecaster import SERIES, TS, Y

SPREAD_FLOOR = 1e-3  # relative to |level|


def origin_scales(
    y: NDArray[np.float64],
    season_length: int = 24,
    level_window: int = 24,
    spread_window: int = 168,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Level and spread at every position of ``y`` (using values up to and including it).

    Returns:
        ``(level, spread)`` arrays of ``len(y)``; the spread is floored at
        ``SPREAD_FLOOR * |level|`` (and 1e-9) so flat series do not divide by zero.
    """
    s = pd.Series(np.asarray(y, dtype=float))
    level = s.rolling(level_window, min_periods=1).mean().ffill()
    seasonal = (s - s.shift(season_length)).abs().rolling(spread_window, min_periods=6).mean()
    lag1 = (s - s.shift(1)).abs().rolling(spread_window, min_periods=2).mean()
    spread = seasonal.fillna(lag1).ffill()
    level_a = level.to_numpy()
    floor = np.maximum(SPREAD_FLOOR * np.abs(np.nan_to_num(level_a)), 1e-9)
    spread_a = np.fmax(spread.to_numpy(), floor)
    spread_a[~np.isfinite(spread_a)] = floor[~np.isfinite(spread_a)]
    return np.nan_to_num(level_a), spread_a


def normalise(
    frame: pd.DataFrame, season_length: int = 24, level_window: int = 24, spread_window: int = 168
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scale each series by its level and spread at its last timestamp.

    Returns:
        ``(scaled, scales)``: ``scaled`` is ``frame`` with ``y`` replaced by the
        scale-free value; ``scales`` has ``series_id, level, spread``.
    """
    parts, rows = [], []
    for sid, part in frame.sort_values([SERIES, TS], kind="stable").groupby(SERIES, sort=True):
        y = part[Y].to_numpy(float)
        level, spread = origin_scales(y, season_length, level_window, spread_window)
        rows.append((sid, level[-1], spread[-1]))
        parts.append(part.assign(**{Y: (y - level[-1]) / spread[-1]}))
    scales = pd.DataFrame(rows, columns=[SERIES, "level", "spread"])
    return pd.concat(parts, ignore_index=True), scales


def denormalise(values: pd.DataFrame, scales: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Undo :func:`normalise` on ``columns`` of a frame keyed by ``series_id``."""
    merged = values.merge(scales, on=SERIES, how="left")
    out = values.copy()
    for col in columns:
        out[col] = merged[col].to_numpy() * merged["spread"].to_numpy() + merged["level"].to_numpy()
    return out
