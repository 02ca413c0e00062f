"""Lag features align with the past and never leak the present or future."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.lags import lag_features, seasonal_lag_features, take


def _frame() -> pd.DataFrame:
    ts = pd.date_range("2024-01-01", periods=200, freq="1h", tz="UTC")
    a = pd.DataFrame({"series_id": "c/a", "ts": ts, "y": np.arange(200.0)})
    b = pd.DataFrame({"series_id": "c/b", "ts": ts, "y": 1000 + np.arange(200.0)})
    return pd.concat([b, a.sample(frac=1, random_state=0)], ignore_index=True)


def test_lags_align_within_each_series() -> None:
    out = lag_features(_frame(), [1, 3])
    a = out[out.series_id == "c/a"].reset_index(drop=True)
    assert np.isnan(a.lag_1[0]) and a.lag_1[5] == 4.0 and a.lag_3[5] == 2.0
    b = out[out.series_id == "c/b"].reset_index(drop=True)
    assert np.isnan(b.lag_3[2])  # never borrows from another series


def test_no_future_value_leaks_into_lags() -> None:
    frame = _frame()
    base = lag_features(frame, [1, 24])
    changed = frame.copy()
    t = changed.ts == changed.ts.iloc[0] + pd.Timedelta(hours=100)
    changed.loc[t, "y"] = -1e9  # change the present value only
    after = lag_features(changed, [1, 24])
    same = base.ts <= frame.ts.iloc[0] + pd.Timedelta(hours=100)
    assert base.loc[same, ["lag_1", "lag_24"]].equals(after.loc[same, ["lag_1", "lag_24"]])


def test_seasonal_lags() -> None:
    out = seasonal_lag_features(_frame())
    a = out[out.series_id == "c/a"].reset_index(drop=True)
    assert a.lag_day[30] == 6.0 and a.lag_week[199] == 31.0 and np.isnan(a.lag_week[100])


def test_take_is_nan_outside() -> None:
    assert np.isnan(take(np.arange(3.0), np.array([-1, 0, 3]))[[0, 2]]).all()
