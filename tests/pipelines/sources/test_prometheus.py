"""Prometheus source, the parts without a server: URI, step alignment, chunks, gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import SourceError
from forecasting.settings import Settings
from pipelines.sources import prometheus
from pipelines.sources.prometheus import MAX_POINTS, _frame, aligned_range, chunks, parse_target


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_range_snaps_to_the_step_grid() -> None:
    start, end = aligned_range(_ts("2025-01-01 00:02:10"), _ts("2025-01-01 01:07:59"), 300)
    assert start == _ts("2025-01-01 00:05")
    assert end == _ts("2025-01-01 01:05")


@pytest.mark.parametrize("points", [1, 10_999, 11_000, 11_001, 25_000])
def test_chunks_cover_the_range_once_within_the_point_limit(points: int) -> None:
    start = _ts("2025-01-01")
    end = start + pd.Timedelta(seconds=points - 1)
    parts = chunks(start, end, 1.0)
    sizes = [int((hi - lo).total_seconds()) + 1 for lo, hi in parts]
    assert max(sizes) <= MAX_POINTS
    assert sum(sizes) == points  # no point twice, none missing
    assert parts[0][0] == start and parts[-1][1] == end
    for (_, hi), (lo, _) in zip(parts, parts[1:], strict=False):
        assert lo - hi == pd.Timedelta(seconds=1)


def test_missing_samples_stay_gaps_and_counters_never_go_negative() -> None:
    grid = pd.date_range(_ts("2025-01-01"), periods=6, freq="60s")
    t = grid.astype("int64") // 10**9
    # sample at grid[3] missing; counter reset between grid[4] and grid[5]
    samples = [(0, "10"), (1, "15"), (2, "20"), (4, "40"), (5, "3")]
    series = [{"metric": {"server": "a"}, "values": [[t[i], v] for i, v in samples]}]
    frame = _frame(series, ["server"], grid, "counter")
    values = frame["value"].to_numpy()
    assert np.isnan(values[[0, 3, 4]]).all()  # the first step and both sides of the gap
    assert values[1] == 5 and values[2] == 5 and values[5] == 3
    gauge = _frame(series, ["server"], grid, "gauge")["value"].to_numpy()
    assert np.isnan(gauge[3]) and gauge[4] == 40


def test_uri_parameters(settings: Settings) -> None:
    now = _ts("2025-03-01 12:00")
    target = parse_target(
        "prometheus://prom.local:9091/sub?cluster=users&range=6h&step=5m&selector=job%3D%22pg%22",
        settings,
        now=now,
    )
    assert target.base_url == "http://prom.local:9091/sub"
    assert target.region == "us-east"  # the fleet's primary region of cluster "users"
    assert target.start == now - pd.Timedelta("6h") and target.step_s == 300
    assert target.selector == 'job="pg"'
    with pytest.raises(SourceError, match="start .* is not before end"):
        parse_target("prometheus://p:9090?start=2025-01-02&end=2025-01-01", settings)


def test_mapping_file_overrides_one_input_and_rejects_unknown_ones(
    settings: Settings, tmp_path
) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[node_metrics]\ndisk_used_bytes = "sum by (server) (my_db_bytes{sel})"\n')
    target = parse_target(f"prometheus://p:9090?mapping={good}", settings)
    assert target.mapping["node_metrics"]["disk_used_bytes"] == (
        "gauge",
        "sum by (server) (my_db_bytes{sel})",
    )
    assert (
        target.mapping["node_metrics"]["xacts"]
        == prometheus.DEFAULT_MAPPING["node_metrics"]["xacts"]
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('[node_metrics]\ncpu = "x"\n')
    with pytest.raises(SourceError, match="has no input 'cpu'"):
        parse_target(f"prometheus://p:9090?mapping={bad}", settings)
