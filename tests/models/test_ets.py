"""ETS: gap filling, quantiles from prediction intervals, the weekly adjustment."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.ets import ETSForecaster, fill_gaps, phases, quantiles_from_intervals, weekly_profile


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


def _weekly_load(days: int, seed: int = 0, weekend_drop: float = 0.5) -> pd.DataFrame:
    """Hourly load with a daily cycle and weekends at ``1 - weekend_drop`` of weekday level."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-03-04", periods=days * 24, freq="1h", tz="UTC")  # a Monday
    level = 1000.0 * np.where(ts.dayofweek >= 5, 1.0 - weekend_drop, 1.0)
    daily = 1.0 + 0.4 * np.sin(2 * np.pi * ts.hour.to_numpy() / 24)
    y = level * daily * (1.0 + rng.normal(0.0, 0.03, ts.size))
    return pd.DataFrame({"series_id": "c/r", "ts": ts, "y": y})


def _mae_next_day(model: ETSForecaster, train: pd.DataFrame, test: pd.DataFrame) -> float:
    pred = model.predict(train, 24, [0.05, 0.5, 0.95])
    return float(np.mean(np.abs(pred["q0.5"].to_numpy() - test["y"].to_numpy())))


def test_weekly_cycle_does_not_defeat_the_daily_model() -> None:
    """Regression: on weekday/weekend load AutoETS("ZZZ") dropped the daily season.

    Forecasting the Monday after a weekend, ETS must beat the daily seasonal
    naive forecast (which repeats Sunday) by a wide margin.
    """
    data = _weekly_load(days=29)  # 4 weeks of history, then a Monday to forecast
    train, test = data.iloc[:-24], data.iloc[-24:]
    assert test["ts"].dt.dayofweek.eq(0).all()
    naive = float(np.mean(np.abs(train["y"].to_numpy()[-24:] - test["y"].to_numpy())))
    ets = _mae_next_day(ETSForecaster().fit(train), train, test)
    assert ets < 0.3 * naive


def test_reused_fit_places_the_weekly_cycle_by_timestamp() -> None:
    """A model fitted up to Friday, predicting from a history extended by the weekend."""
    data = _weekly_load(days=29, seed=1)
    test = data.iloc[-24:]
    fitted = ETSForecaster().fit(data.iloc[: -3 * 24])  # ends Friday night
    ets = _mae_next_day(fitted, data.iloc[:-24], test)
    assert ets < 0.1 * float(test["y"].mean())


def test_series_without_weekly_cycle_stays_close_to_seasonal_naive() -> None:
    data = _weekly_load(days=29, seed=2, weekend_drop=0.0)
    train, test = data.iloc[:-24], data.iloc[-24:]
    phase = phases(pd.DatetimeIndex(train["ts"]), "1h", 168)
    assert weekly_profile(train["y"].to_numpy(), phase, 24, 168) is None
    naive = float(np.mean(np.abs(train["y"].to_numpy()[-24:] - test["y"].to_numpy())))
    assert _mae_next_day(ETSForecaster().fit(train), train, test) < 1.2 * naive


def test_weekly_profile_needs_two_weeks() -> None:
    data = _weekly_load(days=13)
    y = data["y"].to_numpy()
    phase = phases(pd.DatetimeIndex(data["ts"]), "1h", 168)
    assert weekly_profile(y, phase, 24, 168) is None
    longer = _weekly_load(days=21)
    profile = weekly_profile(
        longer["y"].to_numpy(), phases(pd.DatetimeIndex(longer["ts"]), "1h", 168), 24, 168
    )
    assert profile is not None and profile.shape == (168,)
    weekend = phases(pd.DatetimeIndex(longer["ts"][longer["ts"].dt.dayofweek >= 5]), "1h", 168)
    assert profile[np.unique(weekend)].mean() < 0 < np.delete(profile, np.unique(weekend)).mean()
