"""Recent history of the known load series, held in memory as NumPy arrays.

The forecast route never reads the lake: the history of every known series is
read once when a model is loaded (and again when the lake changes) and kept as
one ``(ts, y)`` pair of arrays per ``(target, series_id)``.

A lake that cannot be read is never taken for an empty one: a corrupt or
unreadable partition, or a partition of the cached window that vanished since
the last read, raises :class:`LakeReadError` naming it. The caller keeps the last
good cache, or (with none) serves a cache marked ``unavailable`` whose lookups
raise that error instead of answering "unknown series".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.errors import DataValidationError, ReplicastError, UnknownKeyError
from forecasting.forecaster import SERIES, TS, Y
from forecasting.lake import Lake
from forecasting.settings import Target

logger = logging.getLogger(__name__)

NODE_METRICS = "node_metrics"

#: Days of history kept per series (a weekly seasonal lag plus rolling windows fit easily).
DEFAULT_WINDOW_DAYS = 21


class LakeReadError(ReplicastError):
    """The lake's ``node_metrics`` could not be read; the message names the partition."""


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
    #: the partition files read (as strings), to notice one vanishing
    files: frozenset[str] = frozenset()
    #: why no history could be read (a cache that never had a good read), else None
    unavailable: str | None = None

    def get(self, target: str, series_id: str) -> SeriesHistory:
        """The history of one series.

        Raises:
            LakeReadError: the lake could not be read when this cache was built.
            UnknownKeyError: the target or the series is not known (names the known ones).
        """
        if self.unavailable is not None:
            raise LakeReadError(
                f"the history of known series is unavailable: {self.unavailable}; "
                "send 'history' with the request meanwhile"
            )
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
    mtimes = []
    for path in lake.partitions(NODE_METRICS):
        try:
            mtimes.append(path.stat().st_mtime)
        except FileNotFoundError:  # removed since the listing: the next stamp differs anyway
            continue
    return (len(mtimes), max(mtimes, default=0.0))


def _day(path: Path) -> date:
    return date.fromisoformat(path.parent.name.removeprefix("date="))


def _vanished(previous: SeriesCache | None, files: list[Path], start: date | None) -> str | None:
    """A partition file of ``previous`` within the window (from ``start``) that is gone now."""
    if previous is None or not previous.files:
        return None
    present = {str(f) for f in files}
    for name in sorted(previous.files - present):
        if start is None or _day(Path(name)) >= start:
            return name
    return None


def load_series_cache(
    lake: Lake,
    targets: Iterable[Target],
    *,
    freq: str = "1h",
    window_days: int = DEFAULT_WINDOW_DAYS,
    previous: SeriesCache | None = None,
) -> SeriesCache:
    """Read the last ``window_days`` of ``node_metrics`` and build each target's series.

    A lake without ``node_metrics`` gives an empty cache (known-series forecasts then
    answer 404; ad-hoc history still works).

    Args:
        lake: the lake to read.
        targets: the targets to build series for.
        freq: the series resolution. Defaults to hourly.
        window_days: days of history kept per series.
        previous: the cache this one replaces (a partition of its window that is gone
            now is an error, not less history).

    Raises:
        LakeReadError: a partition is corrupt or unreadable, a partition of the previous
            window vanished, or the window holds no rows (names the file).
    """
    from pipelines.load_series import read_series

    stamp = lake_stamp(lake)
    files = lake.partitions(NODE_METRICS)
    start = pd.Timestamp(_day(files[-1]) - timedelta(days=window_days), tz="UTC") if files else None
    gone = _vanished(previous, files, start.date() if start is not None else None)
    if gone is not None:
        raise LakeReadError(
            f"node_metrics partition {gone} vanished since the last read "
            "(re-ingest that day, or restart the service to accept the loss)"
        )
    if start is None:
        logger.warning("lake %s has no node_metrics; no known series cached", lake.root)
        return SeriesCache({}, stamp)
    try:
        frames = read_series(lake, targets, freq=freq, start=start)
    except DataValidationError as exc:
        raise LakeReadError(f"reading node_metrics failed: {exc}") from exc
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
    return SeriesCache(series, stamp, frozenset(str(f) for f in files))
