"""trailing_stat: the window ends at the row itself and needs min_periods values."""

from __future__ import annotations

import numpy as np

from features.rolling import trailing_stat


def test_window_ends_at_the_row() -> None:
    y = np.arange(10.0)
    assert trailing_stat(y, 4, "mean")[5] == np.mean([2, 3, 4, 5])
    assert trailing_stat(y, 4, "max", 1)[5] == 5.0
    assert trailing_stat(y, 4, "min", 1)[5] == 2.0


def test_too_few_values_give_nan() -> None:
    y = np.array([1.0, np.nan, 3.0, 4.0])
    std = trailing_stat(y, 2, "std")
    assert np.isnan(std[0]) and np.isnan(std[1]) and np.isnan(std[2])
    assert std[3] == np.std([3.0, 4.0], ddof=1)
