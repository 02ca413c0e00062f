"""Hot-segment features: per segment and window, what its recent access history looks like.

Pure: DataFrames and arrays in, DataFrames out; no I/O, no clock.

The data is first laid out as a :class:`SegmentPanel`: dense ``(segments, windows)``
matrices of reads, writes and bytes changed per window (a window is e.g. one hour of
``segment_access``, or N requests of an access trace). :func:`segment_features` then
describes each (segment, window t) from windows ``<= t`` only, to predict window
``t + 1``:

* reads of the last 1, 2, 4, 8, 24 windows (sums) and lags 24 and 168 (same hour
  yesterday / last week when a window is an hour);
* EWMA of reads with half-lives of 1, 4 and 24 windows; trend = last window over
  the mean of the last 8; windows since the last read; share of the cluster's reads;
* writes and bytes changed of the last window and the last 4 (writes and changes
  are correlated with reads);
* size, age of the partition (windows since first seen, or from a ``pYYYYMMDD`` name);
* calendar of the predicted window in the cluster's local time (hour, day of week),
  when windows have timestamps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from forecasting.errors import DataValidationError

_PARTITION_DATE = re.compile(r"p(\d{4})(\d{2})(\d{2})")

FEATURES_BASE = [
    "reads_1",
    "reads_2",
    "reads_4",
    "reads_8",
    "reads_24",
    "reads_lag24",
    "reads_lag168",
    "ewm_1",
    "ewm_4",
    "ewm_24",
    "trend",
    "since_read",
    "share",
    "writes_1",
    "writes_4",
    "changed_1",
    "changed_4",
    "log_size",
    "age",
]
FEATURES_CALENDAR = ["hour", "dow"]


@dataclass(frozen=True)
class SegmentPanel:
    """Dense per-window matrices of one cluster (or one trace)."""

    segments: NDArray[np.generic]  # (S,) names
    starts: pd.DatetimeIndex | NDArray[np.intp]  # (W,) window starts (timestamps or positions)
    reads: NDArray[np.float64]  # (S, W)
    writes: NDArray[np.float64]  # (S, W)
    changed: NDArray[np.float64]  # (S, W) bytes changed
    size: NDArray[np.float64]  # (S, W) bytes (carried forward)
    first_seen: NDArray[np.intp]  # (S,) index of the first window with data
    window_hours: float | None = None  # window length when windows are timed

    @property
    def n_windows(self) -> int:
        return int(self.reads.shape[1])


def build_panel(
    frame: pd.DataFrame,
    *,
    window: str = "1h",
    segment_col: str = "segment",
    time_col: str = "ts",
) -> SegmentPanel:
    """Aggregate ``segment_access``-like rows (one cluster) into a dense window panel.

    Args:
        frame: rows with ``segment``, ``ts`` (UTC) and ``reads``; optional ``writes``,
            ``bytes_changed``, ``size_bytes``.
        window: the window length (pandas alias), e.g. ``"1h"``.

    Raises:
        DataValidationError: empty frame or a missing column.
    """
    for required in (segment_col, time_col, "reads"):
        if required not in frame.columns:
            raise DataValidationError(f"segment panel: missing column {required!r}")
    if frame.empty:
        raise DataValidationError("segment panel: no rows (empty history)")
    ts = pd.to_datetime(frame[time_col], utc=True).dt.floor(window)
    start, end = ts.min(), ts.max()
    starts = pd.date_range(start, end, freq=window)
    col = ((ts - start) / pd.Timedelta(window)).astype(int).to_numpy()
    segments, row = np.unique(frame[segment_col].astype(str).to_numpy(), return_inverse=True)
    shape = (len(segments), len(starts))

    def dense(name: str, how: str = "sum") -> NDArray[np.float64]:
        out = np.zeros(shape) if how == "sum" else np.full(shape, np.nan)
        if name not in frame.columns:
            return np.zeros(shape)
        values = pd.to_numeric(frame[name], errors="coerce").fillna(0).to_numpy(dtype=float)
        if how == "sum":
            np.add.at(out, (row, col), values)
        else:
            out[row, col] = values
        return out

    size = pd.DataFrame(dense("size_bytes", how="last")).ffill(axis=1).fillna(0).to_numpy()
    seen = np.zeros(shape, dtype=bool)
    seen[row, col] = True
    return SegmentPanel(
        segments=segments,
        starts=starts,
        reads=dense("reads"),
        writes=dense("writes"),
        changed=dense("bytes_changed"),
        size=size,
        first_seen=seen.argmax(axis=1),
        window_hours=pd.Timedelta(window) / pd.Timedelta("1h"),
    )


def panel_from_counts(
    segments: NDArray[np.generic],
    counts: NDArray[np.float64],
    size: NDArray[np.float64] | None = None,
) -> SegmentPanel:
    """A panel of an access trace: ``counts[s, w]`` accesses of segment s in window w."""
    counts = np.asarray(counts, dtype=float)
    n_seg, n_win = counts.shape
    seen = counts > 0
    first = np.where(seen.any(axis=1), seen.argmax(axis=1), n_win)
    sizes = np.zeros(n_seg) if size is None else np.asarray(size, dtype=float)
    return SegmentPanel(
        segments=np.asarray(segments),
        starts=np.arange(n_win),
        reads=counts,
        writes=np.zeros_like(counts),
        changed=np.zeros_like(counts),
        size=np.repeat(sizes[:, None], n_win, axis=1),
        first_seen=first,
        window_hours=None,
    )


def _window_sum(
    cum: NDArray[np.float64], rows: NDArray[np.intp], t: NDArray[np.intp], k: int
) -> NDArray[np.float64]:
    """Sum of windows t-k+1..t of each (row, t) pair from a cumulative matrix."""
    return cum[rows, t + 1] - cum[rows, np.maximum(t + 1 - k, 0)]


def _lag(
    matrix: NDArray[np.float64], rows: NDArray[np.intp], t: NDArray[np.intp], k: int
) -> NDArray[np.float64]:
    """Value of the window k windows before the predicted one (t+1), NaN before the start."""
    i = t + 1 - k
    out = np.full(len(rows), np.nan)
    ok = i >= 0
    out[ok] = matrix[rows[ok], i[ok]]
    return out


def _ewm_all(matrix: NDArray[np.float64], half_life: float) -> NDArray[np.float64]:
    alpha = 1 - 0.5 ** (1 / half_life)
    out = np.empty_like(matrix)
    acc = np.zeros(matrix.shape[0])
    for w in range(matrix.shape[1]):
        acc = alpha * matrix[:, w] + (1 - alpha) * acc
        out[:, w] = acc
    return out


def _cumulative(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.concatenate([np.zeros((matrix.shape[0], 1)), np.cumsum(matrix, axis=1)], axis=1)


def segment_features(
    panel: SegmentPanel,
    at: NDArray[np.intp] | list[int] | range,
    *,
    timezone: str | None = None,
    only_seen: bool = True,
    only_active: bool = False,
) -> pd.DataFrame:
    """Features of each segment at each window index in ``at`` (predicting window t+1).

    Args:
        panel: the segment panel.
        at: window indices t (features use windows 0..t only).
        timezone: the cluster's local timezone for calendar features (timed panels).
        only_seen: skip segments not yet seen by window t.
        only_active: keep only segments read in window t (an access trace's pending set).

    Returns:
        ``segment`` (name), ``t`` (window index), ``ts`` (start of the predicted window,
        when timed) and the feature columns, ordered by t then segment.
    """
    at = np.asarray(list(at), dtype=int)
    timed = isinstance(panel.starts, pd.DatetimeIndex)
    if len(at) and (at.min() < 0 or at.max() >= panel.n_windows):
        raise DataValidationError(
            f"segment features: windows {at.min()}..{at.max()} outside 0..{panel.n_windows - 1}"
        )
    reads = panel.reads
    n_seg = reads.shape[0]
    keep = np.ones((len(at), n_seg), dtype=bool)
    if only_seen:
        keep &= panel.first_seen[None, :] <= at[:, None]
    if only_active:
        keep &= reads[:, at].T > 0
    t_idx, rows = np.nonzero(keep)
    t = at[t_idx]
    if len(rows) == 0:
        return pd.DataFrame(columns=["segment", "t", *feature_names(timed)])
    cum = _cumulative(reads)
    cum_w = _cumulative(panel.writes)
    cum_c = _cumulative(panel.changed)
    idx = np.where(reads > 0, np.arange(reads.shape[1])[None, :], -1)
    last_read = np.maximum.accumulate(idx, axis=1)[rows, t]
    totals = reads.sum(axis=0)[t]
    r1 = reads[rows, t]
    r8 = _window_sum(cum, rows, t, 8)
    partition_day = _partition_days(panel.segments) if timed else None
    step = pd.Timedelta(hours=panel.window_hours or 1)
    if partition_day is not None and isinstance(panel.starts, pd.DatetimeIndex):
        predicted_day = (panel.starts + step).normalize().tz_localize(None)
        age = (predicted_day[t] - partition_day[rows]).days.to_numpy(dtype=float)
    else:
        age = (t - panel.first_seen[rows]).astype(float)
    cols: dict[str, object] = {
        "segment": panel.segments[rows],
        "t": t,
        "reads_1": r1,
        "reads_2": _window_sum(cum, rows, t, 2),
        "reads_4": _window_sum(cum, rows, t, 4),
        "reads_8": r8,
        "reads_24": _window_sum(cum, rows, t, 24),
        "reads_lag24": _lag(reads, rows, t, 24),
        "reads_lag168": _lag(reads, rows, t, 168),
    }
    for half_life in (1, 4, 24):
        cols[f"ewm_{half_life}"] = _ewm_all(reads, half_life)[rows, t]
    cols.update(
        {
            "trend": (r1 + 1) / (r8 / np.minimum(8, t + 1) + 1),
            "since_read": np.where(last_read >= 0, t - last_read, t + 1 + 1000).astype(float),
            "share": np.divide(r1, totals, out=np.zeros_like(r1), where=totals > 0),
            "writes_1": panel.writes[rows, t],
            "writes_4": _window_sum(cum_w, rows, t, 4),
            "changed_1": panel.changed[rows, t],
            "changed_4": _window_sum(cum_c, rows, t, 4),
            "log_size": np.log1p(panel.size[rows, t]),
            "age": age,
        }
    )
    if isinstance(panel.starts, pd.DatetimeIndex):  # timed
        start = panel.starts[t] + step
        local = start.tz_convert(timezone) if timezone else start
        cols["ts"] = start
        cols["hour"] = local.hour.to_numpy(dtype=float)
        cols["dow"] = local.dayofweek.to_numpy(dtype=float)
    return pd.DataFrame(cols)


def segment_targets(panel: SegmentPanel, features: pd.DataFrame) -> pd.DataFrame:
    """Next-window reads and bytes changed of each feature row (NaN past the panel's end)."""
    pos = {name: i for i, name in enumerate(panel.segments)}
    rows = features["segment"].map(pos).to_numpy(dtype=int)
    nxt = features["t"].to_numpy(dtype=int) + 1
    inside = nxt < panel.n_windows
    reads = np.full(len(features), np.nan)
    changed = np.full(len(features), np.nan)
    reads[inside] = panel.reads[rows[inside], nxt[inside]]
    changed[inside] = panel.changed[rows[inside], nxt[inside]]
    return pd.DataFrame({"reads": reads, "bytes_changed": changed}, index=features.index)


def feature_names(timed: bool) -> list[str]:
    """The model's feature columns (calendar ones only for timed panels)."""
    return FEATURES_BASE + (FEATURES_CALENDAR if timed else [])


def _partition_days(segments: NDArray[np.generic]) -> pd.DatetimeIndex | None:
    days = []
    for name in segments:
        match = _PARTITION_DATE.search(str(name))
        if match is None:
            return None
        days.append(f"{match[1]}-{match[2]}-{match[3]}")
    try:
        return pd.DatetimeIndex(pd.to_datetime(days))
    except (ValueError, pd.errors.ParserError):
        return None
