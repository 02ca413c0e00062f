"""The model registry: ``build(name, config)`` returns a fresh, unfitted ``Forecaster``.

Model names are the ``ModelName`` literal of ``forecasting.settings``. Season
lengths come from ``config.freq`` (hourly: day = 24, week = 168). Heavy
libraries (LightGBM, Prophet, statsforecast) are imported only when their
model is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from features.seasonality import season_length
from forecasting.errors import ConfigError
from forecasting.forecaster import Forecaster
from forecasting.settings import ForecastConfig, ModelName
from models.fit_cache import FitCache

Timezones = Mapping[str, str] | None
Builder = Callable[[ForecastConfig, Timezones, FitCache | None], Forecaster]


def _seasonal_naive_day(
    config: ForecastConfig, timezones: Timezones = None, fit_cache: FitCache | None = None
) -> Forecaster:
    from models.baselines import SeasonalNaive

    return SeasonalNaive(season_length=season_length(config.freq, "day"), freq=config.freq)


def _seasonal_naive_week(
    config: ForecastConfig, timezones: Timezones = None, fit_cache: FitCache | None = None
) -> Forecaster:
    from models.baselines import SeasonalNaive

    return SeasonalNaive(season_length=season_length(config.freq, "week"), freq=config.freq)


def _ets(
    config: ForecastConfig, timezones: Timezones = None, fit_cache: FitCache | None = None
) -> Forecaster:
    from models.ets import ETSForecaster

    return ETSForecaster(
        season_length=season_length(config.freq, "day"),
        freq=config.freq,
        n_jobs=2,
        fit_cache=fit_cache,
    )


def _lightgbm(
    config: ForecastConfig, timezones: Timezones = None, fit_cache: FitCache | None = None
) -> Forecaster:
    from models.lightgbm_quantile import LightGBMQuantile

    return LightGBMQuantile(
        freq=config.freq,
        season_length=season_length(config.freq, "day"),
        week_length=season_length(config.freq, "week"),
        horizon=config.horizon,
        timezones=timezones,
        random_state=config.seed,
        fit_cache=fit_cache,
    )


def _prophet(
    config: ForecastConfig, timezones: Timezones = None, fit_cache: FitCache | None = None
) -> Forecaster:
    from models.prophet_model import ProphetForecaster

    return ProphetForecaster(freq=config.freq, n_jobs=2)


def _ensemble(
    config: ForecastConfig, timezones: Timezones = None, fit_cache: FitCache | None = None
) -> Forecaster:
    from models.ensemble import Ensemble

    return Ensemble(
        members={
            "lightgbm": _lightgbm(config, timezones, fit_cache),
            "ets": _ets(config, fit_cache=fit_cache),
            "seasonal_naive_day": _seasonal_naive_day(config),
        },
        freq=config.freq,
        season_length=season_length(config.freq, "day"),
        horizon=config.horizon,
        refit=True,
        fit_once=("ets", "seasonal_naive_day"),
        fit_cache=fit_cache,
    )


REGISTRY: dict[str, Builder] = {
    "lightgbm": _lightgbm,
    "prophet": _prophet,
    "seasonal_naive_day": _seasonal_naive_day,
    "seasonal_naive_week": _seasonal_naive_week,
    "ets": _ets,
    "ensemble": _ensemble,
}


def known_models() -> list[str]:
    """Names ``build`` accepts."""
    return sorted(REGISTRY)


def build(
    name: ModelName,
    config: ForecastConfig,
    timezones: Timezones = None,
    fit_cache: FitCache | None = None,
) -> Forecaster:
    """A fresh, unfitted model called ``name``, configured from ``config``.

    Args:
        name: a catalog model name.
        config: the forecast settings (freq, horizon, seed).
        timezones: series id or region name -> IANA zone, for local-time calendar
            features (e.g. ``{r.name: r.timezone for r in settings.fleet.regions}``);
            default UTC.
        fit_cache: the caller's memo of fits, shared by the models it builds (e.g. one
            per backtest, so the ensemble reuses the stand-alone fits); None = none.

    Raises:
        ConfigError: ``name`` is not a known model (the message lists the known ones).
    """
    builder = REGISTRY.get(name)
    if builder is None:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(known_models())}")
    return builder(config, timezones, fit_cache)


def factory(
    name: ModelName,
    config: ForecastConfig,
    timezones: Timezones = None,
    fit_cache: FitCache | None = None,
) -> Callable[[], Forecaster]:
    """A zero-argument callable building ``name`` (what ``forecasting.backtest`` takes).

    The arguments are those of :func:`build`; every model built gets ``fit_cache``.

    Raises:
        ConfigError: ``name`` is unknown (raised now, not at the first call).
    """
    if name not in REGISTRY:
        build(name, config)
    return partial(build, name, config, timezones, fit_cache)
