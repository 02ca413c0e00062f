"""PostgreSQL source, the parts without a server: URI naming and samples -> rows."""

from __future__ import annotations

import pytest

from forecasting.errors import SourceError
from forecasting.settings import Settings
from pipelines.sources import snapshot
from pipelines.sources.postgres import PgSample, ReplicaLag, parse_target, to_frames

DB = {
    "xact_commit": 1000.0,
    "xact_rollback": 0.0,
    "tup_returned": 0.0,
    "tup_fetched": 300.0,
    "tup_inserted": 50.0,
    "tup_updated": 50.0,
    "tup_deleted": 0.0,
    "blks_read": 0.0,
    "blks_hit": 0.0,
}
TABLE = {
    "seq_scan": 1.0,
    "seq_tup_read": 100.0,
    "idx_scan": 5.0,
    "idx_tup_fetch": 200.0,
    "n_tup_ins": 40.0,
    "n_tup_upd": 10.0,
    "n_tup_del": 0.0,
    "heap_blks_read": 3.0,
    "heap_blks_hit": 30.0,
    "n_live_tup": 90.0,
    "n_dead_tup": 10.0,
    "size_bytes": 8192.0,
}

GAUGES = ("n_live_tup", "n_dead_tup", "size_bytes")


def _sample(ts: str, *, scale: float = 1.0, reset: str = "", **over: object) -> PgSample:
    fields: dict = {
        "ts": ts,
        "in_recovery": False,
        "system_id": "42",
        "started": "2025-01-01 00:00:00+00",
        "dbname": "orders",
        "max_connections": 100,
        "active_backends": 4,
        "disk_used_bytes": 1e9,
        "wal_bytes": 5e6 * scale,
        "own_lag_s": 0.0,
        "rtt_ms": 0.5,
        "databases": {"orders": {k: v * scale for k, v in DB.items()}},
        "db_resets": {"orders": reset},
        "replicas": [ReplicaLag("slot1", "streaming", 1e6 * scale, 0.0, 0.0, 0.0, 0.2 * scale)],
        "tables": {
            "public.t": {
                **TABLE,
                **{k: TABLE[k] * scale for k in TABLE if k not in GAUGES},
            }
        },
    }
    fields.update(over)
    return PgSample(**fields)


def test_names_come_from_the_uri_then_the_fleet(settings: Settings) -> None:
    t = parse_target("postgresql://u:secret@db1:6432/users?sslmode=disable", settings)
    assert (t.cluster, t.region, t.node) == ("users", "us-east", "db1:6432")
    assert "secret" not in t.display and "sslmode=disable" in t.conninfo
    assert "cluster" not in parse_target("postgresql://db1/x?cluster=c", settings).conninfo
    t = parse_target("postgresql://db9?region=eu-west&node=n1&vcpus=8", settings)
    assert (t.cluster, t.region, t.node, t.vcpus) == ("db9", "eu-west", "n1", 8.0)


@pytest.mark.parametrize(
    ("uri", "match"),
    [("postgresql://h:99999/x", "bad port"), ("postgresql://h/x?vcpus=-1", "vcpus must be > 0")],
)
def test_bad_uris_name_the_fix(settings: Settings, uri: str, match: str) -> None:
    with pytest.raises(SourceError, match=match):
        parse_target(uri, settings)


def test_unknown_scheme_is_a_source_error(settings: Settings) -> None:
    with pytest.raises(SourceError, match="unknown source scheme 'mysql'"):
        snapshot("mysql://h/db", settings)


def test_two_samples_make_one_interval_of_rates(settings: Settings) -> None:
    target = parse_target("postgresql://db1/orders?vcpus=8", settings)
    first = _sample("2025-01-01T00:00:00+00:00")
    second = _sample("2025-01-01T00:01:00+00:00", scale=2.0)
    frames = to_frames(first, second, target, 60)
    node = frames["node_metrics"].iloc[0]
    assert node["qps_read"] + node["qps_write"] == pytest.approx(1000 / 60)
    assert node["qps_write"] / node["qps_read"] == pytest.approx(100 / 300)
    assert node["cpu_util"] == pytest.approx(4 / 8)
    assert node["repl_bytes"] == 1e6 and node["repl_lag_s"] == pytest.approx(0.4)
    seg = frames["segment_access"].set_index("segment").loc["public.t"]
    assert seg["reads"] == 300 and seg["writes"] == 50
    assert seg["bytes_changed"] == pytest.approx(50 * 8192 / 100)


def test_a_stats_reset_or_restart_counts_from_zero(settings: Settings) -> None:
    target = parse_target("postgresql://db1/orders", settings)
    first = _sample("2025-01-01T00:00:00+00:00", scale=3.0)
    after_reset = _sample("2025-01-01T00:01:00+00:00", scale=4.0, reset="2025-01-01 00:00:30")
    seg = to_frames(first, after_reset, target, 60)["segment_access"].iloc[0]
    assert seg["writes"] == 4 * 50  # all of it since the reset, not 4x - 3x
    restarted = _sample("2025-01-01T00:01:00+00:00", scale=0.5, started="2025-01-01 00:00:40+00")
    frames = to_frames(first, restarted, target, 60)
    numeric = frames["node_metrics"].select_dtypes("number")
    assert (numeric >= 0).all().all()
    assert frames["segment_access"].iloc[0]["writes"] == 25


def test_a_replica_reports_its_own_lag_and_no_segments(settings: Settings) -> None:
    target = parse_target("postgresql://db2/orders?region=eu-west", settings)
    first = _sample("2025-01-01T00:00:00+00:00", in_recovery=True, replicas=[])
    second = _sample(
        "2025-01-01T00:01:00+00:00", scale=2.0, in_recovery=True, replicas=[], own_lag_s=3.5
    )
    frames = to_frames(first, second, target, 60)
    node = frames["node_metrics"].iloc[0]
    assert node["role"] == "replica" and node["repl_lag_s"] == 3.5
    assert node["repl_bytes"] == 5e6  # WAL received in the interval
    assert frames["segment_access"].empty


def test_samples_of_another_server_give_no_rows(settings: Settings) -> None:
    target = parse_target("postgresql://db1/orders", settings)
    first = _sample("2025-01-01T00:00:00+00:00")
    other = _sample("2025-01-01T00:01:00+00:00", system_id="7")
    assert all(f.empty for f in to_frames(first, other, target, 60).values())


def test_a_sample_round_trips_through_json() -> None:
    sample = _sample("2025-01-01T00:00:00+00:00")
    assert PgSample.from_json(sample.to_json()) == sample
