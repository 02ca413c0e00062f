"""The PostgreSQL source against a real primary + streaming replica."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from forecasting.errors import SourceError
from forecasting.lake import Lake
from forecasting.settings import Settings
from pipelines.collect import Collector, state_dir
from pipelines.sources import postgres, snapshot
from tests.integration.conftest import APP_DB, COLD, HOT, run_events_workload
from tests.integration.servers import PgPair, free_port, wait_for

pytestmark = pytest.mark.integration


def _target(pg_pair: PgPair, settings: Settings, *, replica: bool = False, **params: str):
    server = pg_pair.replica if replica else pg_pair.primary
    return postgres.parse_target(server.dsn(APP_DB, cluster="orders", **params), settings)


def test_collector_sees_the_replica_with_lag_while_replay_is_paused(
    pg_pair: PgPair, settings: Settings
) -> None:
    target = _target(pg_pair, settings)
    streaming = postgres.take_sample(target)
    (replica,) = streaming.replicas
    assert replica.name == pg_pair.slot
    assert replica.state == "streaming"
    assert min(replica.replay_lag_s, replica.write_lag_s, replica.behind_bytes) >= 0

    with pg_pair.replica.connect() as standby, pg_pair.primary.connect(APP_DB) as conn:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            before = postgres.take_sample(target)
            for _ in range(5):
                conn.execute("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid < 200")
                time.sleep(0.3)
            time.sleep(1.2)  # the standby reports its (stuck) replay position every second
            paused = postgres.take_sample(target)
            own = postgres.take_sample(_target(pg_pair, settings, replica=True))
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
    (lagging,) = paused.replicas
    assert lagging.behind_bytes > 0
    assert lagging.replay_lag_s > 0.5
    rows = postgres.to_frames(before, paused, target, 1.0)["node_metrics"]
    assert rows["role"].tolist() == ["primary"]
    assert rows["repl_lag_s"].iloc[0] == pytest.approx(lagging.replay_lag_s)
    assert rows["repl_bytes"].iloc[0] > 0  # WAL shipped to the replica in the interval
    assert own.in_recovery and own.own_lag_s > 0  # the replica sees its own lag too


def test_hot_partitions_rank_above_cold_ones(pg_pair: PgPair, settings: Settings) -> None:
    target = _target(pg_pair, settings)
    before = postgres.take_sample(target)
    with pg_pair.primary.connect(APP_DB) as conn:
        run_events_workload(conn)
    time.sleep(0.5)  # the workload's backend flushed its statistics when it exited
    after = postgres.take_sample(target)
    segments = postgres.to_frames(before, after, target, 1.0)["segment_access"]
    assert "public.events" not in set(segments["segment"])  # the parent holds no rows
    ranked = segments.assign(heat=segments["reads"] + segments["writes"]).sort_values(
        "heat", ascending=False
    )
    partitions = [s for s in ranked["segment"] if s.startswith("public.events_")]
    assert set(partitions[:2]) == set(HOT)
    assert set(partitions[2:]) == set(COLD)
    hot = segments.set_index("segment").loc[list(HOT)]
    assert (hot["writes"] > 0).all() and (hot["bytes_changed"] > 0).all()
    assert (segments[["reads", "writes", "bytes_changed", "size_bytes"]] >= 0).all().all()


def test_stats_reset_gives_no_negative_rates(pg_pair: PgPair, settings: Settings) -> None:
    with pg_pair.primary.connect() as admin:
        admin.execute("CREATE DATABASE resetdb")
    try:
        # each step in its own session: a backend flushes its statistics when it exits
        with pg_pair.primary.connect("resetdb") as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
            conn.execute("INSERT INTO t SELECT g, 0 FROM generate_series(1, 500) g")
        target = postgres.parse_target(pg_pair.primary.dsn("resetdb"), settings)
        wait_for(
            lambda: postgres.take_sample(target).tables["public.t"]["n_tup_ins"] == 500,
            10,
            "the inserts to reach the statistics",
        )
        before = postgres.take_sample(target)
        with pg_pair.primary.connect("resetdb") as conn:
            conn.execute("SELECT pg_stat_reset()")
            conn.execute("UPDATE t SET v = 1 WHERE id <= 10")
        wait_for(
            lambda: postgres.take_sample(target).tables["public.t"]["n_tup_upd"] == 10,
            10,
            "the updates to reach the statistics",
        )
        after = postgres.take_sample(target)
        frames = postgres.to_frames(before, after, target, 1.0)
        table = frames["segment_access"].set_index("segment").loc["public.t"]
        assert table["writes"] == 10  # counted from the reset, not 10 - 500
        numeric = frames["node_metrics"].select_dtypes("number")
        assert (numeric >= 0).all().all()
    finally:
        with pg_pair.primary.connect() as admin:
            admin.execute("DROP DATABASE resetdb WITH (FORCE)")


def test_collect_writes_both_nodes_and_resumes_without_losing_an_interval(
    pg_pair: PgPair, settings: Settings, lake: Lake
) -> None:
    uris = [
        pg_pair.primary.dsn(APP_DB, cluster="orders", region="us-east"),
        pg_pair.replica.dsn(APP_DB, cluster="orders", region="eu-west"),
    ]
    first = Collector(uris, settings=settings, lake=lake, interval_s=1.0)
    report = first.run(stop=threading.Event(), duration_s=2.2)
    assert report.ticks >= 2 and not report.errors
    nodes = lake.read("node_metrics")
    assert set(nodes["role"]) == {"primary", "replica"}
    assert set(nodes["region"]) == {"us-east", "eu-west"}
    assert len(list(state_dir(settings).glob("postgres-*.json"))) == 2

    time.sleep(1.5)  # "downtime": the next collector resumes from the persisted samples
    second = Collector(uris, settings=settings, lake=lake, interval_s=1.0)
    resumed = second.tick()
    assert resumed.rows.get("node_metrics") == 2  # not a fresh baseline: the gap is covered
    assert resumed.rows.get("segment_access", 0) > 0
    assert len(lake.read("node_metrics")) == len(nodes) + 2
    assert lake.read("quarantine").empty


def test_snapshot_dispatches_postgresql_uris(pg_pair: PgPair, settings: Settings) -> None:
    frames = snapshot(pg_pair.primary.dsn(APP_DB, sample="0.5s"), settings)
    node = frames["node_metrics"]
    assert node["cluster"].tolist() == [APP_DB]  # default cluster: the DSN's dbname
    assert node["node"].tolist() == [f"127.0.0.1:{pg_pair.primary.port}"]
    assert node["disk_used_bytes"].iloc[0] > 0


def test_unreachable_server_is_a_one_line_source_error(settings: Settings, lake: Lake) -> None:
    uri = f"postgresql://postgres@127.0.0.1:{free_port()}/app"
    with pytest.raises(SourceError, match="unreachable.*check host and port") as info:
        Collector([uri], settings=settings, lake=lake, interval_s=1).check()
    assert "\n" not in str(info.value)
    assert lake.datasets() == []


def test_role_without_monitoring_privileges_is_told_what_to_grant(
    pg_pair: PgPair, settings: Settings, lake: Lake
) -> None:
    with pg_pair.primary.connect() as admin:
        admin.execute("DROP ROLE IF EXISTS nomon")
        admin.execute("CREATE ROLE nomon LOGIN")
    uri = f"postgresql://nomon@127.0.0.1:{pg_pair.primary.port}/{APP_DB}"
    with pytest.raises(SourceError, match="GRANT pg_monitor TO nomon"):
        Collector([uri], settings=settings, lake=lake, interval_s=1).check()
    with pytest.raises(SourceError, match="does not exist"):
        Collector(
            [f"postgresql://ghost@127.0.0.1:{pg_pair.primary.port}/{APP_DB}"],
            settings=settings,
            lake=lake,
            interval_s=1,
        ).check()
    assert lake.datasets() == []


def test_collect_command_stops_cleanly_on_sigterm(pg_pair: PgPair, tmp_path: Path) -> None:
    env = {**os.environ, "REPLICAST_DATA_DIR": str(tmp_path / "cli")}
    log = tmp_path / "collect.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "replicast"), "collect", "--source",
             pg_pair.primary.dsn(APP_DB), "--interval", "1s"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
    try:
        state = tmp_path / "cli" / "sources"
        wait_for(lambda: any(state.glob("postgres-*.json")), 120, "the first collected sample")
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "done:" in text
    assert not list(state.glob(".*.tmp"))
    with psycopg.connect(pg_pair.primary.dsn(APP_DB)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
