"""PostgreSQL source: sample a live server's statistics views and turn two samples into rows.

A *sample* (:class:`PgSample`) is the server's counters at one instant:
``pg_stat_database`` (transactions and tuples, per database), ``pg_stat_replication``
(per attached replica: write/flush/replay lag in seconds and bytes behind),
``pg_stat_user_tables`` + ``pg_statio_user_tables`` + ``pg_table_size`` (per table
or leaf partition of the connected database), database sizes and the active backends.
Two samples give one interval: :func:`to_frames` turns them into a ``node_metrics``
row for the server and ``segment_access`` rows for its tables, with counter resets
(restart, ``pg_stat_reset()``) handled by :mod:`pipelines.sources.counters`.

How the columns are derived (all documented in README "Connect your fleet"):

- ``cluster``: the ``cluster`` query parameter of the URI, else the DSN's dbname
  (else its host). ``region``: the ``region`` parameter, else the fleet cluster's
  primary region when the cluster is in the settings, else the first fleet region.
  ``node``: the ``node`` parameter, else ``host:port``. ``role``: ``pg_is_in_recovery()``.
- ``qps_read + qps_write`` = transactions per second (``xact_commit + xact_rollback``),
  split in proportion of rows fetched by index (``tup_fetched``) to rows written
  (``tup_inserted + tup_updated + tup_deleted``) in the interval.
- ``cpu_util``: SQL cannot see the CPU. Proxy: active client backends (excluding
  the collector) divided by the ``vcpus`` query parameter, capped at 1; without
  ``vcpus``, divided by ``max_connections``.
- ``disk_used_bytes``: sum of ``pg_database_size`` over all databases.
- ``repl_lag_s``/``repl_bytes``: on a primary, the largest ``replay_lag`` of its
  replicas and the WAL bytes sent to them in the interval; on a replica, the age of
  the last replayed transaction while replay is behind (else 0) and the WAL bytes
  it received in the interval.
- ``net_rtt_ms``: round trip of a trivial query from the collector.
- segments (from a primary only; a standby's table counters see only its own reads):
  ``<schema>.<table>`` of every table and leaf partition (partitioned parents carry
  no rows); ``reads`` = increase of ``seq_tup_read + idx_tup_fetch``,
  ``writes`` = increase of ``n_tup_ins + n_tup_upd + n_tup_del``, ``bytes_changed``
  = writes x average row width on disk (``pg_table_size / (n_live_tup + n_dead_tup)``),
  ``size_bytes`` = ``pg_table_size``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd
import psycopg
from psycopg.rows import dict_row

from forecasting.errors import SourceError
from forecasting.redact import redact
from forecasting.settings import Settings
from pipelines.sources.counters import counter_increase, increases

logger = logging.getLogger(__name__)

#: URI query parameters replicast consumes (the rest go to libpq).
OWN_PARAMS = ("cluster", "region", "node", "vcpus", "sample")

_LIBPQ_PREFIX = re.compile(r"^connection failed: connection to server at .*? failed: ")

_DB_COUNTERS = (
    "xact_commit",
    "xact_rollback",
    "tup_returned",
    "tup_fetched",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "blks_read",
    "blks_hit",
)
_TABLE_COUNTERS = (
    "seq_scan",
    "seq_tup_read",
    "idx_scan",
    "idx_tup_fetch",
    "n_tup_ins",
    "n_tup_upd",
    "n_tup_del",
    "heap_blks_read",
    "heap_blks_hit",
)

_SQL_SERVER = """
SELECT clock_timestamp() AS ts,
       pg_is_in_recovery() AS in_recovery,
       (SELECT system_identifier::text FROM pg_control_system()) AS system_id,
       pg_postmaster_start_time()::text AS started,
       current_setting('max_connections')::int AS max_connections,
       (SELECT count(*) FROM pg_stat_activity
         WHERE state = 'active' AND backend_type = 'client backend'
           AND pid <> pg_backend_pid()) AS active_backends,
       (SELECT sum(pg_database_size(oid))::float8 FROM pg_database) AS disk_used_bytes,
       CASE WHEN pg_is_in_recovery()
            THEN pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::float8
            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 END AS wal_bytes,
       CASE WHEN pg_is_in_recovery()
             AND pg_last_wal_receive_lsn() IS DISTINCT FROM pg_last_wal_replay_lsn()
            THEN GREATEST(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)::float8
            ELSE 0 END AS own_lag_s,
       current_database() AS dbname
"""

_SQL_PRIVILEGES = """
SELECT rolsuper OR pg_has_role(current_user, 'pg_monitor', 'USAGE') AS ok, current_user
FROM pg_roles WHERE rolname = current_user
"""

_SQL_DATABASES = f"""
SELECT coalesce(datname, '') AS datname, coalesce(stats_reset::text, '') AS stats_reset,
       {", ".join(f"coalesce({c}, 0)::float8 AS {c}" for c in _DB_COUNTERS)}
FROM pg_stat_database
"""  # datname '' = shared catalogs, counted as the exporter does

_SQL_REPLICATION = """
SELECT coalesce(sl.slot_name, nullif(r.application_name, ''), host(r.client_addr), r.pid::text)
         AS name,
       r.state,
       pg_wal_lsn_diff(r.sent_lsn, '0/0')::float8 AS sent_bytes,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn), 0)::float8 AS behind_bytes,
       coalesce(extract(epoch FROM r.write_lag), 0)::float8 AS write_lag_s,
       coalesce(extract(epoch FROM r.flush_lag), 0)::float8 AS flush_lag_s,
       coalesce(extract(epoch FROM r.replay_lag), 0)::float8 AS replay_lag_s
FROM pg_stat_replication r
LEFT JOIN pg_replication_slots sl ON sl.active_pid = r.pid
"""

_SQL_TABLES = """
SELECT s.schemaname || '.' || s.relname AS segment,
       s.seq_scan::float8, s.seq_tup_read::float8,
       coalesce(s.idx_scan, 0)::float8 AS idx_scan,
       coalesce(s.idx_tup_fetch, 0)::float8 AS idx_tup_fetch,
       s.n_tup_ins::float8, s.n_tup_upd::float8, s.n_tup_del::float8,
       coalesce(io.heap_blks_read, 0)::float8 AS heap_blks_read,
       coalesce(io.heap_blks_hit, 0)::float8 AS heap_blks_hit,
       s.n_live_tup::float8, s.n_dead_tup::float8,
       {size} AS size_bytes
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
LEFT JOIN pg_statio_user_tables io ON io.relid = s.relid
WHERE c.relkind <> 'p'
"""
#: exact size; needs a share lock on each table
_SIZE_EXACT = "pg_table_size(s.relid)::float8"
#: lock-free estimate from the last VACUUM/ANALYZE, used when a lock is not granted in time
#: (a standby whose replay is paused while holding a replayed exclusive lock)
_SIZE_ESTIMATE = "(c.relpages::float8 * current_setting('block_size')::float8)"
#: session limits so a sample never hangs on a lock or a slow catalog
_SESSION_LIMITS = "SET lock_timeout = '1s'; SET statement_timeout = '30s'"


@dataclass(frozen=True)
class PgTarget:
    """Where to connect and how the server is named in the lake."""

    conninfo: str
    display: str
    cluster: str
    region: str
    node: str
    vcpus: float | None = None
    sample_s: float = 5.0


@dataclass
class ReplicaLag:
    """One row of ``pg_stat_replication`` (a replica attached to this primary)."""

    name: str
    state: str
    sent_bytes: float
    behind_bytes: float
    write_lag_s: float
    flush_lag_s: float
    replay_lag_s: float


@dataclass
class PgSample:
    """The server's counters at one instant (JSON-serialisable, persisted between runs)."""

    ts: str
    in_recovery: bool
    system_id: str
    started: str
    dbname: str
    max_connections: int
    active_backends: int
    disk_used_bytes: float
    wal_bytes: float
    own_lag_s: float
    rtt_ms: float
    databases: dict[str, dict[str, float]] = field(default_factory=dict)
    db_resets: dict[str, str] = field(default_factory=dict)
    replicas: list[ReplicaLag] = field(default_factory=list)
    tables: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def timestamp(self) -> pd.Timestamp:
        return pd.Timestamp(self.ts).tz_convert("UTC")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PgSample:
        raw: dict[str, Any] = json.loads(text)
        raw["replicas"] = [ReplicaLag(**r) for r in raw.get("replicas", [])]
        return cls(**raw)


def parse_target(uri: str, settings: Settings) -> PgTarget:
    """Split a ``postgresql://`` URI into libpq conninfo and replicast naming.

    Args:
        uri: ``postgresql://user:pass@host:port/db?cluster=..&region=..&node=..&vcpus=..``.
        settings: the fleet gives the default region.

    Raises:
        SourceError: the URI is not a PostgreSQL URI or a parameter is malformed.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SourceError(
            f"{redact(uri)!r}: not a PostgreSQL URI; write postgresql://user@host:port/db"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise SourceError(f"{redact(uri)}: bad port in DSN ({exc}); write host:5432") from exc
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    own = {k: params.pop(k) for k in OWN_PARAMS if k in params}
    host = parts.hostname or "localhost"
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params), ""))
    cluster = own.get("cluster") or parts.path.lstrip("/") or host
    region = own.get("region") or _default_region(cluster, settings)
    node = own.get("node") or f"{host}:{port or 5432}"
    try:
        vcpus = float(own["vcpus"]) if own.get("vcpus") else None
        sample_s = _seconds(own.get("sample", "5s"))
    except ValueError as exc:
        raise SourceError(
            f"{redact(uri)}: bad query parameter ({exc}); write e.g. vcpus=4&sample=5s"
        ) from exc
    if vcpus is not None and vcpus <= 0:
        raise SourceError(f"{redact(uri)}: vcpus must be > 0, got {vcpus}")
    return PgTarget(
        conninfo=conninfo,
        display=redact(uri),
        cluster=cluster,
        region=region,
        node=node,
        vcpus=vcpus,
        sample_s=sample_s,
    )


def _default_region(cluster: str, settings: Settings) -> str:
    for known in settings.fleet.clusters:
        if known.name == cluster:
            return known.primary_region
    return settings.fleet.regions[0].name


def _seconds(text: str) -> float:
    seconds = pd.Timedelta(text if not text.replace(".", "").isdigit() else f"{text}s")
    if seconds.total_seconds() <= 0:
        raise ValueError(f"sample must be > 0, got {text!r}")
    return seconds.total_seconds()


def connect(target: PgTarget, timeout_s: float = 5.0) -> psycopg.Connection:
    """Open an autocommit connection; every failure becomes a one-line :class:`SourceError`."""
    try:
        conn = psycopg.connect(target.conninfo, autocommit=True, connect_timeout=int(timeout_s))
    except psycopg.ProgrammingError as exc:
        raise SourceError(f"{target.display}: bad DSN ({_first_line(exc)})") from exc
    except psycopg.OperationalError as exc:
        raise SourceError(f"{target.display}: {_connect_hint(exc)}") from exc
    for statement in _SESSION_LIMITS.split(";"):
        conn.execute(statement)
    return conn


def _first_line(exc: BaseException) -> str:
    """The reason of a libpq/psycopg error on one line, without libpq's long prefix."""
    text = " ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())
    text = _LIBPQ_PREFIX.sub("", text)
    return " ".join(text.replace("FATAL:", "").split()) or type(exc).__name__


def _connect_hint(exc: BaseException) -> str:
    reason = _first_line(exc)
    low = str(exc).lower()
    if "password authentication failed" in low or "no password supplied" in low:
        return f"authentication failed ({reason}); fix the user/password in the DSN"
    if "no pg_hba.conf entry" in low:
        return f"rejected by pg_hba.conf ({reason}); allow this host/user in pg_hba.conf"
    if "does not exist" in low:
        return f"{reason}; fix the database or user name in the DSN"
    if any(w in low for w in ("refused", "timeout", "timed out", "resolve", "unreachable")):
        return f"unreachable ({reason}); check host and port and that PostgreSQL listens there"
    return f"cannot connect ({reason}); check the DSN"


def sample(conn: psycopg.Connection, target: PgTarget) -> PgSample:
    """Read every statistics view once.

    Raises:
        SourceError: the role lacks the monitoring privileges, or a query failed.
    """
    try:
        ok, user = conn.execute(_SQL_PRIVILEGES).fetchone()
        if not ok:
            raise SourceError(
                f"{target.display}: role {user!r} cannot read replication and size statistics; "
                f"run GRANT pg_monitor TO {user};"
            )
        started = time.perf_counter()
        conn.execute("SELECT 1").fetchone()
        rtt_ms = (time.perf_counter() - started) * 1000.0
        cur = conn.cursor(row_factory=dict_row)
        server = cur.execute(_SQL_SERVER).fetchone()
        databases: dict[str, dict[str, float]] = {}
        resets: dict[str, str] = {}
        for row in cur.execute(_SQL_DATABASES).fetchall():
            resets[row["datname"]] = row["stats_reset"]
            databases[row["datname"]] = {c: float(row[c]) for c in _DB_COUNTERS}
        replicas = [ReplicaLag(**row) for row in cur.execute(_SQL_REPLICATION).fetchall()]
        tables = _tables(cur, target)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise SourceError(
            f"{target.display}: missing privilege ({_first_line(exc)}); "
            "GRANT pg_monitor TO the role"
        ) from exc
    except psycopg.Error as exc:
        raise SourceError(
            f"{target.display}: statistics query failed ({_first_line(exc)})"
        ) from exc
    return PgSample(
        ts=server["ts"].astimezone(UTC).isoformat(),
        in_recovery=bool(server["in_recovery"]),
        system_id=str(server["system_id"]),
        started=str(server["started"]),
        dbname=str(server["dbname"]),
        max_connections=int(server["max_connections"]),
        active_backends=int(server["active_backends"]),
        disk_used_bytes=float(server["disk_used_bytes"] or 0.0),
        wal_bytes=float(server["wal_bytes"] or 0.0),
        own_lag_s=float(server["own_lag_s"] or 0.0),
        rtt_ms=rtt_ms,
        databases=databases,
        db_resets=resets,
        replicas=replicas,
        tables=tables,
    )


def _tables(cur: psycopg.Cursor, target: PgTarget) -> dict[str, dict[str, float]]:
    try:
        rows = cur.execute(_SQL_TABLES.format(size=_SIZE_EXACT)).fetchall()
    except psycopg.errors.LockNotAvailable:
        logger.warning(
            "%s: a table is locked (paused replay?); table sizes estimated from relpages",
            target.display,
        )
        rows = cur.execute(_SQL_TABLES.format(size=_SIZE_ESTIMATE)).fetchall()
    return {row.pop("segment"): {k: float(v) for k, v in row.items()} for row in rows}


def same_server(previous: PgSample, current: PgSample) -> bool:
    """Whether two samples come from the same cluster (so their counters can be compared)."""
    return previous.system_id == current.system_id


def to_frames(
    previous: PgSample, current: PgSample, target: PgTarget, interval_s: float
) -> dict[str, pd.DataFrame]:
    """One interval's ``node_metrics`` and ``segment_access`` rows from two samples.

    Args:
        previous: the earlier sample (same server).
        current: the later sample.
        target: naming of the server in the lake.
        interval_s: rows are stamped with the later sample's time floored to this step.

    Returns:
        ``{"node_metrics": 1 row, "segment_access": 1 row per table}``; empty frames
        when the samples cannot be compared (another server, or no time between them).
    """
    seconds = (current.timestamp - previous.timestamp).total_seconds()
    if seconds <= 0 or not same_server(previous, current):
        return {"node_metrics": pd.DataFrame(), "segment_access": pd.DataFrame()}
    restarted = previous.started != current.started
    ts = current.timestamp.floor(pd.Timedelta(seconds=max(interval_s, 1.0)))

    totals = dict.fromkeys(_DB_COUNTERS, 0.0)
    for name, counters in current.databases.items():
        reset = restarted or previous.db_resets.get(name, "") != current.db_resets.get(name, "")
        base = previous.databases.get(name, {})
        for key, inc in increases(base, counters, reset=reset).items():
            totals[key] += 0.0 if math.isnan(inc) else inc
    xacts = totals["xact_commit"] + totals["xact_rollback"]
    reads = totals["tup_fetched"]
    writes = totals["tup_inserted"] + totals["tup_updated"] + totals["tup_deleted"]
    write_share = writes / (reads + writes) if reads + writes > 0 else 0.0
    qps = xacts / seconds

    if current.in_recovery:
        repl_lag_s = current.own_lag_s
        repl_bytes = counter_increase(previous.wal_bytes, current.wal_bytes)
    else:
        repl_lag_s = max((r.replay_lag_s for r in current.replicas), default=0.0)
        sent_before = {r.name: r.sent_bytes for r in previous.replicas}
        repl_bytes = sum(
            counter_increase(sent_before[r.name], r.sent_bytes)
            for r in current.replicas
            if r.name in sent_before
        )
    divisor = target.vcpus or float(current.max_connections)
    node = pd.DataFrame(
        {
            "ts": [ts],
            "cluster": target.cluster,
            "region": target.region,
            "node": target.node,
            "role": "replica" if current.in_recovery else "primary",
            "cpu_util": min(1.0, current.active_backends / max(divisor, 1.0)),
            "qps_read": qps * (1.0 - write_share),
            "qps_write": qps * write_share,
            "disk_used_bytes": current.disk_used_bytes,
            "repl_lag_s": max(repl_lag_s, 0.0),
            "repl_bytes": 0.0 if math.isnan(repl_bytes) else repl_bytes,
            "net_rtt_ms": current.rtt_ms,
        }
    )
    if current.in_recovery:
        # segment heat is the primary's: a standby's table counters see only its own reads,
        # and segment_access has one row per (cluster, segment, ts), not one per node
        return {"node_metrics": node, "segment_access": pd.DataFrame()}
    db = current.dbname
    table_reset = restarted or previous.db_resets.get(db, "") != current.db_resets.get(db, "")
    segments = segment_rows(previous.tables, current.tables, reset=table_reset)
    segments.insert(0, "cluster", target.cluster)
    segments.insert(0, "ts", ts)
    return {"node_metrics": node, "segment_access": segments}


def segment_rows(
    previous: dict[str, dict[str, float]],
    current: dict[str, dict[str, float]],
    *,
    reset: bool = False,
) -> pd.DataFrame:
    """Per-table reads, writes, changed bytes and size over one interval.

    Args:
        previous: segment -> counters at the earlier sample.
        current: segment -> counters (and ``size_bytes``, ``n_live_tup``) at the later one.
        reset: the database's statistics were reset in between.
    """
    rows = []
    for segment, stats in sorted(current.items()):
        base = previous.get(segment)
        if base is None:
            continue  # appeared during the interval: its first interval starts now
        inc = increases(base, {k: stats[k] for k in _TABLE_COUNTERS}, reset=reset)
        reads = inc["seq_tup_read"] + inc["idx_tup_fetch"]
        writes = inc["n_tup_ins"] + inc["n_tup_upd"] + inc["n_tup_del"]
        rows_on_disk = stats["n_live_tup"] + stats.get("n_dead_tup", 0.0)
        width = stats["size_bytes"] / rows_on_disk if rows_on_disk > 0 else 0.0
        rows.append(
            {
                "segment": segment,
                "reads": reads,
                "writes": writes,
                "bytes_changed": writes * width,
                "size_bytes": stats["size_bytes"],
            }
        )
    return pd.DataFrame(rows, columns=["segment", "reads", "writes", "bytes_changed", "size_bytes"])


def take_sample(target: PgTarget) -> PgSample:
    """Connect, sample once and disconnect."""
    with connect(target) as conn:
        return sample(conn, target)


def snapshot(uri: str, settings: Settings) -> dict[str, pd.DataFrame]:
    """A one-off snapshot: two samples ``sample`` seconds apart (default 5 s) -> one interval.

    Args:
        uri: a ``postgresql://`` URI (see :func:`parse_target`).
        settings: for the default region.

    Raises:
        SourceError: connection, privilege or query failure; names the source and the fix.
    """
    target = parse_target(uri, settings)
    with connect(target) as conn:
        first = sample(conn, target)
        time.sleep(target.sample_s)
        second = sample(conn, target)
    return to_frames(first, second, target, target.sample_s)
