"""Long history frames to per-series arrays and quantile arrays back to forecast frames."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.errors import DataValidationError
from forecasting.forecaster import SERIES, STEP, TS, Y, quantile_column


@dataclass(frozen=True)
class Series:
    """One series of a history frame: regular timestamps and values (NaN = missing)."""

    series_id: str
    ts: pd.DatetimeIndex
    y: np.ndarray

    @property
    def last_ts(self) -> pd.Timestamp:
        return self.ts[-1]


def check_history(history: pd.DataFrame, who: str) -> None:
    """Raise :class:`DataValidationError` unless ``history`` has ``series_id, ts, y`` rows."""
    missing = [c for c in (SERIES, TS, Y) if c not in history.columns]
    if missing:
        raise DataValidationError(
            f"{who}: history lacks column(s) {missing}; expected a long frame series_id, ts, y"
        )
    if history.empty:
        raise DataValidationError(f"{who}: history is empty; give at least one series")


def split_series(history: pd.DataFrame, freq: str) -> list[Series]:
    """Split a long frame into regular series (reindexed at ``freq``; gaps become NaN).

    Duplicated timestamps are averaged. Series are returned sorted by id.
    """
    out = []
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    for sid, part in history.groupby(SERIES, sort=True):
        values = part.groupby(TS, sort=True)[Y].mean()
        index = pd.DatetimeIndex(values.index)
        if len(index) > 1:
            full = pd.date_range(index[0], index[-1], freq=step)
            if len(full) != len(index) or not full.equals(index):
                values = values.reindex(full.union(index)).reindex(full)
                index = full
        out.append(Series(str(sid), index, values.to_numpy(dtype=float)))
    return out


def forecast_frame(
    series: Sequence[Series],
    values: np.ndarray,
    quantiles: Sequence[float],
    freq: str,
) -> pd.DataFrame:
    """Build the forecast frame from an array ``(n_series, horizon, n_quantiles)``.

    Quantiles are sorted along the last axis first, so they never cross.
    ``quantiles`` must be in ascending order, matching the last axis.
    """
    levels = list(quantiles)
    if levels != sorted(levels):
        raise ValueError(f"quantiles must be ascending, got {levels}")
    n_series, horizon, n_q = values.shape
    if n_series != len(series) or n_q != len(levels):
        raise ValueError(f"values shape {values.shape} does not match series/quantiles")
    ordered = np.sort(values, axis=2)
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    steps = np.arange(1, horizon + 1)
    frames = []
    for i, s in enumerate(series):
        data = {
            SERIES: s.series_id,
            TS: s.last_ts + steps * step,
            STEP: steps,
        }
        for j, q in enumerate(levels):
            data[quantile_column(q)] = ordered[i, :, j]
        frames.append(pd.DataFrame(data))
    if not frames:
        return pd.DataFrame(columns=[SERIES, TS, STEP, *map(quantile_column, levels)])
    return pd.concat(frames, ignore_index=True)


def last_valid(y: np.ndarray) -> float:
    """The last finite value of ``y`` (NaN when there is none)."""
    finite = np.flatnonzero(np.isfinite(y))
    return float(y[finite[-1]]) if finite.size else float("nan")


def forecast_each(
    history: pd.DataFrame,
    horizon: int,
    quantiles: Sequence[float],
    freq: str,
    forecast_one: Callable[[Series, int, list[float]], np.ndarray],
    who: str,
) -> pd.DataFrame:
    """Validate ``history``, forecast each series with ``forecast_one`` and build the frame.

    ``forecast_one(series, horizon, levels)`` returns an array ``(horizon, len(levels))``
    for ascending ``levels``; the models that forecast one series at a time share this.
    """
    check_history(history, who)
    levels = sorted(quantiles)
    series = split_series(history, freq)
    out = np.empty((len(series), horizon, len(levels)))
    for i, s in enumerate(series):
        out[i] = forecast_one(s, horizon, levels)
    return forecast_frame(series, out, levels, freq)
