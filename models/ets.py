"""Exponential smoothing per series: statsforecast ``AutoETS`` with a daily season.

Each series is fitted on its own (gaps linearly interpolated first, since ETS
needs a gap-free series), on its last ``max_history`` steps only.

ETS holds one season (the day). Load series often also have a weekly cycle
(weekday/weekend level swings); left in, it defeats the daily model: on such
series ``AutoETS("ZZZ")`` drops the season entirely and extrapolates a trend
(MASE ~2.3 where seasonal naive scores ~1.2). So when a series shows a clear
weekly cycle (:func:`weekly_profile`), its mean hour-of-week profile (daily part
removed) is subtracted before fitting, the season is forced additive
(:func:`model_for`), and the profile is added back to the forecast.

Quantiles come from ETS's Gaussian prediction
intervals: level ``q`` is the lower end of the ``(1 - 2q)`` interval for
``q < 0.5``, the upper end of the ``(2q - 1)`` interval above 0.5, and the mean
at 0.5. Fits run in up to ``n_jobs`` processes (:func:`forecasting.parallel.process_map`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from forecasting.parallel import process_map
from models.fit_cache import FitCache
from models.fitted import check_fitted
from models.panel import Series, check_history, forecast_each, split_series

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


#: Least ratio of the weekly profile's variance to its sampling noise that counts as a cycle.
WEEKLY_MIN_STRENGTH = 1.5


def phases(ts: pd.DatetimeIndex, freq: str, week_length: int) -> np.ndarray:
    """Position of each timestamp in the week cycle (steps since the epoch mod ``week_length``)."""
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq)).value
    return (ts.as_unit("ns").asi8 // step) % week_length


def weekly_profile(
    y: np.ndarray, phase: np.ndarray, season_length: int, week_length: int
) -> np.ndarray | None:
    """Mean offset per week phase beyond the daily cycle, or None without a weekly cycle.

    Uses the last full weeks (at least two), each centred on its own mean so a
    level drift does not leak into the profile, and removes the daily part (the
    mean per phase of the day) so the ETS daily season still carries it. None
    unless the profile's variance is at least ``WEEKLY_MIN_STRENGTH`` times its
    sampling noise (about 1 for noise alone; a trend within the weeks raises it).
    """
    if week_length <= season_length or week_length % season_length or y.size < 2 * week_length:
        return None
    n = y.size // week_length * week_length
    blocks = y[-n:].reshape(-1, week_length)
    order = np.argsort(phase[-n:].reshape(-1, week_length), axis=1)
    blocks = np.take_along_axis(blocks, order, axis=1)
    blocks = blocks - blocks.mean(axis=1, keepdims=True)
    profile = blocks.mean(axis=0)
    profile = profile - np.tile(
        profile.reshape(-1, season_length).mean(axis=0), week_length // season_length
    )
    noise = float(blocks.var(axis=0, ddof=1).mean()) / blocks.shape[0]
    strength = float(profile.var()) / noise if noise > 0 else np.inf
    return profile if strength >= WEEKLY_MIN_STRENGTH else None


def model_for(model: str, profile: np.ndarray | None) -> str:
    """The ETS specification of a series: an additive season once a weekly profile is removed.

    On weekly-adjusted series ``AutoETS`` may still prefer a trend without season
    (the adjusted series keeps some level swings); the daily season is kept then.
    """
    return model if profile is None or len(model) != 3 else f"{model[:2]}A"


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
        model: ETS specification (``"ZZZ"`` = automatic choice, as ``AutoETS``);
            its season letter becomes ``A`` on series with a weekly cycle.
        n_jobs: processes used to fit the series (1 = in this process).
        week_length: steps per week, for the weekly adjustment (None = 7 seasons;
            0 turns the adjustment off).
        max_history: fit on at most this many trailing steps (None = all).
        fit_cache: a memo of fits shared with other models of the caller (None = none):
            a fit of identical parameters and data is adopted instead of repeated.
    """

    def __init__(
        self,
        season_length: int = 24,
        freq: str = "1h",
        model: str = "ZZZ",
        n_jobs: int = 1,
        week_length: int | None = None,
        max_history: int | None = 8 * 7 * 24,
        fit_cache: FitCache | None = None,
    ) -> None:
        self.season_length = season_length
        self.freq = freq
        self.model = model
        self.n_jobs = n_jobs
        self.week_length = week_length
        self.max_history = max_history
        self.fit_cache = fit_cache

    @property
    def _week(self) -> int:
        return 7 * self.season_length if self.week_length is None else self.week_length

    def _prepare(self, s: Series, profile: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Trailing window of ``s`` (gaps filled) minus ``profile``, and its week phases."""
        keep = s.y.size if self.max_history is None else min(s.y.size, self.max_history)
        y = fill_gaps(s.y[-keep:]) if keep else fill_gaps(s.y)
        phase = phases(s.ts[-keep:], self.freq, max(self._week, 1))
        return (y if profile is None else y - profile[phase]), phase

    def _offset(self, s: Series, horizon: int, profile: np.ndarray | None) -> np.ndarray:
        if profile is None:
            return np.zeros(horizon)
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(self.freq))
        future = pd.DatetimeIndex([s.last_ts + step * (k + 1) for k in range(horizon)])
        return profile[phases(future, self.freq, self._week)]

    def fit(self, history: pd.DataFrame) -> Self:
        """Fit one ETS model per series; returns ``self``."""
        check_history(history, type(self).__name__)
        cache = self.fit_cache
        key = () if cache is None else cache.key(self, history)
        if cache is not None and cache.adopt(self, key):
            return self
        series = split_series(history, self.freq)
        profiles: dict[str, np.ndarray | None] = {}
        ys = []
        for s in series:
            y, phase = self._prepare(s, None)
            profiles[s.series_id] = weekly_profile(y, phase, self.season_length, self._week)
            ys.append(self._prepare(s, profiles[s.series_id])[0])
        specs = [model_for(self.model, profiles[s.series_id]) for s in series]
        fitted = process_map(
            _fit_one, ys, [self.season_length] * len(ys), specs, n_jobs=self.n_jobs
        )
        self.models_: dict[str, Any] = {s.series_id: m for s, m in zip(series, fitted, strict=True)}
        self.profiles_: dict[str, np.ndarray | None] = profiles
        self.fitted_ends_: dict[str, tuple[pd.Timestamp, int]] = {
            s.series_id: (s.last_ts, s.y.size) for s in series
        }
        if cache is not None:
            cache.remember(key, copy.deepcopy(self))
        return self

    def predict(
        self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]
    ) -> pd.DataFrame:
        """Forecast each series of ``history`` (the fitted model is reused on new data)."""
        check_fitted(self, "models_")
        return forecast_each(
            history, horizon, quantiles, self.freq, self._forecast_one, type(self).__name__
        )

    def _forecast_one(self, s: Series, horizon: int, levels: list[float]) -> np.ndarray:
        model = self.models_.get(s.series_id)
        profile = self.profiles_.get(s.series_id) if model is not None else None
        ci = _levels(levels) or None
        if model is None:
            y, phase = self._prepare(s, None)
            profile = weekly_profile(y, phase, self.season_length, self._week)
            spec = model_for(self.model, profile)
            model = _fit_one(self._prepare(s, profile)[0], self.season_length, spec)
            result = model.predict(h=horizon, level=ci)
        elif self.fitted_ends_[s.series_id] == (s.last_ts, s.y.size):
            result = model.predict(h=horizon, level=ci)
        else:
            result = model.forward(y=self._prepare(s, profile)[0], h=horizon, level=ci)
        values = quantiles_from_intervals(result, levels)
        return values + self._offset(s, horizon, profile)[:, None]
