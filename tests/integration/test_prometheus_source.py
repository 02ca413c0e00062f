"""The Prometheus source against a real Prometheus scraping prometheus-postgres-exporter."""

from __future__ import annotations

import time
from dataclasses import dataclass

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


#: Seconds spent looking for a window in which Prometheus holds every 1 s scrape.
COMPLETE_WINDOW_S = 30.0
#: Seconds one window waits for its last scrapes to be queryable.
LATE_SCRAPES_S = 10.0


@dataclass
class Window:
    """One quiet-burst-quiet measurement: direct samples around it, Prometheus over it."""

    before: postgres.PgSample
    after: postgres.PgSample
    start: pd.Timestamp
    end: pd.Timestamp
    uri: str
    frames: dict[str, pd.DataFrame]
    direct: dict[str, pd.DataFrame]

    @property
    def steps(self) -> int:
        """1 s steps in ``(start, end]``: the rows a segment or node has with every scrape."""
        return int((self.end - self.start).total_seconds())

    def missing(self) -> dict[str, int]:
        """Rows short of :attr:`steps`, per hot segment and for the node (empty: complete)."""
        seg = self.frames["segment_access"]
        have = {s: int((seg["segment"] == s).sum()) for s in HOT}
        have["node_metrics"] = len(self.frames["node_metrics"])
        return {name: self.steps - n for name, n in have.items() if n != self.steps}


def _failed_scrapes(prom: Daemon, start: pd.Timestamp, end: pd.Timestamp) -> list[str]:
    """Times in ``[start - 1 s, end]`` of exporter scrapes that failed (``up == 0``)."""
    span = int((end - start).total_seconds()) + 2
    result = httpx.get(
        f"http://127.0.0.1:{prom.port}/api/v1/query",
        params={"query": f"up[{span}s]", "time": end.timestamp()},
        timeout=5,
    ).json()["data"]["result"]
    return [
        f"{pd.Timestamp(float(t), unit='s', tz='UTC'):%H:%M:%S.%f}"[:-3]
        for series in result
        for t, v in series["values"]
        if float(v) == 0
    ]


def _measure(
    pg_pair: PgPair, prom: Daemon, target: postgres.PgTarget, settings: Settings
) -> Window:
    """A burst on the hot partitions between two quiet spells, and both sources' view of it.

    The Prometheus window is ``(start, end]`` with ``end`` one step after the last direct
    sample; it waits up to :data:`LATE_SCRAPES_S` for that window's samples to be
    queryable, and no longer once a scrape in it has failed (that gap is permanent).
    """
    _scraped_after(prom, pd.Timestamp.now(tz="UTC"))  # quiet: Prometheus holds the current state
    before = postgres.take_sample(target)
    # a sample is stamped with its scrape's start but read up to a scrape later: keep the
    # burst more than one scrape interval away from the window's first sample
    time.sleep(2.5)
    with pg_pair.primary.connect(APP_DB) as conn:
        run_events_workload(conn)  # the session's exit flushes its statistics
    time.sleep(0.3)
    after = postgres.take_sample(target)
    start = before.timestamp.ceil("1s")
    end = after.timestamp.ceil("1s") + pd.Timedelta(seconds=1)
    uri = (
        f"prometheus://127.0.0.1:{prom.port}?cluster=orders&step=1s"
        f"&start={start:%Y-%m-%dT%H:%M:%SZ}&end={end:%Y-%m-%dT%H:%M:%SZ}"
    )
    _scraped_after(prom, end)
    direct = postgres.to_frames(before, after, target, 1.0)
    deadline = time.monotonic() + LATE_SCRAPES_S
    while True:
        window = Window(before, after, start, end, uri, snapshot(uri, settings), direct)
        if not window.missing() or _failed_scrapes(prom, start, end):
            return window
        if time.monotonic() > deadline:
            return window
        time.sleep(0.5)


def _check_never_invented(window: Window) -> None:
    """What holds even with a failed scrape: gaps drop increases, never invent them."""
    seg = window.frames["segment_access"]
    steps = seg.groupby("segment")["ts"].diff().dropna().dt.total_seconds()
    assert (steps >= 1).all() and (steps % 1 == 0).all()  # rows on the 1 s grid
    assert (seg["ts"].dt.microsecond == 0).all()
    assert set(seg["segment"]) == set(window.direct["segment_access"]["segment"])
    expected = window.direct["segment_access"].set_index("segment")[["reads", "writes"]]
    totals = seg.groupby("segment")[["reads", "writes"]].sum()
    for segment in HOT:
        assert totals.loc[segment, "writes"] <= expected.loc[segment, "writes"]
        assert totals.loc[segment, "reads"] <= expected.loc[segment, "reads"]


def test_prometheus_agrees_with_the_direct_source(
    pg_pair: PgPair, prometheus_stack: tuple[Daemon, Daemon], settings: Settings
) -> None:
    """Exact agreement on a window in which Prometheus holds every scrape.

    A failed scrape (a loaded machine; the interval is 1 s) leaves a permanent gap, so
    such a window is measured again, for up to :data:`COMPLETE_WINDOW_S` seconds; if no
    window is complete the test fails naming the missing rows and failed scrapes.
    """
    _, prom = prometheus_stack
    target = postgres.parse_target(pg_pair.primary.dsn(APP_DB, cluster="orders"), settings)
    incomplete: list[str] = []
    deadline = time.monotonic() + COMPLETE_WINDOW_S
    while True:
        window = _measure(pg_pair, prom, target, settings)
        _check_never_invented(window)
        missing = window.missing()
        if not missing:
            break
        incomplete.append(
            f"{window.start:%H:%M:%S}..{window.end:%H:%M:%S}: rows missing {missing}, "
            f"failed scrapes at {_failed_scrapes(prom, window.start, window.end) or 'none'}"
        )
        if time.monotonic() > deadline:
            pytest.fail(
                f"no window with every 1 s scrape in {COMPLETE_WINDOW_S:g} s, so the exact "
                f"checks could not run; windows measured: {'; '.join(incomplete)}"
            )

    # every scrape is present: the sums equal the direct increases exactly
    seg = window.frames["segment_access"]
    expected = window.direct["segment_access"].set_index("segment")[["reads", "writes"]]
    totals = seg.groupby("segment")[["reads", "writes"]].sum()
    for segment in HOT:
        assert totals.loc[segment, "writes"] == expected.loc[segment, "writes"] > 0
        assert totals.loc[segment, "reads"] == expected.loc[segment, "reads"]
    with prometheus.PromClient(prometheus.parse_target(window.uri, settings)) as client:
        for segment in HOT:
            # the raw counters: Prometheus's first and last samples of the window bracket
            # the burst (quiet before and after), so their difference is the direct increase
            promql = f'pg_replicast_table_n_tup_upd{{segment="{segment}"}}'
            (series,) = client.query_range("n_tup_upd", promql, window.start, window.end, 1.0)
            values = [float(v) for _, v in series["values"]]
            assert values[-1] - values[0] == expected.loc[segment, "writes"] > 0

    before, after = window.before, window.after
    nodes = window.frames["node_metrics"]
    assert set(nodes["node"]) == {target.node}  # the exporter's server label = host:port
    assert set(nodes["role"]) == {"primary"}
    assert (nodes["repl_lag_s"] >= 0).all() and (nodes["repl_bytes"] >= 0).all()
    assert nodes["disk_used_bytes"].iloc[-1] == pytest.approx(after.disk_used_bytes, rel=0.02)
    prom_xacts = ((nodes["qps_read"] + nodes["qps_write"]) * 1.0).sum()
    direct_xacts = sum(
        a["xact_commit"] + a["xact_rollback"] - b["xact_commit"] - b["xact_rollback"]
        for a, b in zip(after.databases.values(), before.databases.values(), strict=False)
    )
    window_s = (nodes["ts"].max() - window.start).total_seconds()
    gap_s = (after.timestamp - before.timestamp).total_seconds()
    # both count the same transactions plus the background (exporter, samplers) of the
    # longer Prometheus window: at most a few per second of extra window; none is dropped
    assert direct_xacts - 10 <= prom_xacts <= direct_xacts + 20 * max(window_s - gap_s + 2, 1)


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
