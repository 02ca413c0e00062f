"""Forecast accuracy metrics: MASE, pinball loss and interval coverage.

All functions take plain arrays and ignore positions where the actual value is
missing (NaN), so a gap in the test window lowers the count, not the score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

ArrayLike = Sequence[float] | NDArray[np.float64]

COVERAGE_LOWER = 0.05
COVERAGE_UPPER = 0.95


def _as_float(values: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(values, dtype=float).ravel()


def seasonal_naive_scale(train: ArrayLike, season_length: int) -> float:
    """In-sample mean absolute error of the seasonal-naive forecast on ``train``.

    ``mean(|y[t] - y[t - season_length]|)`` over the pairs where both values are
    known. When the training part is shorter than one season plus one, or the
    seasonal differences are all zero, the lag-1 naive error is used instead.

    Args:
        train: the training part of the series (oldest first; NaN = missing).
        season_length: steps per season (24 for a daily season of hourly data).

    Returns:
        The scale, or NaN when neither the seasonal nor the lag-1 error is
        positive (a constant series has no scale).
    """
    y = _as_float(train)
    for lag in (season_length, 1):
        if lag < 1 or y.size <= lag:
            continue
        diff = np.abs(y[lag:] - y[:-lag])
        diff = diff[np.isfinite(diff)]
        if diff.size and diff.mean() > 0:
            return float(diff.mean())
    return float("nan")


def mase(
    actual: ArrayLike,
    forecast: ArrayLike,
    train: ArrayLike,
    season_length: int,
) -> float:
    """Mean absolute scaled error.

    The mean absolute error of ``forecast`` against ``actual``, divided by the
    in-sample seasonal-naive MAE of ``train`` (:func:`seasonal_naive_scale`).
    Below 1 means better than the in-sample seasonal-naive forecast.

    Args:
        actual: observed values of the test window (NaN = missing, skipped).
        forecast: point forecasts (usually the median), same length.
        train: the training part before the forecast origin.
        season_length: season of the scaling seasonal-naive forecast.

    Returns:
        The MASE, or NaN when nothing was observed or the scale is undefined.
    """
    a, f = _as_float(actual), _as_float(forecast)
    if a.shape != f.shape:
        raise ValueError(f"actual has {a.size} values but forecast has {f.size}")
    mask = np.isfinite(a) & np.isfinite(f)
    scale = seasonal_naive_scale(train, season_length)
    if not mask.any() or not np.isfinite(scale):
        return float("nan")
    return float(np.abs(a[mask] - f[mask]).mean() / scale)


def pinball_loss(actual: ArrayLike, quantile_forecasts: Mapping[float, ArrayLike]) -> float:
    """Pinball (quantile) loss, averaged over time and over the quantiles.

    For quantile ``q`` and error ``e = actual - forecast`` the loss is
    ``max(q * e, (q - 1) * e)``.

    Args:
        actual: observed values (NaN = missing, skipped).
        quantile_forecasts: quantile level -> forecasts of that quantile.

    Returns:
        The mean loss in the units of the series, or NaN when nothing to score.
    """
    a = _as_float(actual)
    losses = []
    for q, values in quantile_forecasts.items():
        f = _as_float(values)
        if f.shape != a.shape:
            raise ValueError(f"quantile {q}: {f.size} forecasts for {a.size} actual values")
        mask = np.isfinite(a) & np.isfinite(f)
        if not mask.any():
            continue
        err = a[mask] - f[mask]
        losses.append(np.maximum(q * err, (q - 1) * err).mean())
    return float(np.mean(losses)) if losses else float("nan")


def interval_coverage(actual: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Share of observed actuals inside ``[lower, upper]`` (both ends included).

    Returns:
        A share in 0..1, or NaN when nothing was observed.
    """
    a, lo, hi = _as_float(actual), _as_float(lower), _as_float(upper)
    mask = np.isfinite(a) & np.isfinite(lo) & np.isfinite(hi)
    if not mask.any():
        return float("nan")
    return float(((a[mask] >= lo[mask]) & (a[mask] <= hi[mask])).mean())


def quantile_coverage(actual: ArrayLike, forecast: ArrayLike) -> float:
    """One-sided coverage of a quantile forecast: share of actuals ``<= forecast``.

    A calibrated q-quantile has a one-sided coverage close to ``q``.
    """
    a, f = _as_float(actual), _as_float(forecast)
    mask = np.isfinite(a) & np.isfinite(f)
    if not mask.any():
        return float("nan")
    return float((a[mask] <= f[mask]).mean())


def coverage_90(actual: ArrayLike, quantile_forecasts: Mapping[float, ArrayLike]) -> float:
    """Two-sided 90 % coverage: share of actuals within ``[q0.05, q0.95]``.

    Returns NaN when either of the two quantiles is missing.
    """
    lower = _lookup(quantile_forecasts, COVERAGE_LOWER)
    upper = _lookup(quantile_forecasts, COVERAGE_UPPER)
    if lower is None or upper is None:
        return float("nan")
    return interval_coverage(actual, lower, upper)


def _lookup(quantile_forecasts: Mapping[float, ArrayLike], q: float) -> ArrayLike | None:
    for level, values in quantile_forecasts.items():
        if np.isclose(level, q):
            return values
    return None
