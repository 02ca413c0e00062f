"""Rolling statistics over past values, per series.

Row ``t`` summarises ``y[t - window .. t - 1]`` (the window ends one step
before the row), so nothing at or after ``t`` leaks in.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from forecasting.forecaster import SERIES, TS, Y


def rolling_features(
    frame: pd.DataFrame, windows: Iterable[int] = (24, 168), min_fraction: float = 0.25
) -> pd.DataFrame:
    """Add ``roll_mean_<w>``, ``roll_std_<w>``, ``roll_min_<w>`` and ``roll_max_<w>``.

    Args:
        frame: long frame ``series_id, ts, y``, regular per series.
        windows: window lengths in steps.
        min_fraction: share of known values a window needs (else NaN).
    """
    out = frame.sort_values([SERIES, TS], kind="stable").reset_index(drop=True)
    past = out.groupby(SERIES, sort=False)[Y].shift(1)
    columns = {}
    for w in windows:
        roll = past.groupby(out[SERIES], sort=False).rolling(
            w, min_periods=max(1, int(w * min_fraction))
        )
        for stat in ("mean", "std", "min", "max"):
            columns[f"roll_{stat}_{w}"] = getattr(roll, stat)().reset_index(level=0, drop=True)
    return out.assign(**columns)


def trailing_mean(y: np.ndarray, window: int, min_periods: int = 1) -> np.ndarray:
    """Mean of ``y[t - window + 1 .. t]`` (NaN-aware) at every ``t``: the level at origin ``t``."""
    return pd.Series(y).rolling(window, min_periods=min_periods).mean().to_numpy()


def trailing_stat(y: np.ndarray, window: int, stat: str, min_periods: int = 2) -> np.ndarray:
    """``stat`` (mean/std/min/max) of ``y[t - window + 1 .. t]`` at every ``t``."""
    roll = pd.Series(y).rolling(window, min_periods=min_periods)
    return getattr(roll, stat)().to_numpy()
