"""A deterministic fleet simulator: ``node_metrics`` (5 min) and ``segment_access`` (15 min).

The generator is vectorised with numpy: per cluster it builds ``(series, time)`` arrays and
only loops over clusters, tables and the handful of incidents, never over rows. Every
cluster draws from its own generator seeded by ``(seed, crc32(cluster name))``, so adding
clusters to a fleet does not change the data of the clusters already there.

Signals (see ``data/sample/README.md`` for the long version):

* load per cluster and region follows a daily and a weekly cycle in the region's LOCAL
  time, a growth trend, fixed-date holidays of the region, incidents (traffic spikes,
  CPU-heavy bad queries with replication-lag spikes) and AR(1) noise that grows with load;
* writes go to the one primary node (node ``00`` of the cluster's primary region); every
  other node is a replica whose ``repl_lag_s`` grows with the link's RTT and utilisation;
* segments are time partitions (``<table>/p<YYYYMMDD>`` daily, ``<table>_<YYYY_MM_DD>``
  weekly) and unpartitioned shards (``<table>/s<NN>``) with Zipf-like popularity: the
  newest partition is hot and older ones cool down, a nightly batch job scans last
  week's daily partitions, a Sunday job scans the weekly table, static shards drift;
* rows go missing: collector outages (runs of intervals) and scattered single rows.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.signal import lfilter

from forecasting.errors import ConfigError
from forecasting.lake import write_parquet_atomic
from forecasting.schemas import NODE_METRICS, SEGMENT_ACCESS
from forecasting.settings import Cluster, Fleet, NodeType, Region
from pipelines.sample_spec import SAMPLE

log = logging.getLogger(__name__)

STEP_NODE = pd.Timedelta(minutes=5)
STEP_SEGMENT = pd.Timedelta(minutes=15)
_NODE_PER_DAY = 288
_SEG_PER_DAY = 96
_SUB = 3  # 5-min steps per 15-min step
_SEGMENT_HIT = 0.25  # segment reads per read query and second, times 900 s

#: Local-date holidays by IANA timezone prefix: (month, day) -> load factor.
HOLIDAYS: dict[str, dict[tuple[int, int], float]] = {
    "America/": {(1, 1): 0.55, (7, 4): 0.5, (10, 12): 0.85, (11, 26): 0.5, (12, 25): 0.45},
    "Europe/": {(1, 1): 0.5, (5, 1): 0.75, (12, 25): 0.45, (12, 26): 0.55},
    "Asia/": {
        (1, 1): 0.6,
        (5, 1): 0.6,
        **{(10, d): 0.5 for d in range(1, 8)},  # National Day golden week
    },
    "": {(1, 1): 0.6, (12, 25): 0.6},
}

_DAILY_TABLES = ("events", "audit_log", "page_views", "clicks", "metrics", "logins")
_WEEKLY_TABLES = ("invoices", "reports", "sessions", "shipments")
_STATIC_TABLES = ("users", "accounts", "products", "carts", "payments", "settings", "reviews")


@dataclass(frozen=True)
class SimulatedFleet:
    """What :func:`simulate_fleet` returns: one frame per input dataset."""

    node_metrics: pd.DataFrame
    segment_access: pd.DataFrame


ProgressFn = Callable[[str], None]


def scale_fleet(fleet: Fleet, clusters: int) -> Fleet:
    """The fleet with exactly ``clusters`` clusters.

    Fewer than the fleet has: the first ones. More: extra clusters ``c003``, ``c004``, ...
    (numbered by position) whose primary region rotates over the fleet's regions and which
    replicate to every region.

    Raises:
        ConfigError: ``clusters`` is not positive.
    """
    if clusters < 1:
        raise ConfigError(f"--clusters must be >= 1, got {clusters}")
    kept = list(fleet.clusters[:clusters])
    names = {c.name for c in kept}
    regions = [r.name for r in fleet.regions]
    i = len(kept)
    while len(kept) < clusters:
        name = f"c{i:03d}"
        if name not in names:
            kept.append(
                Cluster(name=name, primary_region=regions[i % len(regions)], regions=regions)
            )
            names.add(name)
        i += 1
    return fleet.model_copy(update={"clusters": kept})


def simulate_fleet(
    fleet: Fleet,
    *,
    start: str | date | datetime | pd.Timestamp,
    days: int,
    seed: int,
    nodes_per_region: int = 3,
    segments_per_cluster: int = 24,
    progress: ProgressFn | None = None,
) -> SimulatedFleet:
    """Generate node metrics and segment access for every cluster of ``fleet``.

    Args:
        fleet: clusters, regions (timezone, RTT, bandwidth) and node types.
        start: first day (UTC midnight); a timestamp is floored to its UTC day.
        days: number of days to generate.
        seed: the same seed (and arguments) gives equal frames.
        nodes_per_region: nodes of each cluster in each of its regions.
        segments_per_cluster: segments alive at any time per cluster (approximately:
            a quarter unpartitioned shards, a weekly and one or more daily tables).
        progress: called with the cluster name after each cluster is done.

    Returns:
        ``SimulatedFleet`` whose frames have exactly the columns of ``NODE_METRICS`` and
        ``SEGMENT_ACCESS``, ``ts`` in UTC, sorted by key then time.

    Raises:
        ConfigError: a non-positive ``days``, ``nodes_per_region`` or ``segments_per_cluster``.
    """
    nodes, segments = [], []
    for part in iter_clusters(
        fleet,
        start=start,
        days=days,
        seed=seed,
        nodes_per_region=nodes_per_region,
        segments_per_cluster=segments_per_cluster,
    ):
        nodes.append(part.node_metrics)
        segments.append(part.segment_access)
        if progress is not None:
            progress(str(part.node_metrics["cluster"].iat[0]))
    node_metrics = pd.concat(nodes, ignore_index=True)
    segment_access = pd.concat(segments, ignore_index=True)
    log.info(
        "simulated %d clusters, %d days: %d node rows, %d segment rows",
        len(fleet.clusters),
        days,
        len(node_metrics),
        len(segment_access),
    )
    return SimulatedFleet(node_metrics=node_metrics, segment_access=segment_access)


def simulate_sample(progress: ProgressFn | None = None) -> SimulatedFleet:
    """The data of ``data/sample/``, regenerated in memory (default fleet, :data:`SAMPLE`)."""
    return simulate_fleet(
        Fleet(),
        start=SAMPLE.start,
        days=SAMPLE.days,
        seed=SAMPLE.seed,
        nodes_per_region=SAMPLE.nodes_per_region,
        segments_per_cluster=SAMPLE.segments_per_cluster,
        progress=progress,
    )


def iter_clusters(
    fleet: Fleet,
    *,
    start: str | date | datetime | pd.Timestamp,
    days: int,
    seed: int,
    nodes_per_region: int = 3,
    segments_per_cluster: int = 24,
) -> Iterator[SimulatedFleet]:
    """Like :func:`simulate_fleet`, one cluster at a time (in fleet order), for big fleets.

    Concatenating what this yields gives exactly the frames of :func:`simulate_fleet`.
    The arguments are checked when this is called, before anything is generated.

    Raises:
        ConfigError: a non-positive ``days``, ``nodes_per_region`` or ``segments_per_cluster``,
            or more than :data:`MAX_ROWS` rows to generate (:func:`check_size`).
    """
    for name, value in (
        ("days", days),
        ("nodes_per_region", nodes_per_region),
        ("segments_per_cluster", segments_per_cluster),
    ):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}; pass a positive number")
    check_size(
        fleet,
        days=days,
        nodes_per_region=nodes_per_region,
        segments_per_cluster=segments_per_cluster,
    )
    return _iter_clusters(
        fleet, _utc_day(start), days, seed, nodes_per_region, segments_per_cluster
    )


def _iter_clusters(
    fleet: Fleet,
    t0: pd.Timestamp,
    days: int,
    seed: int,
    nodes_per_region: int,
    segments_per_cluster: int,
) -> Iterator[SimulatedFleet]:
    clock = _Clock.build(fleet, t0, days)
    node_type = _reference_node_type(fleet)
    for cluster in fleet.clusters:
        rng = np.random.default_rng([seed, zlib.crc32(cluster.name.encode())])
        load = _cluster_load(cluster, fleet, clock, rng)
        nodes = _node_frame(cluster, fleet, clock, load, node_type, nodes_per_region, rng)
        segments = _segment_frame(cluster, clock, load, segments_per_cluster, rng)
        yield SimulatedFleet(
            node_metrics=nodes[NODE_METRICS.names], segment_access=segments[SEGMENT_ACCESS.names]
        )


#: Most rows (node rows plus segment x 15-minute cells) one simulation may generate:
#: about 5x the 300-cluster benchmark of data/sample/README.md (12 M, 1.3 GB peak).
MAX_ROWS = 50_000_000


def planned_rows(
    fleet: Fleet, *, days: int, nodes_per_region: int, segments_per_cluster: int
) -> int:
    """Rows a simulation generates before gaps are cut: node rows plus segment cells.

    Segment cells are every segment of the period (the daily and weekly partitions of
    all ``days``, as :func:`_catalog` makes them, not only those alive at once) times
    the 15-minute steps; the generator holds them as dense arrays.
    """
    budget = segments_per_cluster
    n_static = max(1, budget // 4)
    n_weekly = 6 if budget >= 16 else 0
    rest = max(1, budget - n_static - n_weekly)
    n_daily = max(1, round(rest / 14))
    retention = max(2, rest // n_daily)
    weekly = n_weekly + days // 7 + 1 if n_weekly else 0
    segments = n_static + n_daily * (days + retention - 1) + weekly
    node_series = sum(len(c.regions) for c in fleet.clusters) * nodes_per_region
    return node_series * days * _NODE_PER_DAY + len(fleet.clusters) * segments * days * _SEG_PER_DAY


def check_size(
    fleet: Fleet, *, days: int, nodes_per_region: int, segments_per_cluster: int
) -> None:
    """Refuse a simulation of more than :data:`MAX_ROWS` rows (:func:`planned_rows`).

    Raises:
        ConfigError: the message says how many rows it would be and which options set it.
    """
    rows = planned_rows(
        fleet,
        days=days,
        nodes_per_region=nodes_per_region,
        segments_per_cluster=segments_per_cluster,
    )
    if rows > MAX_ROWS:
        raise ConfigError(
            f"the simulation would generate {rows:,} rows, more than the limit of {MAX_ROWS:,}; "
            f"lower --days ({days}), --clusters ({len(fleet.clusters)}), --nodes-per-region "
            f"({nodes_per_region}) or --segments-per-cluster ({segments_per_cluster})"
        )


# --------------------------------------------------------------------------- time axes


def _utc_day(value: str | date | datetime | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.floor("D")


@dataclass(frozen=True)
class _Local:
    hour: np.ndarray  # local hour of day, fractional, per 5-min step
    dow: np.ndarray  # local day of week (0 = Monday)
    holiday: np.ndarray  # load factor of the local date (1.0 on ordinary days)


@dataclass(frozen=True)
class _Clock:
    t0: pd.Timestamp
    days: int
    ts5: pd.DatetimeIndex
    ts15: pd.DatetimeIndex
    local: dict[str, _Local]  # by region name

    @property
    def n5(self) -> int:
        return len(self.ts5)

    @property
    def n15(self) -> int:
        return len(self.ts15)

    @classmethod
    def build(cls, fleet: Fleet, t0: pd.Timestamp, days: int) -> _Clock:
        ts5 = pd.date_range(t0, periods=days * _NODE_PER_DAY, freq=STEP_NODE)
        ts15 = pd.date_range(t0, periods=days * _SEG_PER_DAY, freq=STEP_SEGMENT)
        local = {r.name: _local_axes(ts5, r) for r in fleet.regions}
        return cls(t0=t0, days=days, ts5=ts5, ts15=ts15, local=local)


def _local_axes(ts: pd.DatetimeIndex, region: Region) -> _Local:
    loc = ts.tz_convert(region.timezone)
    hour = loc.hour.to_numpy() + loc.minute.to_numpy() / 60.0
    month_day = loc.month.to_numpy() * 100 + loc.day.to_numpy()
    table = next(v for k, v in HOLIDAYS.items() if region.timezone.startswith(k))
    holiday = np.ones(len(ts))
    for (month, day), factor in table.items():
        holiday[month_day == month * 100 + day] = factor
    return _Local(hour=hour, dow=loc.dayofweek.to_numpy(), holiday=holiday)


def _reference_node_type(fleet: Fleet) -> NodeType:
    """The node type the simulated nodes run: the middle one by capacity."""
    ordered = sorted(fleet.node_types, key=lambda n: n.qps_capacity)
    return ordered[len(ordered) // 2]


def _link(fleet: Fleet, a: str, b: str) -> tuple[float, float]:
    """(RTT ms, bandwidth B/s) between two regions (region RTTs are from the hub)."""
    ra, rb = fleet.region(a), fleet.region(b)
    if a == b:
        return 0.4, 1.25e9 * 4
    return max(ra.rtt_ms, rb.rtt_ms, 1.0), min(ra.bandwidth_bytes_s, rb.bandwidth_bytes_s)


# --------------------------------------------------------------------------- regional load


@dataclass(frozen=True)
class _Load:
    regions: list[str]
    reads: np.ndarray  # (n_regions, n5) read qps demanded in each region, noiseless
    writes: np.ndarray  # (n_regions, n5) write qps originating in each region
    cpu_extra: np.ndarray  # (n_regions, n5) extra CPU from bad-query incidents (fraction)
    lag_extra: np.ndarray  # (n_regions, n5) extra replication lag (s) from incidents
    write_ratio: float
    primary_tz_hour: np.ndarray  # primary region local hour per 5-min step
    primary_dow: np.ndarray


def _cluster_load(cluster: Cluster, fleet: Fleet, clock: _Clock, rng: np.random.Generator) -> _Load:
    regions = list(dict.fromkeys([cluster.primary_region, *cluster.regions]))
    n = clock.n5
    t_days = np.arange(n) / _NODE_PER_DAY
    scale = rng.lognormal(np.log(7000.0), 0.35)  # peak read qps in the primary region
    amp = rng.uniform(0.35, 0.55)
    peak_hour = rng.uniform(13.0, 16.0)
    evening = rng.uniform(0.0, 0.15)
    weekend = (rng.uniform(0.6, 0.85), rng.uniform(0.55, 0.8))
    growth = rng.uniform(0.001, 0.006)  # per day, compounding
    write_ratio = rng.uniform(0.06, 0.15)
    reads = np.empty((len(regions), n))
    cpu_extra = np.zeros((len(regions), n))
    lag_extra = np.zeros((len(regions), n))
    for i, name in enumerate(regions):
        local = clock.local[name]
        share = 1.0 if i == 0 else rng.uniform(0.35, 0.9)
        daily = (
            1.0
            + amp * np.cos(2 * np.pi * (local.hour - peak_hour) / 24.0)
            + evening * np.cos(4 * np.pi * (local.hour - 20.5) / 24.0)
        ) / (1.0 + amp + evening)
        weekly = np.select([local.dow == 5, local.dow == 6, local.dow == 0], [*weekend, 1.03], 1.0)
        # Day-to-day swings of the level (campaigns, weather): AR(1) across days, smooth in time.
        swings = 0.06 * _ar1(rng, (clock.days + 2,), 0.7)
        day_level = np.exp(np.interp(t_days, np.arange(-0.5, clock.days + 1.0), swings))
        trend = np.exp(growth * t_days) * day_level
        level = scale * share * daily * weekly * local.holiday * trend
        reads[i] = level * _incidents(rng, n, clock.days, cpu_extra[i], lag_extra[i])
    writes = reads * write_ratio
    primary = clock.local[regions[0]]
    return _Load(
        regions=regions,
        reads=reads,
        writes=writes,
        cpu_extra=cpu_extra,
        lag_extra=lag_extra,
        write_ratio=write_ratio,
        primary_tz_hour=primary.hour,
        primary_dow=primary.dow,
    )


def _incidents(
    rng: np.random.Generator, n: int, days: int, cpu_extra: np.ndarray, lag_extra: np.ndarray
) -> np.ndarray:
    """Traffic multiplier with spikes; adds bad-query CPU and lag into the given rows."""
    mult = np.ones(n)
    for _ in range(rng.poisson(days / 7.0)):
        begin = int(rng.integers(0, n))
        length = int(rng.integers(3, 36))  # 15 min .. 3 h
        end = min(n, begin + length)
        shape = np.sin(np.linspace(0.0, np.pi, end - begin + 2)[1:-1])  # rise and fall
        if rng.random() < 0.6:  # traffic spike
            mult[begin:end] *= 1.0 + rng.uniform(0.5, 1.5) * shape
        else:  # a bad query: CPU without traffic, replicas fall behind
            cpu_extra[begin:end] += rng.uniform(0.15, 0.4) * shape
            lag_extra[begin:end] += rng.uniform(2.0, 30.0) * shape
    return mult


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float) -> np.ndarray:
    """AR(1) noise along the last axis with unit stationary variance."""
    eps = rng.standard_normal(shape) * np.sqrt(1.0 - phi**2)
    return lfilter([1.0], [1.0, -phi], eps, axis=-1)


def _missing_mask(
    rng: np.random.Generator, shape: tuple[int, int], per_day: int, outages: float, scatter: float
) -> np.ndarray:
    """True where a row is kept: outage runs per series plus scattered single drops."""
    keep = rng.random(shape) >= scatter
    days = shape[1] / per_day
    for row in range(shape[0]):
        for _ in range(rng.poisson(outages * days)):
            begin = int(rng.integers(0, shape[1]))
            keep[row, begin : begin + int(rng.integers(2, per_day // 8))] = False
    return keep


# --------------------------------------------------------------------------- node metrics


def _node_frame(
    cluster: Cluster,
    fleet: Fleet,
    clock: _Clock,
    load: _Load,
    node_type: NodeType,
    per_region: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    n = clock.n5
    n_regions = len(load.regions)
    n_nodes = n_regions * per_region
    region_of = np.repeat(np.arange(n_regions), per_region)
    is_primary = np.zeros(n_nodes, dtype=bool)
    is_primary[0] = True  # node 00 of the primary region

    # Read demand split over a region's nodes (the primary takes a smaller share).
    weights = rng.dirichlet(np.full(per_region, 30.0), size=n_regions).ravel()
    weights[0] *= 0.3 if per_region > 1 else 1.0
    weights /= np.bincount(region_of, weights)[region_of]
    base_reads = load.reads[region_of] * weights[:, None]
    peak = base_reads.max(axis=1, keepdims=True)
    sigma = 0.03 + 0.06 * base_reads / peak  # noise grows with load
    qps_read = base_reads * (1.0 + sigma * _ar1(rng, (n_nodes, n), 0.6))
    qps_read += rng.standard_normal((n_nodes, n)) * np.sqrt(base_reads) * 0.5
    write_total = load.writes.sum(axis=0)
    write_noisy = write_total * (1.0 + 0.04 * _ar1(rng, (n,), 0.7))
    qps_write = np.where(is_primary[:, None], write_noisy[None, :], 0.0)
    qps_read = np.maximum(qps_read, 0.0)

    apply_cost = np.where(is_primary[:, None], 0.0, 0.35 * write_noisy[None, :])
    cpu = 0.04 + (qps_read + 1.8 * qps_write + apply_cost) / node_type.qps_capacity
    cpu += load.cpu_extra[region_of] + 0.008 * rng.standard_normal((n_nodes, n))
    cpu_util = np.clip(cpu, 0.0, 1.0)

    # Data size: grows with writes, shrinks a little at the Sunday 03:00 compaction.
    bytes_per_write = rng.uniform(40.0, 90.0)
    grown = np.cumsum(write_noisy * 300.0 * bytes_per_write)
    compaction = (load.primary_dow == 6) & (np.abs(load.primary_tz_hour - 3.0) < 1e-6)
    data = (rng.uniform(2e11, 8e11) + grown) * 0.985 ** np.cumsum(compaction)
    disk = data[None, :] * rng.uniform(0.99, 1.01, size=(n_nodes, 1))

    # Replication: WAL bytes from writes; lag from RTT and how busy the link is.
    wal_per_write = rng.uniform(900.0, 1600.0)
    stream = write_noisy * wal_per_write  # bytes/s to each replica
    n_replicas = n_nodes - 1
    rtt = np.empty(n_nodes)
    util = np.zeros((n_nodes, n))
    for r, name in enumerate(load.regions):
        rtt_ms, bandwidth = _link(fleet, load.regions[0], name)
        rtt[region_of == r] = rtt_ms
        # Each cluster gets a third of a link; all its replicas in the region share it.
        util[region_of == r] = np.clip(stream * per_region / (bandwidth / 3.0), 0.0, 0.97)
    queueing = 0.6 * util / (1.0 - util)  # the link's queue grows with its utilisation
    busy = write_noisy / write_noisy.mean()  # replicas apply more slowly under load
    base = (rtt[:, None] / 1000.0 * 1.5 + 0.004) * (0.7 + 0.3 * busy[None, :] ** 2)
    lag = base + queueing + load.lag_extra[region_of]
    lag *= rng.lognormal(0.0, 0.15, size=(n_nodes, n))
    repl_lag_s = np.where(is_primary[:, None], 0.0, lag)
    shipped = stream[None, :] * 300.0 * rng.lognormal(0.0, 0.03, size=(n_nodes, n))
    repl_bytes = np.where(is_primary[:, None], shipped * n_replicas, shipped)
    rtt_now = rtt[:, None] * (1.0 + 0.03 * rng.standard_normal((n_nodes, n)) + 0.2 * util)
    net_rtt_ms = np.maximum(rtt_now, 0.05)

    keep = _missing_mask(rng, (n_nodes, n), _NODE_PER_DAY, outages=0.08, scatter=0.002)
    rows = keep.ravel()
    node_names = np.array(
        [
            f"{cluster.name}-{load.regions[r]}-{i:02d}"
            for r in range(n_regions)
            for i in range(per_region)
        ],
        dtype=object,
    )
    region_names = np.array(load.regions, dtype=object)[region_of]
    roles = np.where(is_primary, "primary", "replica").astype(object)

    def per_node(values: np.ndarray) -> np.ndarray:
        return np.repeat(values, n)[rows]

    def cells(values: np.ndarray, decimals: int) -> np.ndarray:
        return np.round(values, decimals).ravel()[rows]

    return pd.DataFrame(
        {
            "ts": clock.ts5[np.tile(np.arange(n), n_nodes)[rows]],
            "cluster": np.full(rows.sum(), cluster.name, dtype=object),
            "region": per_node(region_names),
            "node": per_node(node_names),
            "role": per_node(roles),
            "cpu_util": cells(cpu_util, 4),
            "qps_read": cells(qps_read, 1),
            "qps_write": cells(qps_write, 1),
            "disk_used_bytes": cells(disk, -3),
            "repl_lag_s": cells(repl_lag_s, 4),
            "repl_bytes": cells(repl_bytes, -3),
            "net_rtt_ms": cells(net_rtt_ms, 2),
        }
    )


# --------------------------------------------------------------------------- segments


@dataclass(frozen=True)
class _Segments:
    names: np.ndarray  # (n_seg,) object
    born: np.ndarray  # (n_seg,) first 15-min step the segment exists (may be < 0)
    dies: np.ndarray  # (n_seg,) first 15-min step it no longer exists
    weight: np.ndarray  # (n_seg, n15) read popularity
    write_share: np.ndarray  # (n_seg, n15) share of the cluster's appends (partitions)
    write_per_read: np.ndarray  # (n_seg,) updates per read (unpartitioned shards)
    row_bytes: np.ndarray  # (n_seg,)
    base_size: np.ndarray  # (n_seg,)
    scan: np.ndarray  # (n_seg, n15) batch-scan reads per interval


def _segment_frame(
    cluster: Cluster, clock: _Clock, load: _Load, budget: int, rng: np.random.Generator
) -> pd.DataFrame:
    n15 = clock.n15
    # Cluster demand at 15 min: 5-min averages, per region.
    reads15 = load.reads.reshape(len(load.regions), n15, _SUB).mean(axis=2)
    writes15 = load.writes.sum(axis=0).reshape(n15, _SUB).mean(axis=1)
    primary_hour = load.primary_tz_hour[::_SUB]
    primary_dow = load.primary_dow[::_SUB]
    volume = reads15.sum(axis=0).mean() * 900.0 * _SEGMENT_HIT  # mean reads per interval
    segs = _catalog(clock, budget, rng, primary_hour, primary_dow, volume)
    n_seg = len(segs.names)

    # Each segment is read from the regions in its own mix -> its own daily cycle.
    affinity = rng.dirichlet(np.full(len(load.regions), 0.7), size=n_seg)
    demand = affinity @ reads15 * len(load.regions)  # (n_seg, n15) read qps
    steps = np.arange(n15)[None, :]
    alive = (steps >= segs.born[:, None]) & (steps < segs.dies[:, None])
    weight = np.where(alive, segs.weight, 0.0)
    share = weight / weight.sum(axis=0, keepdims=True)
    online = demand * share * 900.0 * _SEGMENT_HIT * rng.lognormal(0.0, 0.12, size=share.shape)
    reads = rng.poisson(online + segs.scan)
    # Partitions take the cluster's appends; shards are updated in proportion to their reads.
    write_share = np.where(alive, segs.write_share, 0.0)
    write_share /= np.maximum(write_share.sum(axis=0, keepdims=True), 1e-12)
    appends = write_share * writes15[None, :] * 900.0 * 0.5
    mean_writes = appends + online * segs.write_per_read[:, None] * load.write_ratio
    writes = rng.poisson(mean_writes * rng.lognormal(0.0, 0.1, size=mean_writes.shape))
    changed = writes * segs.row_bytes[:, None] * rng.lognormal(0.0, 0.2, size=writes.shape)
    size = segs.base_size[:, None] + np.cumsum(changed * 0.8, axis=1)

    keep = alive & _missing_mask(rng, (1, n15), _SEG_PER_DAY, outages=0.1, scatter=0.0)
    keep &= rng.random(keep.shape) >= 0.002
    rows = keep.ravel()
    count = int(rows.sum())
    return pd.DataFrame(
        {
            "ts": clock.ts15[np.tile(np.arange(n15), n_seg)[rows]],
            "cluster": np.full(count, cluster.name, dtype=object),
            "segment": np.repeat(segs.names, n15)[rows],
            "reads": reads.astype(float).ravel()[rows],
            "writes": writes.astype(float).ravel()[rows],
            "bytes_changed": np.round(changed, 0).ravel()[rows],
            "size_bytes": np.round(size, -3).ravel()[rows],
        }
    )


def _catalog(
    clock: _Clock,
    budget: int,
    rng: np.random.Generator,
    primary_hour: np.ndarray,
    primary_dow: np.ndarray,
    volume: float,
) -> _Segments:
    """The segments of one cluster over the whole period, with their popularity over time."""
    n15 = clock.n15
    t_day = np.arange(n15) / _SEG_PER_DAY  # days since start (UTC)
    n_static = max(1, budget // 4)
    n_weekly = 6 if budget >= 16 else 0
    rest = max(1, budget - n_static - n_weekly)
    n_daily_tables = max(1, round(rest / 14))
    retention = max(2, rest // n_daily_tables)  # daily partitions alive at once

    names: list[np.ndarray] = []
    born, dies, weight, wshare, row_bytes, base_size, scan = [], [], [], [], [], [], []
    per_read: list[np.ndarray] = []
    # Zipf-like table popularity in a random order (rank 1 = most read).
    static_tables = rng.choice(
        _STATIC_TABLES, size=min(n_static, len(_STATIC_TABLES)), replace=False
    )
    n_tables = n_daily_tables + (1 if n_weekly else 0) + len(static_tables)
    ranks = rng.permutation(n_tables) + 1
    table_pop = iter(1.0 / ranks**1.1)
    nightly = (np.abs(primary_hour - 2.5) < 0.5 + 1e-9).astype(float)  # 02:00-03:00 local
    sunday = ((primary_dow == 6) & (primary_hour >= 4.0) & (primary_hour < 6.0)).astype(float)

    daily_names = rng.choice(
        _DAILY_TABLES, size=min(n_daily_tables, len(_DAILY_TABLES)), replace=False
    )
    for k in range(n_daily_tables):
        table = daily_names[k] if k < len(daily_names) else f"events{k}"
        first = -(retention - 1)
        days_idx = np.arange(first, clock.days)
        stamps = clock.t0 + pd.to_timedelta(days_idx, unit="D")
        names.append(np.array([f"{table}/p{s:%Y%m%d}" for s in stamps], dtype=object))
        born.append(days_idx * _SEG_PER_DAY)
        dies.append((days_idx + retention) * _SEG_PER_DAY)
        age = t_day[None, :] - days_idx[:, None]  # days since the partition's day began
        pop = 2.0 * next(table_pop)  # event tables are read more than their rank says
        fill = np.clip(age * 4.0, 0.3, 1.0)  # today's partition warms up as it fills
        weight.append(
            pop * np.where(age < 1.0, fill, 1.0) * np.exp(-np.maximum(age, 0.0) / 1.2) + pop * 2e-3
        )
        wshare.append(np.where(age < 1.0, 1.0, 0.03 * np.exp(-(age - 1.0) * 3.0)) * pop)
        per_read.append(np.zeros(len(days_idx)))
        rb = rng.uniform(150.0, 600.0)
        row_bytes.append(np.full(len(days_idx), rb))
        base_size.append(np.where(days_idx < 0, rng.uniform(2e9, 8e9, len(days_idx)), 4e6))
        # Nightly job: scans the previous 1..7 daily partitions.
        in_window = (age >= 1.0) & (age < 8.0)
        scan.append(in_window * nightly[None, :] * rng.uniform(0.02, 0.05) * volume)

    if n_weekly:
        table = rng.choice(_WEEKLY_TABLES)
        monday = clock.t0 - pd.Timedelta(days=clock.t0.dayofweek)
        offset = (monday - clock.t0).days  # <= 0
        weeks = np.arange(-(n_weekly - 1), clock.days // 7 + 2)
        week_day = offset + weeks * 7
        keep = week_day < clock.days
        weeks, week_day = weeks[keep], week_day[keep]
        stamps = clock.t0 + pd.to_timedelta(week_day, unit="D")
        names.append(np.array([f"{table}_{s:%Y_%m_%d}" for s in stamps], dtype=object))
        born.append(week_day * _SEG_PER_DAY)
        dies.append((week_day + 7 * n_weekly) * _SEG_PER_DAY)
        age = (t_day[None, :] - week_day[:, None]) / 7.0  # in weeks
        pop = next(table_pop)
        weight.append(pop * np.exp(-np.maximum(age, 0.0) / 1.0) + pop * 5e-3)
        wshare.append(np.where(age < 1.0, 1.0, 0.01) * pop)
        per_read.append(np.zeros(len(weeks)))
        row_bytes.append(np.full(len(weeks), rng.uniform(300.0, 1500.0)))
        base_size.append(np.where(week_day < 0, rng.uniform(5e9, 2e10, len(weeks)), 4e6))
        scan.append(np.broadcast_to(sunday * rng.uniform(0.03, 0.08) * volume, (len(weeks), n15)))

    static_pop = [next(table_pop) for _ in static_tables]
    n_st = len(static_tables)
    shards = [f"{static_tables[i % n_st]}/s{i // n_st:02d}" for i in range(n_static)]
    drift = np.cumsum(rng.normal(0.0, 0.08, size=(n_static, clock.days + 1)), axis=1)
    drift15 = np.repeat(drift, _SEG_PER_DAY, axis=1)[:, :n15]
    hotspot = np.ones((n_static, n15))
    if clock.days >= 3:  # one shard turns hot for a few days (a viral product, a migration)
        who, when = int(rng.integers(n_static)), int(rng.integers(0, n15))
        hotspot[who, when : when + int(rng.integers(2, 5)) * _SEG_PER_DAY] = rng.uniform(3.0, 6.0)
    for i in range(n_static):
        pop = static_pop[i % n_st] * (1.0 if i < n_st else rng.uniform(0.3, 1.0))
        names.append(np.array([shards[i]], dtype=object))
        born.append(np.array([-1]))
        dies.append(np.array([n15 + 1]))
        weight.append(pop * np.exp(drift15[i : i + 1]) * hotspot[i : i + 1])
        wshare.append(np.zeros((1, n15)))
        per_read.append(np.array([rng.uniform(0.1, 2.0)]))
        row_bytes.append(np.array([rng.uniform(200.0, 2000.0)]))
        base_size.append(np.array([rng.uniform(1e9, 5e10)]))
        scan.append(np.zeros((1, n15)))

    return _Segments(
        names=np.concatenate(names),
        born=np.concatenate(born),
        dies=np.concatenate(dies),
        weight=np.vstack(weight),
        write_share=np.vstack(wshare),
        write_per_read=np.concatenate(per_read),
        row_bytes=np.concatenate(row_bytes),
        base_size=np.concatenate(base_size),
        scan=np.vstack(scan),
    )


# --------------------------------------------------------------------------- files

NODE_FILE = "node_metrics.parquet"
SEGMENT_FILE = "segment_access.parquet"


@dataclass(frozen=True)
class SimulationSummary:
    """What :func:`write_simulation` wrote, for reports."""

    paths: dict[str, Path]  # dataset -> file
    rows: dict[str, int]
    series: dict[str, int]  # nodes / (cluster, segment) pairs
    span: dict[str, tuple[pd.Timestamp, pd.Timestamp]]
    clusters: int
    load: pd.DataFrame  # cluster, region, nodes, qps_median, qps_peak, cpu_peak


def write_simulation(
    parts: Iterable[SimulatedFleet], out: Path, *, progress: ProgressFn | None = None
) -> SimulationSummary:
    """Write simulated clusters to ``out/node_metrics.parquet`` and ``out/segment_access.parquet``.

    Each part (e.g. from :func:`iter_clusters`) is turned into Arrow as it arrives, so
    peak memory stays near the size of the Arrow data; both files are written atomically
    (temp file, fsync, rename) once everything is generated.

    Args:
        parts: simulated clusters; a single :class:`SimulatedFleet` works too (``[fleet]``).
        out: directory, created if missing.
        progress: called with the cluster name after each part.
    """
    tables: dict[str, list[pa.Table]] = {"node_metrics": [], "segment_access": []}
    series = {"node_metrics": 0, "segment_access": 0}
    span: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = {}
    loads, clusters = [], set()
    for part in parts:
        for name, frame in (
            ("node_metrics", part.node_metrics),
            ("segment_access", part.segment_access),
        ):
            if frame.empty:
                continue
            schema = tables[name][0].schema if tables[name] else None
            tables[name].append(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
            lo, hi = frame["ts"].min(), frame["ts"].max()
            old = span.get(name, (lo, hi))
            span[name] = (min(old[0], lo), max(old[1], hi))
            clusters.update(frame["cluster"].unique())
        nm, sa = part.node_metrics, part.segment_access
        series["node_metrics"] += len(nm[["cluster", "region", "node"]].drop_duplicates())
        series["segment_access"] += len(sa[["cluster", "segment"]].drop_duplicates())
        loads.append(_load_stats(nm))
        if progress is not None and not nm.empty:
            progress(str(nm["cluster"].iat[0]))
    paths = {"node_metrics": out / NODE_FILE, "segment_access": out / SEGMENT_FILE}
    rows = {}
    for name, path in paths.items():
        if not tables[name]:
            raise ConfigError(f"{name}: nothing was simulated; the fleet has no clusters")
        table = pa.concat_tables(tables[name])
        rows[name] = table.num_rows
        write_parquet_atomic(table, path)
    return SimulationSummary(
        paths=paths,
        rows=rows,
        series=series,
        span=span,
        clusters=len(clusters),
        load=pd.concat(loads, ignore_index=True),
    )


def _load_stats(nm: pd.DataFrame) -> pd.DataFrame:
    per_ts = (
        nm.assign(qps=nm["qps_read"] + nm["qps_write"])
        .groupby(["cluster", "region", "ts"], sort=True)
        .agg(qps=("qps", "sum"), cpu=("cpu_util", "mean"), nodes=("node", "nunique"))
    )
    return (
        per_ts.groupby(level=["cluster", "region"])
        .agg(
            nodes=("nodes", "max"),
            qps_median=("qps", "median"),
            qps_peak=("qps", "max"),
            cpu_peak=("cpu", "max"),
        )
        .reset_index()
    )
