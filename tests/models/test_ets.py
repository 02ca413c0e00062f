"""ETS helpers: gap filling and quantiles from prediction intervals."""

from __future__ import annotations

import numpy as np

from models.ets import fill_gaps, quantiles_from_intervals


def test_fill_gaps_interpolates_inside_and_holds_ends() -> None:
    y = np.array([np.nan, 1.0, np.nan, 3.0, np.nan])
    assert fill_gaps(y).tolist() == [1.0, 1.0, 2.0, 3.0, 3.0]
    assert fill_gaps(np.array([np.nan, np.nan])).tolist() == [0.0, 0.0]


def test_quantile_levels_map_to_interval_ends() -> None:
    result = {
        "mean": np.array([10.0]),
        "lo-90": np.array([2.0]),
        "hi-90": np.array([18.0]),
        "lo-80": np.array([4.0]),
        "hi-80": np.array([16.0]),
    }
    out = quantiles_from_intervals(result, [0.05, 0.1, 0.5, 0.9, 0.95])
    assert out.tolist() == [[2.0, 4.0, 10.0, 16.0, 18.0]]
