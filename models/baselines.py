"""Seasonal-naive baselines with empirical quantiles.

The point forecast repeats the last season (the value one season before the
target time; for steps beyond one season, the value ``k`` seasons before).
Quantiles add the empirical quantiles of the series' own in-sample
seasonal-naive errors at the same lag, so every baseline has intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Self

import numpy as np
import pandas as pd

from models.fitted import check_fitted
from models.panel import Series, check_history, forecast_each, last_valid, split_series


def seasonal_template(y: np.ndarray, season_length: int) -> np.ndarray:
    """The last season of ``y``, its gaps filled from earlier seasons (then the last value).

    Returns:
        ``season_length`` values; position ``i`` is the newest known value at
        phase ``(len(y) - season_length + i) mod season_length``.
    """
    n = y.size
    template = np.full(season_length, np.nan)
    for i in range(season_length):
        known = y[n - season_length + i :: -season_length] if n - season_length + i >= 0 else []
        finite = [v for v in known if np.isfinite(v)]
        if finite:
            template[i] = finite[0]
    fallback = last_valid(y)
    template[~np.isfinite(template)] = 0.0 if math.isnan(fallback) else fallback
    return template


def seasonal_errors(y: np.ndarray, lag: int, max_points: int | None = None) -> np.ndarray:
    """In-sample errors ``y[t] - y[t - lag]`` where both are known (newest ``max_points``)."""
    if y.size <= lag:
        return np.empty(0)
    err = y[lag:] - y[:-lag]
    err = err[np.isfinite(err)]
    return err[-max_points:] if max_points else err


class SeasonalNaive:
    """Repeat the last season; quantiles from the empirical seasonal-naive errors.

    Args:
        season_length: steps per season (24 = daily season of hourly data).
        freq: step of the series (pandas alias).
        max_errors: newest in-sample errors kept per series and lag.
    """

    def __init__(self, season_length: int = 24, freq: str = "1h", max_errors: int = 2000) -> None:
        self.season_length = season_length
        self.freq = freq
        self.max_errors = max_errors

    def fit(self, history: pd.DataFrame) -> Self:
        """Store each series' seasonal-naive errors; returns ``self``."""
        check_history(history, type(self).__name__)
        self.errors_: dict[str, np.ndarray] = {
            s.series_id: seasonal_errors(s.y, self.season_length, self.max_errors)
            for s in split_series(history, self.freq)
        }
        return self

    def predict(
        self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]
    ) -> pd.DataFrame:
        """Forecast ``horizon`` steps of each series of ``history``."""
        check_fitted(self, "errors_")
        return forecast_each(
            history, horizon, quantiles, self.freq, self._forecast_one, type(self).__name__
        )

    def _forecast_one(self, s: Series, horizon: int, levels: list[float]) -> np.ndarray:
        m = self.season_length
        template = seasonal_template(s.y, m)
        steps = np.arange(horizon)
        point = template[steps % m]
        result = np.empty((horizon, len(levels)))
        for k in range(1, horizon // m + 2):
            in_k = (steps >= (k - 1) * m) & (steps < k * m)
            if not in_k.any():
                continue
            errors = self.errors_.get(s.series_id) if k == 1 else None
            if errors is None or errors.size == 0:
                errors = seasonal_errors(s.y, k * m, self.max_errors)
            if errors.size == 0:
                errors = np.zeros(1)
            offsets = np.quantile(errors, levels)
            result[in_k] = point[in_k, None] + offsets[None, :]
        return result
