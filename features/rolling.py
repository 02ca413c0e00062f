"""Trailing window statistics of one series: row ``t`` summarises ``y[t - window + 1 .. t]``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray


def trailing_stat(
    y: NDArray[np.float64], window: int, stat: str, min_periods: int = 2
) -> NDArray[np.float64]:
    """``stat`` (mean/std/min/max) of ``y[t - window + 1 .. t]`` at every ``t``."""
    roll = pd.Series(y).rolling(window, min_periods=min_periods)
    out: NDArray[np.float64] = getattr(roll, stat)().to_numpy()  # a method picked by name: untyped
    return out
