"""Exponential smoothing per series: statsforecast ``AutoETS`` with a daily season.

Each series is fitted on its own (gaps linearly interpolated first, since ETS
needs a gap-free series). Quantiles come from ETS's Gaussian prediction
intervals: level ``q`` is the lower end of the ``(1 - 2q)`` interval for
``q < 0.5``, the upper end of the ``(2q - 1)`` interval above 0.5, and the mean
at 0.5. Fits run in up to ``n_jobs`` processes.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Self

import numpy as np
import pandas as pd

from models import fit_cache
from models.fitted import check_fitted
from models.panel import Series, check_history, forecast_frame, split_series

logger = logging.getLogger(__name__)


def fill_gaps(y: np.ndarray) -> np.ndarray:
    """Linear interpolation inside, nearest value at the ends; all-NaN -> zeros."""
    finite = np.isfinite(y)
    if finite.all():
        return y.astype(float)
    if not finite.any():
        return np.zeros_like(y, dtype=float)
    idx = np.arange(y.size)
    return np.interp(idx, idx[finite], y[finite])


def _fit_one(y: np.ndarray, season_length: int, model: str) -> Any:
    from statsforecast.models import AutoETS

    season = season_length if y.size >= 2 * season_length + 2 else 1
    try:
        return AutoETS(season_length=season, model=model).fit(y)
    except Exception as exc:  # statsforecast raises bare exceptions on odd series
        logger.warning("AutoETS(%s, season %d) failed (%s); using ANN", model, season, exc)
        return AutoETS(season_length=1, model="ANN").fit(y)


def _levels(quantiles: Sequence[float]) -> list[int | float]:
    levels = {round(abs(2 * q - 1) * 100, 6) for q in quantiles if not np.isclose(q, 0.5)}
    return sorted(int(v) if float(v).is_integer() else v for v in levels)


def quantiles_from_intervals(
    result: dict[str, np.ndarray], quantiles: Sequence[float]
) -> np.ndarray:
    """``(horizon, n_quantiles)`` from a statsforecast forecast dict with ``lo-/hi-`` keys."""
    cols = []
    for q in quantiles:
        if np.isclose(q, 0.5):
            cols.append(result["mean"])
            continue
        level = round(abs(2 * q - 1) * 100, 6)
        key = f"{int(level) if float(level).is_integer() else level}"
        cols.append(result[f"lo-{key}"] if q < 0.5 else result[f"hi-{key}"])
    return np.column_stack(cols)


class ETSForecaster:
    """AutoETS per series (statsforecast), quantiles from its prediction intervals.

    Args:
        season_length: steps per season (24 for hourly data).
        freq: step of the series (pandas alias).
        model: ETS specification (``"ZZZ"`` = automatic choice, as ``AutoETS``).
        n_jobs: processes used to fit the series (1 = in this process).
    """

    def __init__(
        self, season_length: int = 24, freq: str = "1h", model: str = "ZZZ", n_jobs: int = 1
    ) -> None:
        self.season_length = season_length
        self.freq = freq
        self.model = model
        self.n_jobs = n_jobs

    def fit(self, history: pd.DataFrame) -> Self:
        """Fit one ETS model per series; returns ``self``."""
        check_history(history, type(self).__name__)
        key = fit_cache.cache_key(self, history)
        if fit_cache.adopt(self, key):
            return self
        series = split_series(history, self.freq)
        ys = [fill_gaps(s.y) for s in series]
        if self.n_jobs > 1 and len(series) > 1:
            with ProcessPoolExecutor(max_workers=self.n_jobs) as pool:
                fitted = list(
                    pool.map(_fit_one, ys, [self.season_length] * len(ys), [self.model] * len(ys))
                )
        else:
            fitted = [_fit_one(y, self.season_length, self.model) for y in ys]
        self.models_: dict[str, Any] = {s.series_id: m for s, m in zip(series, fitted, strict=True)}
        self.fitted_ends_: dict[str, tuple[pd.Timestamp, int]] = {
            s.series_id: (s.last_ts, s.y.size) for s in series
        }
        fit_cache.remember(key, copy.deepcopy(self))
        return self

    def predict(
        self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]
    ) -> pd.DataFrame:
        """Forecast each series of ``history`` (the fitted model is reused on new data)."""
        check_fitted(self, "models_")
        check_history(history, type(self).__name__)
        levels = sorted(quantiles)
        series = split_series(history, self.freq)
        out = np.empty((len(series), horizon, len(levels)))
        for i, s in enumerate(series):
            out[i] = self._forecast_one(s, horizon, levels)
        return forecast_frame(series, out, levels, self.freq)

    def _forecast_one(self, s: Series, horizon: int, levels: list[float]) -> np.ndarray:
        model = self.models_.get(s.series_id)
        ci = _levels(levels) or None
        if model is None:
            model = _fit_one(fill_gaps(s.y), self.season_length, self.model)
            result = model.predict(h=horizon, level=ci)
        elif self.fitted_ends_[s.series_id] == (s.last_ts, s.y.size):
            result = model.predict(h=horizon, level=ci)
        else:
            result = model.forward(y=fill_gaps(s.y), h=horizon, level=ci)
        return quantiles_from_intervals(result, levels)
