"""Recent history of the known load series, held in memory as NumPy arrays.

The forecast route never reads the lake: the history of every known series is
read once when a model is loaded (and again when the lake changes) and kept as
one ``(ts, y)`` pair of arrays per ``(target, series_id)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from forecasting.errors import DataValidationError, UnknownKeyError
from forecasting.forecaster import SERIES, TS, Y
from forecasting.lake import Lake
from forecasting.settings import Target

logger = logging.getLogger(__name__)

NODE_METRICS = "node_metrics"

#: Days of history kept per series (a weekly seasonal lag plus rolling windows fit easily).
DEFAULT_WINDOW_DAYS = 21


@dataclass(frozen=True)
class SeriesHistory:
    """One series' recent history: UTC timestamps (``datetime64[ns]``) and values."""

    ts: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class SeriesCache:
    """Immutable snapshot of the known series' history, by target then series id."""

    series: Mapping[str, Mapping[str, SeriesHistory]] = field(default_factory=dict)
    lake_stamp: tuple[int, float] = (0, 0.0)

    def get(self, target: str, series_id: str) -> SeriesHistory:
        """The history of one series.

        Raises:
            UnknownKeyError: the target or the series is not known (names the known ones).
        """
        by_series = self.series.get(target)
        if not by_series:
            raise UnknownKeyError(
                f"no history cached for target {target!r}; targets with history: "
                f"{sorted(self.series)} (ingest node_metrics, or send 'history')"
            )
        found = by_series.get(series_id)
        if found is None:
            known = sorted(by_series)
            raise UnknownKeyError(
                f"unknown series {series_id!r} for target {target!r}; known series: "
                f"{known[:20]}{' ...' if len(known) > 20 else ''}"
            )
        return found

    def counts(self) -> dict[str, int]:
        return {target: len(by_series) for target, by_series in self.series.items()}


def lake_stamp(lake: Lake) -> tuple[int, float]:
    """A cheap fingerprint of ``node_metrics`` (file count, newest mtime) to detect new data."""
    files = lake.partitions(NODE_METRICS)
    if not files:
        return (0, 0.0)
    return (len(files), max(f.stat().st_mtime for f in files))


def _last_day(lake: Lake) -> date | None:
    files = lake.partitions(NODE_METRICS)
    if not files:
        return None
    return date.fromisoformat(files[-1].parent.name.removeprefix("date="))


def load_series_cache(
    lake: Lake,
    targets: Iterable[Target],
    *,
    freq: str = "1h",
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> SeriesCache:
    """Read the last ``window_days`` of ``node_metrics`` and build each target's series.

    An empty lake gives an empty cache (known-series forecasts then answer 404;
    ad-hoc history still works).

    Args:
        lake: the lake to read.
        targets: the targets to build series for.
        freq: the series resolution. Defaults to hourly.
        window_days: days of history kept per series.
    """
    from pipelines.load_series import read_series

    stamp = lake_stamp(lake)
    last = _last_day(lake)
    if last is None:
        logger.warning("lake %s has no node_metrics; no known series cached", lake.root)
        return SeriesCache({}, stamp)
    start = pd.Timestamp(last - timedelta(days=window_days), tz="UTC")
    try:
        frames = read_series(lake, targets, freq=freq, start=start)
    except DataValidationError as exc:
        logger.warning("no known series cached: %s", exc)
        return SeriesCache({}, stamp)
    series: dict[str, dict[str, SeriesHistory]] = {}
    for target, frame in frames.items():
        by_series: dict[str, SeriesHistory] = {}
        for sid, part in frame.groupby(SERIES, sort=True):
            ts = pd.DatetimeIndex(part[TS]).tz_convert("UTC").tz_localize(None)
            by_series[str(sid)] = SeriesHistory(
                ts=ts.to_numpy(dtype="datetime64[ns]"), y=part[Y].to_numpy(dtype=np.float64)
            )
        series[target] = by_series
    logger.info(
        "cached history of %s series since %s",
        {t: len(s) for t, s in series.items()},
        start.date(),
    )
    return SeriesCache(series, stamp)
