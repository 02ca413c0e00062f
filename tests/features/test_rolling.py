"""Rolling statistics cover only past values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.rolling import rolling_features


def test_rolling_window_ends_before_the_row() -> None:
    ts = pd.date_range("2024-01-01", periods=50, freq="1h", tz="UTC")
    frame = pd.DataFrame({"series_id": "s", "ts": ts, "y": np.arange(50.0)})
    out = rolling_features(frame, windows=[4])
    assert out.roll_mean_4[10] == np.mean([6, 7, 8, 9])
    assert out.roll_max_4[10] == 9.0  # y[10] itself is not included
    assert np.isnan(out.roll_mean_4[0])
