from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import DataValidationError
from pipelines.decision_backtests import (
    TRACE_POLICIES,
    backtest_priority,
    backtest_sizing,
)
from pipelines.series_files import read_hourly

POLICIES = {"static", "vpa", "replicast", "oracle"}
METRICS = {"node_hours", "violation_rate", "slack"}


def write_series(path: Path, days: int = 10, seed: int = 0, step: str = "5min") -> Path:
    """A daily-cycle demand series at 5-minute resolution, CSV with timestamp,value."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-03-04", periods=days * 288, freq=step)
    hours = np.arange(len(ts)) / 12
    value = 100 + 60 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 3, len(ts))
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": value}).to_csv(
        path, index=False
    )
    return path


def write_trace(path: Path, rows: int = 6000, seed: int = 0, timed: bool = False) -> Path:
    """An access trace with skewed, slowly drifting popularity over 60 segments."""
    rng = np.random.default_rng(seed)
    keys = []
    for i in range(rows):
        shift = i // 1500  # the popular set drifts
        keys.append(f"seg{(int(rng.zipf(1.6)) + shift * 3) % 60:03d}")
    ts = (
        pd.date_range("2024-01-01", periods=rows, freq="1s").strftime("%Y-%m-%dT%H:%M:%S")
        if timed
        else np.arange(rows)
    )
    pd.DataFrame({"segment": keys, "ts": ts}).to_csv(path, index=False)
    return path


def test_sizing_backtest_per_file_and_overall(tmp_path: Path) -> None:
    write_series(tmp_path / "a.csv", seed=0)
    write_series(tmp_path / "b.csv", seed=1)
    out = backtest_sizing(tmp_path, timestamp_col="timestamp", value_col="value")
    assert set(out["series"]) == {"a.csv", "b.csv"}
    for per_file in out["series"].values():
        assert set(per_file) >= POLICIES
        assert per_file["node_capacity"] > 0
        assert per_file["hours"] == 3 * 24  # 10 days minus the 7-day warm-up
        for policy in POLICIES:
            assert set(per_file[policy]) == METRICS
    assert set(out["overall"]) == POLICIES
    assert out["overall"]["oracle"]["violation_rate"] == 0
    assert out["hours"] == 2 * 3 * 24
    total = sum(f["static"]["node_hours"] for f in out["series"].values())
    assert out["overall"]["static"]["node_hours"] == total
    # a clean daily cycle: replicast plans below the static peak rule
    assert out["overall"]["replicast"]["node_hours"] < out["overall"]["static"]["node_hours"]


def test_sizing_inputs_resampled_and_validated(tmp_path: Path) -> None:
    path = write_series(tmp_path / "s.csv", days=2)
    hourly = read_hourly(path, timestamp_col="timestamp", value_col="value")
    assert len(hourly) == 48
    assert hourly.index.tz is not None
    with pytest.raises(DataValidationError, match="cpu"):
        read_hourly(path, timestamp_col="timestamp", value_col="cpu")
    (tmp_path / "short").mkdir()
    write_series(tmp_path / "short" / "s.csv", days=3)
    with pytest.raises(DataValidationError, match="7 days"):
        backtest_sizing(tmp_path / "short")
    with pytest.raises(DataValidationError, match="no .csv"):
        (tmp_path / "empty").mkdir()
        backtest_sizing(tmp_path / "empty")
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\nnot-a-time,abc\n")
    with pytest.raises(DataValidationError, match="empty history"):
        read_hourly(bad, timestamp_col="timestamp", value_col="value")


def test_priority_backtest_shape_and_bounds(tmp_path: Path) -> None:
    out = backtest_priority(
        write_trace(tmp_path / "t.csv"), key_col="segment", time_col="ts", window="200"
    )
    assert set(out["policies"]) == set(TRACE_POLICIES)
    assert out["window"] == "200 rows"
    assert out["boundaries"] > 5
    pol = out["policies"]
    assert pol["alphabetical"]["captured"] == 0
    assert pol["oracle"]["captured"] == 1
    assert pol["oracle"]["exposure"] <= pol["alphabetical"]["exposure"]
    # on a skewed trace, ordering by history beats rsync's alphabetical order
    assert pol["replicast"]["exposure"] < pol["alphabetical"]["exposure"]
    assert pol["last_window"]["exposure"] < pol["alphabetical"]["exposure"]


def test_priority_backtest_duration_windows_and_errors(tmp_path: Path) -> None:
    timed = write_trace(tmp_path / "timed.csv", timed=True)
    out = backtest_priority(timed, key_col="segment", time_col="ts", window="5min")
    assert out["window"] == "5min"
    logical = write_trace(tmp_path / "logical.csv")
    # numbers with a duration window are seconds: 6000 positions = 20 windows of 5 min
    assert (
        backtest_priority(logical, key_col="segment", time_col="ts", window="5min")["windows"] == 20
    )
    with pytest.raises(DataValidationError, match="key"):
        backtest_priority(logical, key_col="key", time_col="ts")
    with pytest.raises(DataValidationError, match="smaller --window"):
        backtest_priority(logical, key_col="segment", time_col="ts", window="3000")


def test_priority_backtest_recency_follows_sequential_streams(tmp_path: Path) -> None:
    """Streams that read each segment 8 times, then the next one: the segments a stream
    touched at the end of a window are the ones it reads at the start of the next, which
    counts of the last window cannot tell (they even rank them last: partly read) but the
    time of the last access can."""
    rng = np.random.default_rng(3)
    current = [f"init{s}" for s in range(6)]
    keys = []
    for step in range(1200):
        for s in range(6):  # six streams, interleaved, each on its own segment
            if (step + s) % 4 == 0:  # staggered: a stream moves on every 4 steps
                current[s] = f"{rng.integers(1 << 30):08x}"  # names carry no order
            keys += [current[s]] * 2
    trace = pd.DataFrame({"segment": keys, "ts": np.arange(len(keys))})
    path = tmp_path / "streams.csv"
    trace.to_csv(path, index=False)
    out = backtest_priority(path, key_col="segment", time_col="ts", window="1440")
    assert out["boundaries"] == 5  # short, like the SNIA samples: little history to learn from
    pol = out["policies"]
    assert pol["last_window"]["captured"] < 0.1  # no better than rsync's order
    assert pol["replicast"]["captured"] > 0.5
    # the warm-up windows already show that the last access (LRU) tells what continues
    assert out["replicast_scorer_used"]["lru"] >= 3
