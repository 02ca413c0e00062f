"""The Prometheus source against a real Prometheus scraping prometheus-postgres-exporter."""

from __future__ import annotations

import time

import httpx
import pandas as pd
import pytest

from forecasting.errors import SourceError
from forecasting.settings import Settings
from pipelines.sources import postgres, prometheus, snapshot
from tests.integration.conftest import APP_DB, HOT, run_events_workload
from tests.integration.servers import Daemon, PgPair, free_port, wait_for

pytestmark = pytest.mark.integration


def _scraped_after(prom: Daemon, moment: pd.Timestamp, scrapes: int = 2) -> None:
    """Wait until Prometheus holds ``scrapes`` exporter scrapes newer than ``moment``."""

    def _done() -> bool:
        result = httpx.get(
            f"http://127.0.0.1:{prom.port}/api/v1/query",
            params={"query": "timestamp(pg_up)"},
            timeout=5,
        ).json()["data"]["result"]
        return bool(result) and float(result[0]["value"][1]) > moment.timestamp() + scrapes - 1

    wait_for(_done, 20, f"{scrapes} scrapes after {moment}")


def test_prometheus_agrees_with_the_direct_source(
    pg_pair: PgPair, prometheus_stack: tuple[Daemon, Daemon], settings: Settings
) -> None:
    _, prom = prometheus_stack
    target = postgres.parse_target(pg_pair.primary.dsn(APP_DB, cluster="orders"), settings)
    _scraped_after(prom, pd.Timestamp.now(tz="UTC"))  # quiet: Prometheus holds the current state
    before = postgres.take_sample(target)
    # a sample is stamped with its scrape's start but read up to a scrape later: keep the
    # burst more than one scrape interval away from the window's first sample
    time.sleep(2.5)
    with pg_pair.primary.connect(APP_DB) as conn:
        run_events_workload(conn)  # the session's exit flushes its statistics
    time.sleep(0.3)
    after = postgres.take_sample(target)
    _scraped_after(prom, after.timestamp)

    start = before.timestamp.ceil("1s")
    uri = (
        f"prometheus://127.0.0.1:{prom.port}?cluster=orders&step=1s"
        f"&start={start:%Y-%m-%dT%H:%M:%SZ}&end={pd.Timestamp.now(tz='UTC').isoformat()}"
    )
    frames = snapshot(uri, settings)
    direct = postgres.to_frames(before, after, target, 1.0)

    seg = frames["segment_access"]
    steps = seg.groupby("segment")["ts"].diff().dropna().dt.total_seconds()
    assert (steps >= 1).all() and (steps % 1 == 0).all()  # rows on the 1 s grid
    assert (seg["ts"].dt.microsecond == 0).all()
    expected = direct["segment_access"].set_index("segment")[["reads", "writes"]]
    end = seg["ts"].max()
    with prometheus.PromClient(prometheus.parse_target(uri, settings)) as client:
        for segment in HOT:
            # the raw counters: Prometheus's first and last samples of the window bracket
            # the burst (quiet before and after), so their difference is the direct increase
            promql = f'pg_replicast_table_n_tup_upd{{segment="{segment}"}}'
            (series,) = client.query_range("n_tup_upd", promql, start, end, 1.0)
            values = [float(v) for _, v in series["values"]]
            assert values[-1] - values[0] == expected.loc[segment, "writes"] > 0
    totals = seg.groupby("segment")[["reads", "writes"]].sum()
    steps_in_window = int((end - start).total_seconds())
    for segment in HOT:
        rows = seg[seg["segment"] == segment]
        # a failed scrape (a loaded machine) leaves a gap: those increases are dropped, never
        # invented; with every scrape present the sums equal the direct increases exactly
        assert totals.loc[segment, "writes"] <= expected.loc[segment, "writes"]
        assert totals.loc[segment, "reads"] <= expected.loc[segment, "reads"]
        if len(rows) == steps_in_window:
            assert totals.loc[segment, "writes"] == expected.loc[segment, "writes"]
            assert totals.loc[segment, "reads"] == expected.loc[segment, "reads"]
    assert set(seg["segment"]) == set(direct["segment_access"]["segment"])

    nodes = frames["node_metrics"]
    assert set(nodes["node"]) == {target.node}  # the exporter's server label = host:port
    assert set(nodes["role"]) == {"primary"}
    assert (nodes["repl_lag_s"] >= 0).all() and (nodes["repl_bytes"] >= 0).all()
    assert nodes["disk_used_bytes"].iloc[-1] == pytest.approx(after.disk_used_bytes, rel=0.02)
    prom_xacts = ((nodes["qps_read"] + nodes["qps_write"]) * 1.0).sum()
    direct_xacts = sum(
        a["xact_commit"] + a["xact_rollback"] - b["xact_commit"] - b["xact_rollback"]
        for a, b in zip(after.databases.values(), before.databases.values(), strict=False)
    )
    window_s = (nodes["ts"].max() - start).total_seconds()
    gap_s = (after.timestamp - before.timestamp).total_seconds()
    # both count the same transactions plus the background (exporter, samplers) of the
    # longer Prometheus window: at most a few per second of extra window
    assert prom_xacts <= direct_xacts + 20 * max(window_s - gap_s + 2, 1)
    if len(nodes) == steps_in_window:  # no failed scrape: nothing dropped
        assert prom_xacts >= direct_xacts - 10


def test_long_ranges_are_chunked_within_the_point_limit(
    prometheus_stack: tuple[Daemon, Daemon], settings: Settings
) -> None:
    _, prom = prometheus_stack
    # 4 h at 1 s = 14,401 points: one query_range would be refused (11,000 max)
    frames = snapshot(f"prometheus://127.0.0.1:{prom.port}?range=4h&step=1s", settings)
    assert len(frames["node_metrics"]) > 0
    assert frames["node_metrics"]["ts"].is_monotonic_increasing


def test_a_promql_error_names_the_input_and_the_fix(
    prometheus_stack: tuple[Daemon, Daemon], settings: Settings, tmp_path
) -> None:
    _, prom = prometheus_stack
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[node_metrics]\nxacts = "sum(rate(pg_stat_database_xact_commit[1m]"\n')
    uri = f"prometheus://127.0.0.1:{prom.port}?range=1m&step=1s&mapping={mapping}"
    with pytest.raises(SourceError, match="input 'xacts'.*rejected.*fix the PromQL") as info:
        snapshot(uri, settings)
    assert "\n" not in str(info.value)


def test_no_exporter_series_is_an_error_not_an_empty_success(
    prometheus_stack: tuple[Daemon, Daemon], settings: Settings
) -> None:
    _, prom = prometheus_stack
    uri = f'prometheus://127.0.0.1:{prom.port}?range=1m&step=1s&selector=job="nope"'
    with pytest.raises(SourceError, match="selector= matches"):
        snapshot(uri, settings)


def test_unreachable_prometheus_is_retried_then_reported(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prometheus, "BACKOFF_S", 0.01)
    with pytest.raises(SourceError, match=r"unreachable.*after 4 attempts.*Prometheus is running"):
        snapshot(f"prometheus://127.0.0.1:{free_port()}?range=1m&step=1s", settings)
