"""Trailing window statistics of one series: row ``t`` summarises ``y[t - window + 1 .. t]``."""

from __future__ import annotations

import numpy as np
import pandas as pd


def trailing_stat(y: np.ndarray, window: int, stat: str, min_periods: int = 2) -> np.ndarray:
    """``stat`` (mean/std/min/max) of ``y[t - window + 1 .. t]`` at every ``t``."""
    roll = pd.Series(y).rolling(window, min_periods=min_periods)
    return getattr(roll, stat)().to_numpy()
