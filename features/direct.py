"""The direct multi-horizon design matrix of one series, scale-free.

Each row is a pair (origin ``t``, step ``h``): it describes the series as
known at ``t`` (values up to and including ``y[t]``) and the target time
``t + h``. Every value is normalised with the level and spread at the origin
(:mod:`features.scaling`), so series of any size share one model. The row's
target is ``(y[t + h] - level[t]) / spread[t]``.

Features: ``step``; ``lag_0 .. lag_{n_lags-1}`` (``y[t - k]``); seasonal lags
of the target time (``sday``: the same hour one day before it, the most
recent such value known at ``t``; ``sday2`` a day earlier; ``sweek``: a week
before it); ``sprofile`` (mean of the same hour over the last ``profile_days``
known days); trailing std/min/max over a day and mean over a week; the log
noise ratio ``log(spread / |level|)``; and the target time's local hour and
weekday.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from features.lags import take
from features.rolling import trailing_stat


def feature_names(n_lags: int) -> list[str]:
    """Column names of :func:`direct_design`, in order."""
    return [
        "step",
        *[f"lag_{k}" for k in range(n_lags)],
        "sday",
        "sday2",
        "sweek",
        "sprofile",
        "std_day",
        "min_day",
        "max_day",
        "mean_week",
        "log_noise",
        "hour",
        "dayofweek",
    ]


def direct_design(
    y: NDArray[np.float64],
    origins: NDArray[np.intp],
    steps: NDArray[np.intp],
    *,
    level: NDArray[np.float64],
    spread: NDArray[np.float64],
    hour: NDArray[np.integer[Any]],
    dayofweek: NDArray[np.integer[Any]],
    season_length: int = 24,
    week_length: int = 168,
    n_lags: int = 24,
    profile_days: int = 7,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Features and targets for every (origin, step) pair.

    Args:
        y: the series (NaN = missing), oldest first.
        origins: positions ``t`` of the origins (``0 <= t < len(y)``).
        steps: horizon steps ``h`` (``>= 1``).
        level, spread: per-position scales (``features.scaling.origin_scales``).
        hour, dayofweek: local calendar of positions ``0 .. len(y) + max(steps) - 1``.
        season_length, week_length: steps per day and per week.
        n_lags: recent values used as features.
        profile_days: days averaged in ``sprofile``.

    Returns:
        ``(X, target)``: ``X`` has ``len(origins) * len(steps)`` rows (origin-major)
        and the columns of :func:`feature_names`; ``target`` is NaN where
        ``t + h`` lies beyond ``y`` or is missing.
    """
    t = np.repeat(np.asarray(origins), len(steps))
    h = np.tile(np.asarray(steps), len(origins))
    m, s = level[t], spread[t]

    def norm(values: NDArray[np.float64]) -> NDArray[np.float64]:
        return (values - m) / s

    target_pos = t + h
    days_back = -(-h // season_length)  # ceil: the newest same-hour value known at t
    weeks_back = -(-h // week_length)
    cols = [h.astype(float)]
    cols += [norm(take(y, t - k)) for k in range(n_lags)]
    cols.append(norm(take(y, target_pos - days_back * season_length)))
    cols.append(norm(take(y, target_pos - (days_back + 1) * season_length)))
    cols.append(norm(take(y, target_pos - weeks_back * week_length)))
    profile = np.stack(
        [take(y, target_pos - (days_back + d) * season_length) for d in range(profile_days)]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        cols.append(norm(np.nanmean(profile, axis=0)))
    cols.append(trailing_stat(y, season_length, "std")[t] / s)
    cols.append(norm(trailing_stat(y, season_length, "min", 1)[t]))
    cols.append(norm(trailing_stat(y, season_length, "max", 1)[t]))
    cols.append(norm(trailing_stat(y, week_length, "mean", 1)[t]))
    cols.append(np.log(s / np.maximum(np.abs(m), 1e-12)))
    cols.append(hour[target_pos].astype(float))
    cols.append(dayofweek[target_pos].astype(float))
    X = np.column_stack(cols)
    target = norm(take(y, target_pos))
    return X, target
