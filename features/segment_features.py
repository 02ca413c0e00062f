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

    segments: np.ndarray  # (S,) names
    starts: pd.DatetimeIndex | np.ndarray  # (W,) window starts (timestamps or positions)
    reads: np.ndarray  # (S, W)
    writes: np.ndarray  # (S, W)
    changed: np.ndarray  # (S, W) bytes changed
    size: np.ndarray  # (S, W) bytes (carried forward)
    first_seen: np.ndarray  # (S,) index of the first window with data
    window_hours: float | None = None  # window length when windows are timed

    @property
    def n_windows(self) -> int:
        return self.reads.shape[1]


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
    for col in (segment_col, time_col, "reads"):
        if col not in frame.columns:
            raise DataValidationError(f"segment panel: missing column {col!r}")
    if frame.empty:
        raise DataValidationError("segment panel: no rows (empty history)")
    ts = pd.to_datetime(frame[time_col], utc=True).dt.floor(window)
    start, end = ts.min(), ts.max()
    starts = pd.date_range(start, end, freq=window)
    col = ((ts - start) / pd.Timedelta(window)).astype(int).to_numpy()
    segments, row = np.unique(frame[segment_col].astype(str).to_numpy(), return_inverse=True)
    shape = (len(segments), len(starts))

    def dense(name: str, how: str = "sum") -> np.ndarray:
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
    segments: np.ndarray, counts: np.ndarray, size: np.ndarray | None = None
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


def _window_sum(cum: np.ndarray, t: int, k: int) -> np.ndarray:
    lo = max(t + 1 - k, 0)
    return cum[:, t + 1] - cum[:, lo]


def _lag(matrix: np.ndarray, t: int, k: int) -> np.ndarray:
    # value of the window that has the same position as t+1 k windows earlier
    i = t + 1 - k
    return matrix[:, i] if i >= 0 else np.full(matrix.shape[0], np.nan)


def _ewm_all(matrix: np.ndarray, half_life: float) -> np.ndarray:
    alpha = 1 - 0.5 ** (1 / half_life)
    out = np.empty_like(matrix)
    acc = np.zeros(matrix.shape[0])
    for w in range(matrix.shape[1]):
        acc = alpha * matrix[:, w] + (1 - alpha) * acc
        out[:, w] = acc
    return out


def segment_features(
    panel: SegmentPanel,
    at: np.ndarray | list[int],
    *,
    timezone: str | None = None,
    only_seen: bool = True,
) -> pd.DataFrame:
    """Features of each segment at each window index in ``at`` (predicting window t+1).

    Args:
        panel: the segment panel.
        at: window indices t (features use windows 0..t only).
        timezone: the cluster's local timezone for calendar features (timed panels).
        only_seen: skip segments not yet seen by window t.

    Returns:
        ``segment`` (name), ``t`` (window index), ``ts`` (start of the predicted window,
        when timed) and the feature columns.
    """
    reads = panel.reads
    cum = np.concatenate([np.zeros((reads.shape[0], 1)), np.cumsum(reads, axis=1)], axis=1)
    cum_w = np.concatenate([np.zeros((reads.shape[0], 1)), np.cumsum(panel.writes, axis=1)], axis=1)
    cum_c = np.concatenate(
        [np.zeros((reads.shape[0], 1)), np.cumsum(panel.changed, axis=1)], axis=1
    )
    ewms = {h: _ewm_all(reads, h) for h in (1, 4, 24)}
    # last window index with reads, carried forward
    idx = np.where(reads > 0, np.arange(reads.shape[1])[None, :], -1)
    last_read = np.maximum.accumulate(idx, axis=1)
    partition_day = _partition_days(panel.segments)
    timed = isinstance(panel.starts, pd.DatetimeIndex)
    frames = []
    for t in at:
        t = int(t)
        if not 0 <= t < panel.n_windows:
            raise DataValidationError(
                f"segment features: window {t} outside 0..{panel.n_windows - 1}"
            )
        keep = panel.first_seen <= t if only_seen else np.ones(len(panel.segments), bool)
        r1 = reads[:, t]
        r8 = _window_sum(cum, t, 8)
        total = r1.sum()
        since = np.where(last_read[:, t] >= 0, t - last_read[:, t], t + 1 + 1000)
        if partition_day is not None and timed:
            day = (panel.starts[t] + pd.Timedelta(hours=panel.window_hours or 1)).normalize()
            age = (day.tz_localize(None) - partition_day).days.to_numpy(dtype=float)
        else:
            age = (t - panel.first_seen).astype(float)
        cols = {
            "segment": panel.segments,
            "t": t,
            "reads_1": r1,
            "reads_2": _window_sum(cum, t, 2),
            "reads_4": _window_sum(cum, t, 4),
            "reads_8": r8,
            "reads_24": _window_sum(cum, t, 24),
            "reads_lag24": _lag(reads, t, 24),
            "reads_lag168": _lag(reads, t, 168),
            "ewm_1": ewms[1][:, t],
            "ewm_4": ewms[4][:, t],
            "ewm_24": ewms[24][:, t],
            "trend": (r1 + 1) / (r8 / min(8, t + 1) + 1),
            "since_read": since.astype(float),
            "share": r1 / total if total > 0 else np.zeros_like(r1),
            "writes_1": panel.writes[:, t],
            "writes_4": _window_sum(cum_w, t, 4),
            "changed_1": panel.changed[:, t],
            "changed_4": _window_sum(cum_c, t, 4),
            "log_size": np.log1p(panel.size[:, t]),
            "age": age,
        }
        if timed:
            start = panel.starts[t] + pd.Timedelta(hours=panel.window_hours or 1)
            local = start.tz_convert(timezone) if timezone else start
            cols["ts"] = start
            cols["hour"] = float(local.hour)
            cols["dow"] = float(local.dayofweek)
        frames.append(pd.DataFrame(cols)[keep])
    if not frames:
        return pd.DataFrame(columns=["segment", "t", *feature_names(timed)])
    return pd.concat(frames, ignore_index=True)


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


def _partition_days(segments: np.ndarray) -> pd.DatetimeIndex | None:
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
