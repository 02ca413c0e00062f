"""The model registry."""

from __future__ import annotations

import pytest

from forecasting.errors import ConfigError
from forecasting.settings import ForecastConfig
from models.baselines import SeasonalNaive
from models.catalog import build, factory, known_models
from models.fit_cache import FitCache


def test_known_models_match_the_settings_literal() -> None:
    assert set(known_models()) == set(ForecastConfig().models)


def test_season_lengths_follow_freq() -> None:
    day = build("seasonal_naive_day", ForecastConfig())
    week = build("seasonal_naive_week", ForecastConfig())
    assert isinstance(day, SeasonalNaive) and day.season_length == 24
    assert week.season_length == 168
    assert build("seasonal_naive_day", ForecastConfig(freq="30min")).season_length == 48


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="seasonal_naive_day"):
        build("arima", ForecastConfig())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown model"):
        factory("arima", ForecastConfig())  # type: ignore[arg-type]


def test_factory_builds_fresh_models() -> None:
    make = factory("seasonal_naive_day", ForecastConfig())
    assert make() is not make()


def test_timezones_reach_the_lightgbm_calendar() -> None:
    zones = {"cn-north": "Asia/Shanghai"}
    model = build("lightgbm", ForecastConfig(), timezones=zones)
    assert model.timezones == zones
    assert factory("ensemble", ForecastConfig(), zones)().members["lightgbm"].timezones == zones


def test_the_callers_fit_cache_reaches_every_model_that_memoises() -> None:
    cache = FitCache()
    ensemble = factory("ensemble", ForecastConfig(), fit_cache=cache)()
    assert ensemble.fit_cache is cache
    assert ensemble.members["lightgbm"].fit_cache is cache
    assert ensemble.members["ets"].fit_cache is cache
    assert build("lightgbm", ForecastConfig()).fit_cache is None
