"""The fleet simulator: determinism, schema, and the signals it promises."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import ConfigError
from forecasting.lake import read_parquet_verified
from forecasting.schemas import NODE_METRICS, SEGMENT_ACCESS, Schema
from forecasting.settings import Fleet
from pipelines.simulate import (
    SimulatedFleet,
    iter_clusters,
    scale_fleet,
    simulate_fleet,
    simulate_sample,
    write_simulation,
)
from tests.conftest import SAMPLE_DIR

START = "2026-09-24"  # spans cn-north's golden week (1-7 Oct)
DAYS = 21


def _small(seed: int = 11, **kwargs) -> SimulatedFleet:
    params = {"start": START, "days": DAYS, "seed": seed, "nodes_per_region": 2}
    params.update(kwargs)
    return simulate_fleet(Fleet(), segments_per_cluster=16, **params)


@pytest.fixture(scope="module")
def sim() -> SimulatedFleet:
    return _small()


def _check_schema(frame: pd.DataFrame, schema: Schema) -> None:
    assert list(frame.columns) == schema.names
    assert str(frame["ts"].dt.tz) == "UTC"
    for col in schema.columns:
        values = frame[col.name]
        assert values.notna().all(), col.name
        if col.kind == "str":
            assert values.map(type).eq(str).all(), col.name
        elif col.kind == "float":
            assert values.dtype == np.float64, col.name
            if col.min is not None:
                assert values.min() >= col.min, col.name
            if col.max is not None:
                assert values.max() <= col.max, col.name
        if col.choices:
            assert set(values.unique()) <= set(col.choices), col.name


def _harmonic_peak_hour(hours: np.ndarray, values: np.ndarray) -> float:
    """Hour of the peak of the first daily harmonic (robust to noise)."""
    phase = np.angle(np.sum(values * np.exp(-2j * np.pi * hours / 24.0)))
    return (phase * 24.0 / (2 * np.pi)) % 24.0


def _circular_diff(a: float, b: float) -> float:
    return (a - b + 12.0) % 24.0 - 12.0


def test_same_seed_gives_equal_frames_and_another_seed_differs(sim: SimulatedFleet) -> None:
    again = _small()
    pd.testing.assert_frame_equal(sim.node_metrics, again.node_metrics)
    pd.testing.assert_frame_equal(sim.segment_access, again.segment_access)
    other = _small(seed=12)
    assert not sim.node_metrics["qps_read"].equals(other.node_metrics["qps_read"])
    assert not sim.segment_access["reads"].equals(other.segment_access["reads"])


def test_adding_clusters_keeps_the_existing_clusters_data(sim: SimulatedFleet) -> None:
    bigger = simulate_fleet(
        scale_fleet(Fleet(), 4),
        start=START,
        days=DAYS,
        seed=11,
        nodes_per_region=2,
        segments_per_cluster=16,
    )
    orders = bigger.node_metrics[bigger.node_metrics["cluster"] == "orders"].reset_index(drop=True)
    expected = sim.node_metrics[sim.node_metrics["cluster"] == "orders"].reset_index(drop=True)
    pd.testing.assert_frame_equal(orders, expected)


def test_writing_cluster_by_cluster_gives_the_same_data(
    sim: SimulatedFleet, tmp_path: Path
) -> None:
    parts = iter_clusters(
        Fleet(), start=START, days=DAYS, seed=11, nodes_per_region=2, segments_per_cluster=16
    )
    summary = write_simulation(parts, tmp_path / "out")
    nodes = read_parquet_verified(summary.paths["node_metrics"])
    segments = read_parquet_verified(summary.paths["segment_access"])
    pd.testing.assert_frame_equal(nodes, sim.node_metrics)
    pd.testing.assert_frame_equal(segments, sim.segment_access)
    assert summary.rows == {"node_metrics": len(nodes), "segment_access": len(segments)}
    assert summary.clusters == 3
    assert set(summary.load["region"]) == {"us-east", "eu-west", "cn-north"}
    assert not list((tmp_path / "out").glob(".*"))  # no temp files left


def test_frames_match_the_dataset_schemas(sim: SimulatedFleet) -> None:
    _check_schema(sim.node_metrics, NODE_METRICS)
    _check_schema(sim.segment_access, SEGMENT_ACCESS)
    nm = sim.node_metrics
    assert nm["ts"].min() == pd.Timestamp(START, tz="UTC")
    assert nm["ts"].max() < pd.Timestamp(START, tz="UTC") + pd.Timedelta(days=DAYS)
    assert (nm["ts"].dt.minute % 5 == 0).all()
    assert (sim.segment_access["ts"].dt.minute % 15 == 0).all()
    assert not nm.duplicated(NODE_METRICS.dedupe_key).any()
    assert not sim.segment_access.duplicated(SEGMENT_ACCESS.dedupe_key).any()


def test_one_primary_per_cluster_in_its_primary_region_taking_all_writes(
    sim: SimulatedFleet,
) -> None:
    nm = sim.node_metrics
    fleet = Fleet()
    for cluster in fleet.clusters:
        rows = nm[nm["cluster"] == cluster.name]
        primaries = rows.loc[rows["role"] == "primary", ["region", "node"]].drop_duplicates()
        assert len(primaries) == 1
        assert primaries["region"].item() == cluster.primary_region
        replicas = rows[rows["role"] == "replica"]
        assert (replicas["qps_write"] == 0).all()
        assert (rows.loc[rows["role"] == "primary", "repl_lag_s"] == 0).all()
        assert replicas["repl_lag_s"].gt(0).all()


def test_lag_and_rtt_grow_with_distance(sim: SimulatedFleet) -> None:
    replicas = sim.node_metrics[
        (sim.node_metrics["role"] == "replica") & (sim.node_metrics["cluster"] == "orders")
    ]
    by_region = replicas.groupby("region")[["repl_lag_s", "net_rtt_ms"]].median()
    assert by_region.loc["cn-north", "net_rtt_ms"] > by_region.loc["eu-west", "net_rtt_ms"]
    assert by_region.loc["eu-west", "net_rtt_ms"] > by_region.loc["us-east", "net_rtt_ms"]
    assert by_region.loc["cn-north", "repl_lag_s"] > by_region.loc["us-east", "repl_lag_s"]


def test_lag_grows_with_write_load(sim: SimulatedFleet) -> None:
    nm = sim.node_metrics
    writes = nm[(nm["role"] == "primary") & (nm["cluster"] == "orders")].set_index("ts")
    lag = nm[nm["node"] == "orders-cn-north-01"].set_index("ts")["repl_lag_s"]
    joined = writes[["qps_write"]].join(lag, how="inner")
    busy = joined["qps_write"] >= joined["qps_write"].quantile(0.8)
    quiet = joined["qps_write"] <= joined["qps_write"].quantile(0.2)
    assert joined.loc[busy, "repl_lag_s"].median() > 1.1 * joined.loc[quiet, "repl_lag_s"].median()


def test_replication_bytes_follow_writes(sim: SimulatedFleet) -> None:
    nm = sim.node_metrics
    primary = nm[(nm["role"] == "primary") & (nm["cluster"] == "orders")].set_index("ts")
    replica = nm[nm["node"] == "orders-cn-north-00"].set_index("ts")
    joined = primary[["qps_write"]].join(replica[["repl_bytes"]], how="inner")
    assert joined["qps_write"].corr(joined["repl_bytes"]) > 0.9


def test_load_levels_make_sizing_meaningful(sim: SimulatedFleet) -> None:
    nm = sim.node_metrics
    total = (
        nm.assign(qps=nm["qps_read"] + nm["qps_write"])
        .groupby(["cluster", "region", "ts"])["qps"]
        .sum()
    )
    medians = total.groupby(level=["cluster", "region"]).median()
    assert medians.min() > 500
    assert total.groupby(level=["cluster", "region"]).max().max() > 5000
    assert 0.05 < nm["cpu_util"].median() < 0.8
    assert nm.groupby("node")["cpu_util"].corr(nm["qps_read"] + nm["qps_write"]).min() > 0.5


def test_daily_peak_follows_local_time(sim: SimulatedFleet) -> None:
    nm = sim.node_metrics
    peaks = {}
    for region in ("us-east", "cn-north"):
        rows = nm[nm["region"] == region]
        hourly = rows.groupby(["cluster", rows["ts"].dt.hour])["qps_read"].mean()
        normalised = hourly / hourly.groupby(level="cluster").transform("mean")
        profile = normalised.groupby(level=1).mean()
        peaks[region] = _harmonic_peak_hour(profile.index.to_numpy(), profile.to_numpy())
    when = datetime(2026, 10, 1, 12)
    offset_h = {
        r: ZoneInfo(tz).utcoffset(when).total_seconds() / 3600
        for r, tz in (("us-east", "America/New_York"), ("cn-north", "Asia/Shanghai"))
    }
    expected = -(offset_h["cn-north"] - offset_h["us-east"])  # east peaks earlier in UTC
    assert abs(_circular_diff(peaks["cn-north"] - peaks["us-east"], expected)) < 2.0


def test_weekends_and_holidays_are_quieter_in_local_time(sim: SimulatedFleet) -> None:
    nm = sim.node_metrics
    us = nm[nm["region"] == "us-east"]
    local = us["ts"].dt.tz_convert("America/New_York")
    weekend = local.dt.dayofweek >= 5
    assert us.loc[weekend, "qps_read"].mean() < 0.9 * us.loc[~weekend, "qps_read"].mean()

    cn = nm[nm["region"] == "cn-north"]
    day = cn["ts"].dt.tz_convert("Asia/Shanghai").dt.date
    golden = (day >= pd.Timestamp("2026-10-01").date()) & (day <= pd.Timestamp("2026-10-07").date())
    after = (day >= pd.Timestamp("2026-10-08").date()) & (day <= pd.Timestamp("2026-10-14").date())
    assert cn.loc[golden, "qps_read"].mean() < 0.75 * cn.loc[after, "qps_read"].mean()


def test_segment_reads_are_heavy_tailed_and_names_do_not_sort_by_heat(
    sim: SimulatedFleet,
) -> None:
    sa = sim.segment_access
    for _, rows in sa.groupby("cluster"):
        last_day = rows[rows["ts"] >= rows["ts"].max() - pd.Timedelta(hours=24)]
        totals = last_day.groupby("segment")["reads"].sum().sort_values(ascending=False)
        top = max(1, len(totals) // 5)
        assert totals.iloc[:top].sum() > 0.5 * totals.sum()  # top 20 % take most reads
        half = len(totals) // 2  # Zipf-like: log reads fall ~linearly with log rank
        slope = np.polyfit(np.log(np.arange(1, half + 1)), np.log(totals.iloc[:half]), 1)[0]
        assert slope < -0.6
        assert sorted(totals.index) != list(totals.index)
        daily = totals[totals.index.str.contains(r"/p\d{8}$")]
        alphabetical = pd.Series(range(len(daily)), index=sorted(daily.index))
        # daily partitions sort oldest (coldest) first: alphabetical order copies cold data first
        assert alphabetical.corr(daily, method="spearman") > 0.5


def test_newest_daily_partition_is_hotter_than_older_ones(sim: SimulatedFleet) -> None:
    sa = sim.segment_access
    daily = sa[sa["segment"].str.contains(r"/p\d{8}$")]
    assert not daily.empty
    part_day = pd.to_datetime(daily["segment"].str[-8:], format="%Y%m%d").dt.tz_localize("UTC")
    age = (daily["ts"] - part_day).dt.total_seconds() / 86400
    afternoon = daily["ts"].dt.hour.between(12, 23)
    keys = [daily["cluster"], daily["segment"].str.split("/").str[0]]
    fresh = daily[(age < 1) & afternoon].groupby(keys)["reads"].mean()
    old = daily[(age >= 4) & (age < 5) & afternoon].groupby(keys)["reads"].mean()
    assert (fresh > 5 * old).all()
    # writes land on today's partition, and the active partition grows
    assert daily.loc[age < 1, "writes"].sum() > 10 * daily.loc[age >= 2, "writes"].sum()
    newest = daily[daily["segment"] == daily["segment"].max()].sort_values("ts")
    assert newest["size_bytes"].iloc[-1] > newest["size_bytes"].iloc[0]


def test_shard_writes_follow_their_reads(sim: SimulatedFleet) -> None:
    sa = sim.segment_access
    shards = sa[sa["segment"].str.contains(r"/s\d{2}$")]
    assert not shards.empty
    corr = shards.groupby(["cluster", "segment"])[["reads", "writes"]].corr()
    assert corr.xs("reads", level=2)["writes"].median() > 0.7


def test_new_partitions_appear_every_day(sim: SimulatedFleet) -> None:
    sa = sim.segment_access
    first_seen = sa.groupby(["cluster", "segment"])["ts"].min()
    new = first_seen[first_seen > sa["ts"].min()]
    assert new.groupby(level="cluster").size().min() >= DAYS - 1


def test_nightly_scan_is_predictable_from_the_clock(sim: SimulatedFleet) -> None:
    sa = sim.segment_access
    orders = sa[(sa["cluster"] == "orders") & sa["segment"].str.contains(r"/p\d{8}$")]
    local = orders["ts"].dt.tz_convert("America/New_York")
    part_day = pd.to_datetime(orders["segment"].str[-8:], format="%Y%m%d").dt.tz_localize("UTC")
    age = (orders["ts"] - part_day).dt.total_seconds() / 86400
    scanned = orders[(age >= 2) & (age < 7)]
    hour = local[scanned.index].dt.hour
    per_night = scanned.groupby([local[scanned.index].dt.date, hour])["reads"].sum().unstack()
    ratio = (per_night[2] / per_night[1]).dropna()
    assert len(ratio) >= DAYS - 3
    assert (ratio > 1.5).all()  # every night, the scan hour dwarfs the hour before
    assert ratio.median() > 2


def test_rows_go_missing(sim: SimulatedFleet) -> None:
    nm = sim.node_metrics
    nodes = nm[["cluster", "region", "node"]].drop_duplicates()
    assert len(nm) < len(nodes) * DAYS * 288
    gaps = nm.groupby("node")["ts"].diff().dropna()
    assert (gaps > pd.Timedelta(minutes=10)).any()  # an outage, not only single rows
    sa = sim.segment_access
    steps = sa.groupby("cluster")["ts"].nunique()
    assert (steps < DAYS * 96).any()


def test_scale_fleet_adds_clusters_over_all_regions() -> None:
    fleet = scale_fleet(Fleet(), 8)
    names = [c.name for c in fleet.clusters]
    assert names[:3] == ["orders", "users", "events"]
    assert names[3:] == ["c003", "c004", "c005", "c006", "c007"]
    assert {c.primary_region for c in fleet.clusters[3:]} == {r.name for r in fleet.regions}
    assert [c.name for c in scale_fleet(Fleet(), 2).clusters] == ["orders", "users"]
    with pytest.raises(ConfigError, match="clusters"):
        scale_fleet(Fleet(), 0)


def test_bad_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="days"):
        simulate_fleet(Fleet(), start=START, days=0, seed=1)


def test_shipped_sample_matches_the_schemas_and_spans_four_weeks() -> None:
    files = {
        "node_metrics": SAMPLE_DIR / "node_metrics.parquet",
        "segment_access": SAMPLE_DIR / "segment_access.parquet",
    }
    assert sum(p.stat().st_size for p in files.values()) <= 15e6
    fleet = Fleet()
    for name, schema in (("node_metrics", NODE_METRICS), ("segment_access", SEGMENT_ACCESS)):
        frame = read_parquet_verified(files[name])
        _check_schema(frame, schema)
        assert frame["ts"].max() - frame["ts"].min() >= pd.Timedelta(days=28)
        assert set(frame["cluster"]) == {c.name for c in fleet.clusters}
    assert (SAMPLE_DIR / "README.md").is_file()


def test_shipped_sample_is_what_the_sample_parameters_generate() -> None:
    regenerated = simulate_sample()
    shipped = read_parquet_verified(SAMPLE_DIR / "segment_access.parquet")
    pd.testing.assert_frame_equal(shipped, regenerated.segment_access)
    shipped = read_parquet_verified(SAMPLE_DIR / "node_metrics.parquet")
    pd.testing.assert_frame_equal(shipped, regenerated.node_metrics)
