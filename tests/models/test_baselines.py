"""Seasonal-naive baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import NotFittedError
from models.baselines import SeasonalNaive, seasonal_template


def _history(n: int = 24 * 14, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    y = 100 + 20 * np.sin(np.arange(n) * 2 * np.pi / 24) + rng.normal(0, 3, n)
    return pd.DataFrame({"series_id": "c/r", "ts": ts, "y": y})


def test_point_forecast_repeats_last_season() -> None:
    hist = _history()
    out = SeasonalNaive(season_length=24).fit(hist).predict(hist, 48, [0.5])
    last_day = hist.y.to_numpy()[-24:]
    assert np.allclose(
        out["q0.5"].to_numpy()[:24] - np.median(hist.y.to_numpy()[24:] - hist.y.to_numpy()[:-24]),
        last_day,
    )
    assert out.ts.iloc[0] == hist.ts.iloc[-1] + pd.Timedelta(hours=1)
    assert out.step.tolist() == list(range(1, 49))


def test_template_fills_gaps_from_earlier_seasons() -> None:
    y = np.array([1.0, 2.0, 3.0, np.nan, 5.0, np.nan])
    assert seasonal_template(y, 3).tolist() == [1.0, 5.0, 3.0]


def test_intervals_cover_about_their_level() -> None:
    hist = _history(n=24 * 40)
    train, test = hist.iloc[: 24 * 33], hist.iloc[24 * 33 :]
    model = SeasonalNaive(season_length=24).fit(train)
    out = model.predict(train, 24 * 7, [0.05, 0.5, 0.95])
    y = test.y.to_numpy()
    inside = ((y >= out["q0.05"]) & (y <= out["q0.95"])).mean()
    assert 0.8 <= inside <= 0.98


def test_predict_before_fit_raises() -> None:
    with pytest.raises(NotFittedError):
        SeasonalNaive().predict(_history(), 24, [0.5])
