"""Load series aggregation on hand-built node metrics: sums, means, hourly buckets, UTC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import DataValidationError
from forecasting.lake import Lake
from pipelines.load_series import build_series, read_series

T0 = pd.Timestamp("2026-03-01 00:00", tz="UTC")


def _node_rows(
    node: str, region: str, hours: int, qps: float, cpu: float, repl: float, disk0: float
) -> pd.DataFrame:
    ts = pd.date_range(T0, periods=hours * 12, freq="5min")
    i = np.arange(ts.size)
    return pd.DataFrame(
        {
            "ts": ts,
            "cluster": "orders",
            "region": region,
            "node": node,
            "role": "replica",
            "cpu_util": cpu,
            "qps_read": qps + i,  # rising within the hour
            "qps_write": 10.0,
            "disk_used_bytes": disk0 + 1000.0 * i,
            "repl_lag_s": 0.0,
            "repl_bytes": repl,
            "net_rtt_ms": 1.0,
        }
    )


@pytest.fixture
def metrics() -> pd.DataFrame:
    return pd.concat(
        [
            _node_rows("n1", "us-east", 3, qps=100.0, cpu=0.2, repl=50.0, disk0=1e6),
            _node_rows("n2", "us-east", 3, qps=200.0, cpu=0.6, repl=70.0, disk0=2e6),
            _node_rows("n1", "eu-west", 3, qps=5.0, cpu=0.1, repl=1.0, disk0=3e6),
        ],
        ignore_index=True,
    )


def _series(frame: pd.DataFrame, sid: str) -> pd.Series:
    part = frame.loc[frame["series_id"] == sid]
    return pd.Series(part["y"].to_numpy(), index=pd.DatetimeIndex(part["ts"]))


def test_qps_total_sums_nodes_and_averages_the_hour(metrics: pd.DataFrame) -> None:
    out = build_series(metrics, "qps_total")
    assert list(out.columns) == ["series_id", "ts", "y"]
    us = _series(out, "orders/us-east")
    assert list(us.index) == list(pd.date_range(T0, periods=3, freq="1h"))
    # hour 0: node i-values 0..11 average 5.5; n1 = 100+5.5+10, n2 = 200+5.5+10
    assert us.iloc[0] == pytest.approx(115.5 + 215.5)
    assert us.iloc[1] == pytest.approx(115.5 + 215.5 + 2 * 12)
    assert _series(out, "orders/eu-west").iloc[0] == pytest.approx(5 + 5.5 + 10)


def test_cpu_util_is_the_mean_over_nodes(metrics: pd.DataFrame) -> None:
    us = _series(build_series(metrics, "cpu_util"), "orders/us-east")
    assert us.to_numpy() == pytest.approx([0.4, 0.4, 0.4])


def test_repl_bytes_is_the_hourly_sum_over_nodes(metrics: pd.DataFrame) -> None:
    us = _series(build_series(metrics, "repl_bytes"), "orders/us-east")
    assert us.to_numpy() == pytest.approx([12 * (50 + 70)] * 3)


def test_disk_used_is_the_last_value_of_the_hour_summed(metrics: pd.DataFrame) -> None:
    us = _series(build_series(metrics, "disk_used_bytes"), "orders/us-east")
    assert us.iloc[0] == pytest.approx(1e6 + 11_000 + 2e6 + 11_000)
    assert us.iloc[2] == pytest.approx(1e6 + 35_000 + 2e6 + 35_000)


def test_a_missing_interval_does_not_dip_and_a_missing_hour_is_nan(metrics: pd.DataFrame) -> None:
    drop_one = (metrics["node"] == "n2") & (metrics["ts"] == T0 + pd.Timedelta("10min"))
    drop_hour = (metrics["region"] == "us-east") & (metrics["ts"].dt.hour == 1)
    out = build_series(metrics.loc[~drop_one & ~drop_hour], "repl_bytes")
    us = _series(out, "orders/us-east")
    assert len(us) == 3  # the grid stays regular
    assert us.iloc[0] == pytest.approx(12 * (50 + 70))
    assert np.isnan(us.iloc[1])


def test_non_utc_timestamps_are_bucketed_in_utc(metrics: pd.DataFrame) -> None:
    local = metrics.assign(ts=metrics["ts"].dt.tz_convert("Asia/Shanghai"))
    out = build_series(local, "cpu_util")
    assert str(out["ts"].dt.tz) == "UTC"
    assert out["ts"].min() == T0


def test_naive_timestamps_and_missing_columns_are_clear_errors(metrics: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="timezone-naive"):
        build_series(metrics.assign(ts=metrics["ts"].dt.tz_localize(None)), "qps_total")
    with pytest.raises(DataValidationError, match="qps_write"):
        build_series(metrics.drop(columns=["qps_write"]), "qps_total")


def test_read_series_from_the_lake(metrics: pd.DataFrame, lake: Lake) -> None:
    with pytest.raises(DataValidationError, match="no node_metrics"):
        read_series(lake, ["cpu_util"])
    lake.write("node_metrics", metrics)
    frames = read_series(lake, ["cpu_util", "qps_total"])
    assert set(frames) == {"cpu_util", "qps_total"}
    assert set(frames["cpu_util"]["series_id"]) == {"orders/us-east", "orders/eu-west"}
