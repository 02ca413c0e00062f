"""One global LightGBM model over all series of a target: scale-free, direct multi-horizon.

How it works:

1. Every series is normalised at each origin by its level and spread
   (:mod:`features.scaling`), so series of any size feed one model.
2. Rows are (origin, step) pairs of every series (:mod:`features.direct`):
   the step is a feature, so one model forecasts all ``horizon`` steps.
3. The median is learned with an L1 objective on all rows whose target lies
   before the last ``calibration_steps`` of each series; the rows after that
   cut (rolling origins over the last days) stop the boosting early and give
   held-out residuals.
4. Quantiles are the median plus split-conformal residual quantiles per step
   bucket (:mod:`models.calibration`), in the scale-free units, so stated
   coverage is real coverage; they are sorted so they never cross.
5. With ``refit=True`` the model is then refitted on all rows with the
   early-stopped number of trees, so the newest days are learned too.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from features.calendar import local_calendar, timezone_of
from features.direct import direct_design, feature_names
from features.scaling import origin_scales
from forecasting.forecaster import quantile_column
from models.calibration import ConformalCalibrator
from models.fit_cache import FitCache
from models.fitted import check_fitted
from models.panel import Series, check_history, forecast_frame, split_series

logger = logging.getLogger(__name__)


class LightGBMQuantile:
    """Global, scale-free, direct multi-horizon LightGBM with conformal quantiles.

    Args:
        freq: step of the series (pandas alias).
        season_length: steps per day.
        week_length: steps per week.
        horizon: steps the model is trained to forecast (longer requests reuse the last step).
        timezones: series id or region name -> IANA zone for the calendar features.
        n_lags: recent values used as features.
        calibration_steps: newest steps of each series held out for early stopping
            and conformal residuals; a week of hourly steps, so the residual pool holds
            every day of the week (weekend steps, rare clean-ups) and not only the last
            few days (on the sample: disk_used_bytes 90 % coverage 0.74 with 72 steps,
            0.84 with 168; neutral on the real series of bench/real_series.py).
        max_rows: training rows kept (origins are thinned evenly above this).
        n_estimators: maximum boosting rounds.
        learning_rate: boosting learning rate.
        num_leaves: leaves per tree.
        min_child_samples: minimum rows per leaf.
        refit: refit on all rows after early stopping.
        n_jobs: LightGBM threads.
        random_state: seed.
        fit_cache: a memo of fits shared with other models of the caller (None = none):
            a fit of identical parameters and data is adopted instead of repeated.
    """

    def __init__(
        self,
        freq: str = "1h",
        season_length: int = 24,
        week_length: int = 168,
        horizon: int = 24,
        timezones: Mapping[str, str] | None = None,
        n_lags: int = 24,
        calibration_steps: int = 168,
        max_rows: int = 120_000,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        refit: bool = True,
        n_jobs: int = 1,
        random_state: int = 0,
        fit_cache: FitCache | None = None,
    ) -> None:
        self.freq = freq
        self.season_length = season_length
        self.week_length = week_length
        self.horizon = horizon
        self.timezones = timezones
        self.n_lags = n_lags
        self.calibration_steps = calibration_steps
        self.max_rows = max_rows
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.refit = refit
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.fit_cache = fit_cache

    # -- design -----------------------------------------------------------------------------

    def _design(
        self, s: Series, origins: np.ndarray, steps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        level, spread = origin_scales(s.y, self.season_length, self.season_length, self.week_length)
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(self.freq))
        extended = s.ts[0] + np.arange(s.y.size + int(steps.max()) + 1) * step
        cal = local_calendar(extended, timezone_of(s.series_id, self.timezones))
        X, target = direct_design(
            s.y,
            origins,
            steps,
            level=level,
            spread=spread,
            hour=cal["hour"],
            dayofweek=cal["dayofweek"],
            season_length=self.season_length,
            week_length=self.week_length,
            n_lags=self.n_lags,
        )
        t = np.repeat(origins, len(steps))
        return X, target, level[t], spread[t]

    def _training_rows(
        self, series: list[Series]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        steps = np.arange(1, self.horizon + 1)
        usable = [s for s in series if s.y.size > self.season_length]
        total = sum(len(s.y) for s in usable) * len(steps)
        stride = max(1, math.ceil(total / max(self.max_rows, 1)))
        Xs, ys, hold, step_col = [], [], [], []
        for s in usable:
            n = s.y.size
            cut = n - self.calibration_steps
            # origins thinned from the newest one backwards, so the newest are always kept
            origins = np.arange(n - 2, self.season_length - 2, -stride)[::-1]
            origins = origins[origins >= 0]
            if origins.size == 0:
                continue
            X, target, _, _ = self._design(s, origins, steps)
            t = np.repeat(origins, len(steps))
            h = np.tile(steps, len(origins))
            valid = np.isfinite(target) & (t + h < n)
            is_hold = (t + h >= cut) & (t >= cut - 1)
            in_train = t + h < cut
            keep = valid & (is_hold | in_train)
            Xs.append(X[keep])
            ys.append(target[keep])
            hold.append(is_hold[keep])
            step_col.append(h[keep])
        if not Xs:
            width = len(feature_names(self.n_lags))
            return np.empty((0, width)), np.empty(0), np.empty(0, bool), np.empty(0, int)
        return np.vstack(Xs), np.concatenate(ys), np.concatenate(hold), np.concatenate(step_col)

    def _regressor(self, n_estimators: int) -> Any:
        import lightgbm as lgb

        return lgb.LGBMRegressor(
            objective="l1",
            n_estimators=n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            reg_lambda=1.0,
            n_jobs=self.n_jobs,
            max_bin=127,
            random_state=self.random_state,
            verbose=-1,
        )

    # -- protocol ---------------------------------------------------------------------------

    def fit(self, history: pd.DataFrame) -> Self:
        """Learn one model from all series of ``history``; returns ``self``."""
        import lightgbm as lgb

        check_history(history, type(self).__name__)
        cache = self.fit_cache
        key = () if cache is None else cache.key(self, history)
        if cache is not None and cache.adopt(self, key):
            return self
        self.offsets_cache_: dict[tuple[int, tuple[float, ...]], np.ndarray] = {}
        series = split_series(history, self.freq)
        X, target, hold, steps = self._training_rows(series)
        names = feature_names(self.n_lags)
        if X.shape[0] == 0:
            self.booster_ = None
            self.calibrator_ = ConformalCalibrator().fit(np.zeros(1), np.ones(1), self.horizon)
            self.feature_names_ = names
            logger.warning("LightGBMQuantile: series too short to train; forecasting the level")
            return self
        train, held = ~hold, hold
        if held.sum() >= 50 and train.sum() >= 200:
            model = self._regressor(self.n_estimators)
            with warnings.catch_warnings():  # eval_set is deprecated in newer LightGBM
                warnings.simplefilter("ignore")
                model.fit(
                    X[train],
                    target[train],
                    eval_set=[(X[held], target[held])],
                    eval_metric="l1",
                    callbacks=[lgb.early_stopping(30, verbose=False)],
                )
            best = int(model.best_iteration_ or self.n_estimators)
            residuals = target[held] - model.predict(X[held], num_iteration=best)
            self.calibrator_ = ConformalCalibrator().fit(residuals, steps[held], self.horizon)
            if self.refit:
                model = self._regressor(max(best, 10)).fit(X, target)
        else:
            model = self._regressor(max(self.n_estimators // 3, 10)).fit(X, target)
            residuals = target - model.predict(X)
            self.calibrator_ = ConformalCalibrator().fit(residuals, steps, self.horizon)
            best = model.n_estimators
        self.booster_ = model
        self.n_trees_ = best
        self.feature_names_ = names
        if cache is not None:
            cache.remember(key, copy.deepcopy(self))
        return self

    def predict(
        self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]
    ) -> pd.DataFrame:
        """Forecast ``horizon`` steps of every series of ``history`` from its last timestamp."""
        check_fitted(self, "calibrator_")
        check_history(history, type(self).__name__)
        levels = tuple(sorted(quantiles))
        series = split_series(history, self.freq)
        out = np.empty((len(series), horizon, len(levels)))
        ahead = self._step_ns() * np.arange(1, horizon + 1)
        for i, s in enumerate(series):
            future = np.datetime64(pd.Timestamp(s.last_ts).value, "ns") + ahead
            out[i] = self._forecast_series(s.series_id, future, s.y, levels)
        return forecast_frame(series, out, levels, self.freq)

    def forecast_arrays(
        self,
        series_id: str,
        last: np.datetime64,
        values: np.ndarray,
        horizon: int,
        quantiles: Sequence[float],
    ) -> dict[str, np.ndarray]:
        """:meth:`predict` for one series given as arrays (the serving fast path, no DataFrames).

        Args:
            series_id: the series key (picks the calendar's timezone).
            last: timestamp of ``values[-1]`` (UTC, naive ``datetime64[ns]``).
            values: one value per ``freq`` step ending at ``last``, oldest first (NaN = missing).
            horizon: steps ahead.
            quantiles: quantile levels.

        Returns:
            ``{"ts", "step", "q<level>"...}`` arrays of length ``horizon``.
        """
        check_fitted(self, "calibrator_")
        levels = tuple(sorted(quantiles))
        values = np.asarray(values, dtype=np.float64).ravel()
        steps = np.arange(1, horizon + 1, dtype=np.int64)
        future = last + self._step_ns() * steps
        table = self._forecast_series(series_id, future, values, levels)
        out = {"ts": future, "step": steps}
        for j, q in enumerate(levels):
            out[quantile_column(q)] = table[:, j]
        return out

    def _step_ns(self) -> np.timedelta64:
        return np.timedelta64(pd.Timedelta(pd.tseries.frequencies.to_offset(self.freq)).value, "ns")

    def _forecast_series(
        self,
        series_id: str,
        future: np.ndarray,
        y: np.ndarray,
        levels: tuple[float, ...],
    ) -> np.ndarray:
        """Sorted quantiles ``(len(future), len(levels))`` of one series from its last origin.

        ``future`` holds the target times (UTC, naive ``datetime64[ns]``), one step apart
        after the last value of ``y``.

        The one prediction of this model (:meth:`predict` and :meth:`forecast_arrays`
        both call it). It reads only the newest ``2 * (week_length + season_length)``
        values: every lag, season and rolling window of the features fits in them.
        """
        y = y[-2 * (self.week_length + self.season_length) :]
        n = y.size
        horizon = future.size
        steps = np.arange(1, horizon + 1)
        level, spread = origin_scales(y, self.season_length, self.season_length, self.week_length)
        cal = local_calendar(pd.DatetimeIndex(future), timezone_of(series_id, self.timezones))
        hour = np.zeros(n + horizon + 1, dtype=np.int64)
        dayofweek = np.zeros(n + horizon + 1, dtype=np.int64)
        hour[n - 1 + steps] = cal["hour"]
        dayofweek[n - 1 + steps] = cal["dayofweek"]
        X, _ = direct_design(
            y,
            np.array([n - 1]),
            steps,
            level=level,
            spread=spread,
            hour=hour,
            dayofweek=dayofweek,
            season_length=self.season_length,
            week_length=self.week_length,
            n_lags=self.n_lags,
        )
        X[:, 0] = np.minimum(X[:, 0], self.horizon)  # longer requests reuse the last step
        if self.booster_ is None:
            z = np.zeros(horizon)
        else:  # the raw Booster: same trees as the sklearn wrapper, without its input checks
            booster = getattr(self.booster_, "booster_", self.booster_)
            z = booster.predict(X, num_threads=1)
        z = np.where(np.isfinite(z), z, 0.0)
        return np.sort(level[-1] + spread[-1] * (z[:, None] + self._offsets(horizon, levels)), 1)

    def _offsets(self, horizon: int, levels: tuple[float, ...]) -> np.ndarray:
        """The calibrator's offsets for steps ``1..horizon``, memoised per (horizon, levels)."""
        cache = self.__dict__.setdefault("offsets_cache_", {})
        key = (horizon, levels)
        if key not in cache:
            cache[key] = self.calibrator_.offsets(np.arange(1, horizon + 1), levels)
        return cache[key]
