"""Load series: ``node_metrics`` rows -> hourly long frames per target.

One series per (cluster, region), ``series_id = "<cluster>/<region>"``, with the
columns of the ``Forecaster`` contract (``series_id``, ``ts`` UTC, ``y``):

- ``qps_total``: sum over the region's nodes of ``qps_read + qps_write``, hourly mean;
- ``cpu_util``: mean over the region's nodes, hourly mean;
- ``repl_bytes``: sum over nodes of the bytes shipped, hourly sum (bytes per hour);
- ``disk_used_bytes``: sum over nodes, the last value of the hour.

Each node is aggregated to the hour first and the nodes are combined second, so a
node that misses one 5-minute interval does not make a dip in the region's total.
For ``repl_bytes`` a node's hourly sum is its mean over the intervals it reported
times the number of intervals in an hour (equal to the plain sum when none is
missing). Hours in which no node reported are NaN rows on a regular grid.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from forecasting.errors import DataValidationError
from forecasting.forecaster import SERIES, TS, Y
from forecasting.lake import Lake
from forecasting.settings import Target

logger = logging.getLogger(__name__)

NODE_METRICS = "node_metrics"
_KEYS = ["cluster", "region"]

#: The ``node_metrics`` columns each target reads.
TARGET_COLUMNS: dict[str, list[str]] = {
    "qps_total": ["qps_read", "qps_write"],
    "cpu_util": ["cpu_util"],
    "repl_bytes": ["repl_bytes"],
    "disk_used_bytes": ["disk_used_bytes"],
}


def series_id(cluster: str, region: str) -> str:
    """The series key of a (cluster, region): ``"orders/us-east"``."""
    return f"{cluster}/{region}"


def _check_frame(node_metrics: pd.DataFrame, target: str) -> None:
    if target not in TARGET_COLUMNS:
        raise DataValidationError(
            f"unknown target {target!r}; known targets are {sorted(TARGET_COLUMNS)}"
        )
    needed = [TS, "node", *_KEYS, *TARGET_COLUMNS[target]]
    missing = [c for c in needed if c not in node_metrics.columns]
    if missing:
        raise DataValidationError(
            f"node_metrics: column(s) {missing} missing, needed for target {target!r}; "
            f"columns present: {list(node_metrics.columns)}"
        )


def _utc(ts: pd.Series) -> pd.Series:
    ts = pd.to_datetime(ts)
    if ts.dt.tz is None:
        raise DataValidationError(
            "node_metrics: 'ts' is timezone-naive; store UTC timestamps (ingest does)"
        )
    return ts.dt.tz_convert("UTC")


def _intervals_per_bucket(ts: pd.Series, freq: str) -> float:
    """How many raw intervals fit in one bucket (12 for 5-minute rows and hourly buckets)."""
    distinct = np.sort(ts.drop_duplicates().to_numpy())
    bucket = pd.Timedelta(freq)
    if len(distinct) < 2:
        return 1.0
    step = pd.Timedelta(np.median(np.diff(distinct)))
    if step <= pd.Timedelta(0):
        return 1.0
    return max(bucket / step, 1.0)


def build_series(node_metrics: pd.DataFrame, target: Target, freq: str = "1h") -> pd.DataFrame:
    """Aggregate raw node metrics to one regular series per (cluster, region) for ``target``.

    Args:
        node_metrics: rows of the ``node_metrics`` dataset (UTC ``ts``).
        target: which load series to build (see the module docstring).
        freq: bucket size (pandas alias). Defaults to hourly.

    Returns:
        A long frame ``series_id, ts, y`` sorted by series then time, on a regular
        ``freq`` grid per series (NaN ``y`` where nothing was reported).

    Raises:
        DataValidationError: an unknown target, a missing column or naive timestamps.
    """
    _check_frame(node_metrics, target)
    if node_metrics.empty:
        return pd.DataFrame(
            {
                SERIES: pd.Series(dtype=str),
                TS: pd.Series(dtype="datetime64[ns, UTC]"),
                Y: pd.Series(dtype=float),
            }
        )
    frame = node_metrics[[TS, "node", *_KEYS, *TARGET_COLUMNS[target]]].copy()
    frame[TS] = _utc(frame[TS])
    if target == "qps_total":
        frame["v"] = frame["qps_read"].astype(float) + frame["qps_write"].astype(float)
    else:
        frame["v"] = frame[target].astype(float)
    frame["bucket"] = frame[TS].dt.floor(freq)
    per_node = frame.groupby([*_KEYS, "node", "bucket"], sort=True, observed=True)["v"]
    if target == "disk_used_bytes":
        node_hourly = (
            frame.sort_values(TS, kind="stable")
            .dropna(subset=["v"])
            .groupby([*_KEYS, "node", "bucket"], sort=True, observed=True)["v"]
            .last()
        )
    elif target == "repl_bytes":
        node_hourly = per_node.mean() * _intervals_per_bucket(frame[TS], freq)
    else:
        node_hourly = per_node.mean()
    node_hourly = node_hourly.dropna().reset_index()
    combine = "mean" if target == "cpu_util" else "sum"
    region = node_hourly.groupby([*_KEYS, "bucket"], sort=True, observed=True)["v"].agg(combine)
    region = region.reset_index()
    region[SERIES] = [
        series_id(c, r) for c, r in zip(region["cluster"], region["region"], strict=True)
    ]
    out = region.rename(columns={"bucket": TS, "v": Y})[[SERIES, TS, Y]]
    return _regular(out, freq)


def _regular(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Reindex each series onto a full ``freq`` grid from its first to its last bucket."""
    parts = []
    for sid, part in frame.groupby(SERIES, sort=True):
        grid = pd.date_range(part[TS].min(), part[TS].max(), freq=freq, tz="UTC", name=TS)
        values = part.set_index(TS)[Y].reindex(grid)
        parts.append(pd.DataFrame({SERIES: sid, TS: grid, Y: values.to_numpy(dtype=float)}))
    if not parts:
        return frame.reset_index(drop=True)
    return pd.concat(parts, ignore_index=True)


def build_all(
    node_metrics: pd.DataFrame, targets: Iterable[Target], freq: str = "1h"
) -> dict[Target, pd.DataFrame]:
    """:func:`build_series` for each target, keyed by target."""
    return {target: build_series(node_metrics, target, freq) for target in targets}


def read_series(
    lake: Lake,
    targets: Iterable[Target],
    freq: str = "1h",
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
) -> dict[Target, pd.DataFrame]:
    """Read ``node_metrics`` from the lake and build the load series of each target.

    Args:
        lake: the lake to read.
        targets: the targets to build.
        freq: bucket size. Defaults to hourly.
        start: first timestamp to read (inclusive); None reads from the beginning.
        end: last timestamp (exclusive); None reads to the end.

    Raises:
        DataValidationError: the lake holds no ``node_metrics`` rows in the window.
    """
    targets = list(targets)
    columns = sorted({TS, "node", *_KEYS, *(c for t in targets for c in TARGET_COLUMNS[t])})
    frame = lake.read(NODE_METRICS, start=start, end=end, columns=columns)
    if frame.empty:
        raise DataValidationError(
            f"{lake.path(NODE_METRICS)}: no node_metrics rows"
            + (f" between {start} and {end}" if start is not None or end is not None else "")
            + "; ingest some first (replicast ingest --source sample)"
        )
    logger.info("building load series from %d node_metrics rows", len(frame))
    return build_all(frame, targets, freq)
