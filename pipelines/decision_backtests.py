"""Decision backtests on arbitrary files: sizing on demand series, priority on access traces.

``backtest_sizing``: each file is the demand of one service (any regular or irregular
sampling; resampled to hourly means). At each daily origin after a 7-day warm-up
every policy plans the next 24 hours from the history before the origin; the plans
are replayed against the real load (see :mod:`forecasting.sizing_policies`).

``backtest_priority``: a CSV access trace (one row per access, a key column and a time
column that is a timestamp or a logical position, optional ``bytes``) is cut into
windows of N rows or of a duration. At each window boundary after warm-up the pending
set is every segment touched in the window just ended (as if it changed); the set is
copied one segment after another at the bandwidth that finishes it in exactly one
window (cost proportional to ``bytes``, equal when absent). Each policy orders the set
from history only; exposure = accesses in the next window that arrive before their
segment is copied (:mod:`forecasting.exposure`, event form).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.segment_features import feature_names, panel_from_counts, segment_features
from forecasting.errors import DataValidationError
from forecasting.exposure import (
    alphabetical_order,
    captured,
    completion_times,
    exposure_from_events,
    smith_order,
)
from forecasting.sizing_policies import (
    DemandPolicy,
    auto_capacity,
    default_policies,
    replay,
)
from models.hot_segments import HotSegmentModel
from pipelines.series_files import read_hourly

log = logging.getLogger(__name__)

SERIES_SUFFIXES = (".csv", ".parquet", ".csv.gz")
TRACE_POLICIES = ("alphabetical", "last_window", "replicast", "oracle")
#: Scorers the replicast ordering chooses among on traces, in order of preference on ties:
#: within-window recency (``recent``, ``lru``), EWMAs of reads (half-lives 4 and 1
#: windows), reads of the last 4 windows and of the last one, the model.
TRACE_SCORERS = ("recent", "lru", "ewm_4", "ewm_1", "reads_4", "reads_1", "model")
#: Half-life (share of a window) of the within-window recency weights: ``recent`` sums
#: them over a segment's accesses in the window just ended (an access at its end counts 1,
#: one a quarter window earlier 1/2), ``lru`` takes its last access only (least recently
#: used last). Sequential streams and loops continue into the next window.
RECENT_HALF_LIFE = 0.25
#: Fewest training rows (segment x window) before the trace's hot-segment model is fitted.
MIN_TRAIN_ROWS = 20


# ---------------------------------------------------------------- sizing


def series_files(path: str | Path) -> list[Path]:
    """The series files of a file or directory (CSV/Parquet), sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith(SERIES_SUFFIXES))
        if files:
            return files
        raise DataValidationError(f"{path}: no .csv or .parquet series files in this directory")
    raise DataValidationError(f"{path}: no such file or directory")


@dataclass
class _Totals:
    node_hours: float = 0.0
    violations: float = 0.0
    slack_sum: float = 0.0
    hours: int = 0

    def add(self, metrics: dict[str, float], hours: int) -> None:
        self.node_hours += metrics["node_hours"]
        if not math.isnan(metrics["violation_rate"]):
            self.violations += metrics["violation_rate"] * hours
            self.slack_sum += metrics["slack"] * hours
            self.hours += hours

    def as_dict(self) -> dict[str, float]:
        return {
            "node_hours": self.node_hours,
            "violation_rate": self.violations / self.hours if self.hours else math.nan,
            "slack": self.slack_sum / self.hours if self.hours else math.nan,
        }


def backtest_sizing(
    path: str | Path,
    *,
    timestamp_col: str = "timestamp",
    value_col: str = "value",
    node_capacity: float | str = "auto",
    target_util: float = 0.7,
    risk_quantile: float = 0.99,
    policies: Callable[[], dict[str, DemandPolicy]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Replay static, vpa, replicast and the oracle on every series file under ``path``.

    Args:
        path: a series file or a directory of them.
        timestamp_col: the timestamp column.
        value_col: the demand column.
        node_capacity: demand one node carries at 100 %, or ``"auto"`` (the warm-up
            part's median / 4, per file).
        target_util: planned utilisation.
        risk_quantile: the risk the replicast policy sizes for (``sizing.risk_quantile``).
        policies: factory of the policies to compare (default: static, vpa, replicast).
        progress: called with each file name as it starts.

    Returns:
        ``{"series": {file: {"node_capacity", "hours", policy: metrics}}, "overall":
        {policy: metrics}, "hours", "skipped": {file: reason}}``; overall node-hours are
        summed, rates weighted by the replayed hours with data.
    """
    factory = policies or (lambda: default_policies(risk_quantile))
    out: dict = {"series": {}, "overall": {}, "skipped": {}}
    totals: dict[str, _Totals] = {}
    for file in series_files(path):
        if progress is not None:
            progress(file.name)
        hourly = read_hourly(file, timestamp_col=timestamp_col, value_col=value_col)
        try:
            capacity = (
                auto_capacity(hourly.to_numpy())
                if node_capacity == "auto"
                else float(node_capacity)
            )
            result = replay(
                hourly.to_numpy(), factory(), node_capacity=capacity, target_util=target_util
            )
        except DataValidationError as exc:
            log.warning("%s: skipped: %s", file, exc)
            out["skipped"][file.name] = str(exc)
            continue
        metrics = result.metrics()
        hours = int((~np.isnan(result.actual)).sum())
        out["series"][file.name] = {"node_capacity": capacity, "hours": hours, **metrics}
        for name, value in metrics.items():
            totals.setdefault(name, _Totals()).add(value, hours)
    if not out["series"]:
        raise DataValidationError(
            f"{path}: no series long enough for a sizing backtest (need > 7 days): {out['skipped']}"
        )
    out["overall"] = {name: t.as_dict() for name, t in totals.items()}
    out["hours"] = sum(f["hours"] for f in out["series"].values())
    return out


# ---------------------------------------------------------------- priority


def load_trace(
    path: str | Path, *, key_col: str, time_col: str, bytes_col: str = "bytes"
) -> tuple[pd.DataFrame, bool]:
    """Read a CSV access trace; returns (``key, t[, bytes]`` sorted by time, timed?).

    ``t`` is seconds since the epoch when the time column holds timestamps, else the
    number given in the file (a logical position, or seconds when windows are durations).

    Raises:
        DataValidationError: unreadable file, missing column, or no usable row.
    """
    path = Path(path)
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"{path}: unreadable CSV trace: {exc}") from exc
    missing = [c for c in (key_col, time_col) if c not in header]
    if missing:
        raise DataValidationError(
            f"{path}: column(s) {missing} not found; columns are {list(header)} "
            "(use --key-col/--time-col)"
        )
    cols = [key_col, time_col] + ([bytes_col] if bytes_col in header else [])
    frame = pd.read_csv(path, usecols=cols, dtype={key_col: str}, low_memory=False)
    raw = frame[time_col]
    numeric = pd.to_numeric(raw, errors="coerce")
    timed = numeric.isna().mean() > 0.5
    if timed:
        stamps = pd.to_datetime(raw, errors="coerce", utc=True)
        t = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    else:
        t = numeric.astype(float)
    key = frame[key_col]
    out = pd.DataFrame({"key": key.astype(str), "t": t})
    if bytes_col in frame.columns:
        out["bytes"] = pd.to_numeric(frame[bytes_col], errors="coerce")
    bad = out["t"].isna() | key.isna()
    if bad.any():
        log.warning("%s: %d row(s) without a usable key or time skipped", path, int(bad.sum()))
    out = out[~bad]
    if out.empty:
        raise DataValidationError(f"{path}: no usable access rows (empty trace)")
    return out.sort_values("t", kind="stable").reset_index(drop=True), timed


def _window_index(trace: pd.DataFrame, window: str | int | None, timed: bool) -> tuple:
    """Window of each row and position inside its window (0..1)."""
    n = len(trace)
    text = str(window) if window is not None else ""
    if window is None or text.isdigit():
        size = int(text) if text else max(100, n // 100)
        if size <= 0:
            raise DataValidationError(f"--window must be > 0 rows, got {window}")
        pos = np.arange(n)
        return pos // size, (pos % size) / size, f"{size} rows"
    if not timed:
        log.info("numeric time column with a duration window: numbers taken as seconds")
    try:
        length = pd.Timedelta(text).total_seconds()
    except ValueError as exc:
        raise DataValidationError(f"--window {window!r}: not a row count or a duration") from exc
    if length <= 0:
        raise DataValidationError(f"--window must be a positive duration, got {window}")
    rel = trace["t"].to_numpy() - trace["t"].iloc[0]
    return (rel // length).astype(int), (rel % length) / length, text


@dataclass(frozen=True)
class _Boundary:
    """One window boundary of a trace replay: the pending set and the next window's reads."""

    names: list[str]  # of the pending segments
    cost: np.ndarray  # seconds on the link; the set takes exactly one window
    item: np.ndarray  # per read of the next window: index in the pending set, or -1
    when: np.ndarray  # per read: position in the next window (0..1)

    def exposure(self, order: np.ndarray) -> float:
        return exposure_from_events(completion_times(order, self.cost), self.item, self.when)

    def smith(self, weight: np.ndarray) -> float:
        return self.exposure(smith_order(self.names, weight, self.cost))


class _ScorerChoice:
    """Which scorer the replicast ordering uses: the lowest mean share of alphabetical's
    exposure on past boundaries where every scorer was scored (ties: TRACE_SCORERS order)."""

    def __init__(self) -> None:
        self.share = dict.fromkeys(TRACE_SCORERS, 0.0)
        self.seen = 0

    def learn(self, alpha: float, exposures: dict[str, float]) -> None:
        if alpha > 0 and len(exposures) == len(TRACE_SCORERS):
            for name, value in exposures.items():
                self.share[name] += value / alpha
            self.seen += 1

    def best(self, candidates: Iterable[str]) -> str:
        return min(
            candidates,
            key=lambda n: (self.share[n] if self.seen else 0.0, TRACE_SCORERS.index(n)),
        )


def backtest_priority(
    path: str | Path,
    *,
    key_col: str = "segment",
    time_col: str = "ts",
    window: str | int | None = None,
    warmup_windows: int | None = None,
    retrain_every: int = 10,
    max_train_rows: int = 200_000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Replay sync windows on an access trace and score each ordering's stale-read exposure.

    Args:
        path: CSV trace, one row per access.
        key_col: the segment column.
        time_col: timestamps or logical positions.
        window: rows per window (``"5000"``) or a duration (``"15min"``; a numeric time
            column is then read as seconds); default ``max(100, rows // 100)`` rows.
        warmup_windows: windows of history before the first scored boundary
            (default ``max(4, windows // 10)``).
        retrain_every: refit the hot-segment model every this many windows.
        max_train_rows: sample at most this many training rows per fit.
        seed: model and sampling seed.
        progress: called with (boundary, total boundaries).

    The replicast ordering is Smith's rule with the weight of the scorer (the
    hot-segment LightGBM model refitted on the trace's own past windows, EWMAs and
    recent-window counts of reads, or the recency of the accesses inside the window
    just ended) whose exposure was the lowest share of alphabetical's over the
    boundaries already past, the warm-up windows included: a choice made from
    history only.

    Returns:
        ``{"policies": {policy: {"exposure", "captured"}}, "windows", "boundaries",
        "window", "accesses_scored", "replicast_scorer_used", "scorer_exposure"}``
        (the last: each candidate scorer's exposure had it been used at every boundary).
    """
    trace, timed = load_trace(path, key_col=key_col, time_col=time_col)
    win, frac, window_text = _window_index(trace, window, timed)
    n_win = int(win.max()) + 1
    warmup = warmup_windows if warmup_windows is not None else max(4, n_win // 10)
    if n_win < warmup + 2:
        raise DataValidationError(
            f"{path}: {n_win} window(s) of {window_text}; need at least {warmup + 2} "
            "(warm-up + one scored boundary): use a smaller --window"
        )
    keys, key_idx = np.unique(trace["key"].to_numpy(), return_inverse=True)
    counts = np.zeros((len(keys), n_win))
    np.add.at(counts, (key_idx, win), 1.0)
    if "bytes" in trace.columns and trace["bytes"].notna().any():
        size = (
            (pd.Series(trace["bytes"].to_numpy()).groupby(key_idx).max().reindex(range(len(keys))))
            .fillna(1.0)
            .to_numpy()
        )
        size = np.maximum(size, 1.0)
    else:
        size = np.ones(len(keys))
    decay = np.exp2(-(1.0 - frac) / RECENT_HALF_LIFE)
    recency = {"recent": np.zeros((len(keys), n_win)), "lru": np.zeros((len(keys), n_win))}
    np.add.at(recency["recent"], (key_idx, win), decay)
    np.maximum.at(recency["lru"], (key_idx, win), decay)
    panel = panel_from_counts(keys, counts, size)
    features = segment_features(panel, range(n_win - 1), only_active=True)
    features["key_idx"] = np.searchsorted(keys, features["segment"].to_numpy())
    target = counts[features["key_idx"].to_numpy(), features["t"].to_numpy() + 1]
    names = feature_names(timed=False)
    rng = np.random.default_rng(seed)
    totals = dict.fromkeys(TRACE_POLICIES, 0.0)
    scorer_exposure = dict.fromkeys(TRACE_SCORERS, 0.0)  # each scorer, had it been used
    chosen: dict[str, int] = dict.fromkeys(TRACE_SCORERS, 0)
    choice = _ScorerChoice()
    model = None
    boundaries = range(warmup, n_win - 1)
    win_start = np.searchsorted(win, np.arange(n_win + 1), side="left")  # rows sorted by t
    t_of_row = features["t"].to_numpy()
    key_of_row = features["key_idx"].to_numpy()
    scored = 0
    # the warm-up windows already say which scorer suits the trace (history only): every
    # scorer, the model included, is scored on them before the first scored boundary
    for b in range(1, n_win - 1):
        live = b >= warmup
        if live and progress is not None:
            progress(b - warmup, len(boundaries))
        if model is None or (b - 1) % retrain_every == 0:
            train = np.flatnonzero(t_of_row < b)
            if len(train) > max_train_rows:
                train = np.sort(rng.choice(train, max_train_rows, replace=False))
            if len(train) >= MIN_TRAIN_ROWS:
                model = HotSegmentModel(n_estimators=100, seed=seed).fit(
                    features.iloc[train][names], target[train]
                )
        rows = np.flatnonzero(t_of_row == b)
        if len(rows) == 0:
            continue
        pending = key_of_row[rows]
        position = np.full(len(keys), -1)
        position[pending] = np.arange(len(pending))
        nxt = np.arange(win_start[b + 1], win_start[b + 2])
        at = _Boundary(
            keys[pending].tolist(), size[pending] / size[pending].sum(),
            position[key_idx[nxt]], frac[nxt],
        )  # fmt: skip
        frame = features.iloc[rows]
        candidates = {
            name: recency[name][pending, b] if name in recency else frame[name].to_numpy()
            for name in TRACE_SCORERS
            if name != "model"
        }
        if model is not None:
            candidates["model"] = model.predict(frame[names])[:, 0]
        alpha = at.exposure(alphabetical_order(at.names))
        exposures = {name: at.smith(weight) for name, weight in candidates.items()}
        if live:
            best = choice.best(candidates)  # from the boundaries before this one only
            chosen[best] += 1
            scored += int((at.item >= 0).sum())
            totals["alphabetical"] += alpha
            totals["last_window"] += at.smith(counts[pending, b])
            totals["replicast"] += exposures[best]
            totals["oracle"] += at.smith(counts[pending, b + 1])
            for name, value in exposures.items():
                scorer_exposure[name] += value
        choice.learn(alpha, exposures)
    alpha, oracle = totals["alphabetical"], totals["oracle"]
    return {
        "policies": {
            name: {"exposure": value, "captured": captured(alpha, value, oracle)}
            for name, value in totals.items()
        },
        "windows": n_win,
        "boundaries": len(boundaries),
        "window": window_text,
        "accesses_scored": scored,
        "replicast_scorer_used": chosen,
        "scorer_exposure": scorer_exposure,
    }
