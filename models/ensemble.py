"""Median combination of member forecasters, with conformal quantiles of the combination.

The point forecast (the median quantile) is the median of the members' median
forecasts: with three members (LightGBM, ETS, seasonal naive) one wild member
cannot drag the combination away. Quantiles are the combined median plus
split-conformal residual quantiles of the combination itself:

``fit`` holds out the newest ``calibration_steps`` of every series, fits the
members on the rest, forecasts the held-out part from several rolling origins
(every ``origin_every`` steps), and keeps the residuals, divided by each
series' spread at the origin (:mod:`features.scaling`) so series of any size
share one residual pool. The members are *not* refitted afterwards: at predict
time they are applied to the full history (ETS re-filters its state, LightGBM
reads the newest lags, seasonal naive repeats the newest season), which keeps
the calibration honest and the fit cheap.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Self

import numpy as np
import pandas as pd

from features.scaling import origin_scales
from forecasting.forecaster import SERIES, STEP, TS, Forecaster, Y, quantile_column
from models.calibration import ConformalCalibrator
from models.fit_cache import FitCache
from models.fitted import check_fitted
from models.panel import check_history, forecast_frame, split_series

logger = logging.getLogger(__name__)


def truncate(history: pd.DataFrame, steps: int) -> pd.DataFrame:
    """``history`` without the newest ``steps`` rows of each series."""
    ordered = history.sort_values([SERIES, TS], kind="stable")
    from_end = ordered.groupby(SERIES, sort=False).cumcount(ascending=False)
    return ordered.loc[from_end >= steps].reset_index(drop=True)


def _fit_member(model: Forecaster, history: pd.DataFrame, cache: FitCache | None) -> Forecaster:
    """Fit a fresh copy of ``model``, or reuse an identical fit of ``cache``."""
    if cache is None:
        return copy.deepcopy(model).fit(history)
    key = cache.key(model, history)
    fitted = cache.recall(key)
    if fitted is None:
        fitted = copy.deepcopy(model).fit(history)
        cache.remember(key, fitted)
    return fitted


class Ensemble:
    """Median of the members' median forecasts, with conformal quantiles.

    Args:
        members: name -> unfitted member model.
        freq: step of the series (pandas alias).
        season_length: steps per day (for the spread that scales residuals).
        horizon: steps of the calibration forecasts.
        calibration_steps: newest steps of each series held out for calibration.
        origin_every: spacing of the calibration origins.
        refit: refit the members on the full history after calibrating (they then
            learn the newest days too).
        fit_once: members fitted only once, on the full history, and used as they
            are for the calibration forecasts (cheap for models with few parameters
            that re-filter their state from the history they are given, such as ETS
            and seasonal naive; a global learner such as LightGBM must not be listed).
        fit_cache: a memo of fits shared with the caller's stand-alone models (None =
            none): a member fit of identical parameters and data is reused.
    """

    def __init__(
        self,
        members: Mapping[str, Forecaster],
        freq: str = "1h",
        season_length: int = 24,
        horizon: int = 24,
        calibration_steps: int = 48,
        origin_every: int = 6,
        refit: bool = True,
        fit_once: Sequence[str] = (),
        fit_cache: FitCache | None = None,
    ) -> None:
        self.members = members
        self.freq = freq
        self.season_length = season_length
        self.horizon = horizon
        self.calibration_steps = calibration_steps
        self.origin_every = origin_every
        self.refit = refit
        self.fit_once = fit_once
        self.fit_cache = fit_cache

    def _combine(self, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        """``series_id, ts, step, point`` and per-series spread at the origin."""
        medians = []
        for name, model in self.fitted_members_.items():
            pred = model.predict(history, horizon, [0.5])
            medians.append(pred.set_index([SERIES, STEP])[quantile_column(0.5)].rename(name))
            ts = pred.set_index([SERIES, STEP])[TS]
        wide = pd.concat(medians, axis=1)
        return pd.DataFrame({TS: ts, "point": wide.median(axis=1)}).reset_index()

    def _spreads(self, history: pd.DataFrame) -> dict[str, float]:
        out = {}
        for s in split_series(history, self.freq):
            _, spread = origin_scales(s.y, self.season_length, self.season_length)
            out[s.series_id] = float(spread[-1])
        return out

    def fit(self, history: pd.DataFrame) -> Self:
        """Fit the members on all but the newest steps, calibrate on those; returns ``self``."""
        check_history(history, type(self).__name__)
        hold = self.calibration_steps
        longest = history.groupby(SERIES).size().max()
        if longest - hold < 3 * self.season_length:
            hold = 0  # too short to hold anything out: calibrate in-sample below
        train = truncate(history, hold) if hold else history
        self.fitted_members_ = {
            name: _fit_member(m, history if name in self.fit_once else train, self.fit_cache)
            for name, m in self.members.items()
        }
        residuals, steps = self._calibration_residuals(history, hold)
        self.calibrator_ = ConformalCalibrator().fit(residuals, steps, self.horizon)
        if self.refit and hold:
            for name, m in self.members.items():
                if name not in self.fit_once:
                    self.fitted_members_[name] = _fit_member(m, history, self.fit_cache)
        return self

    def _calibration_residuals(
        self, history: pd.DataFrame, hold: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if hold == 0:
            hold = min(self.horizon, int(history.groupby(SERIES).size().min()) // 2)
        res, steps = [], []
        starts = range(hold, 0, -self.origin_every)
        for remaining in starts:
            past = truncate(history, remaining)
            if past.empty:
                continue
            combo = self._combine(past, min(self.horizon, remaining))
            spreads = self._spreads(past)
            actual = history.set_index([SERIES, TS])[Y]
            keys = pd.MultiIndex.from_frame(combo[[SERIES, TS]])
            y = actual.reindex(keys).to_numpy(float)
            scale = combo[SERIES].map(spreads).to_numpy(float)
            res.append((y - combo["point"].to_numpy(float)) / scale)
            steps.append(combo[STEP].to_numpy())
        if not res:
            return np.zeros(1), np.ones(1, dtype=int)
        return np.concatenate(res), np.concatenate(steps)

    def predict(
        self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]
    ) -> pd.DataFrame:
        """Forecast every series of ``history``: member median plus calibrated offsets."""
        check_fitted(self, "calibrator_")
        check_history(history, type(self).__name__)
        levels = sorted(quantiles)
        series = split_series(history, self.freq)
        combo = self._combine(history, horizon)
        spreads = self._spreads(history)
        offsets = self.calibrator_.offsets(np.arange(1, horizon + 1), levels)
        out = np.empty((len(series), horizon, len(levels)))
        for i, s in enumerate(series):
            point = (
                combo.loc[combo[SERIES] == s.series_id].sort_values(STEP)["point"].to_numpy(float)
            )
            out[i] = point[:, None] + spreads[s.series_id] * offsets
        return forecast_frame(series, out, levels, self.freq)
