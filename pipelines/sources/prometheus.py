"""Prometheus source: ``query_range`` the PostgreSQL exporter's metrics into lake datasets.

``prometheus://host:9090?cluster=orders&region=us-east&range=6h&step=5m`` reads, for
every PostgreSQL server the exporter labels (``server="host:port"`` by default),
the same counters the direct PostgreSQL source samples, and derives the same
columns with the same rules (:mod:`pipelines.sources.postgres`). The metrics come
from prometheus-postgres-exporter's built-in collectors plus the extra queries in
``pipelines/sources/exporter_queries.yaml`` (``--extend.query-path``).

- **Mapping**: each dataset is computed from named *inputs*, each a PromQL query
  returning one series per node (and per segment). :data:`DEFAULT_MAPPING` fits
  the exporter; override any input with ``?mapping=/path/mapping.toml`` (tables
  ``[node_metrics]``/``[segment_access]``, input name = PromQL). ``{sel}`` in a
  query is replaced by the ``selector`` parameter (e.g. ``job="postgres"``).
- **Steps** are aligned to the dataset interval (``node_metrics`` 5 min,
  ``segment_access`` 15 min) or to ``?step=``; start and end snap to multiples of it.
- **Chunks**: a range longer than Prometheus's 11,000 points per series is split
  into several ``query_range`` calls.
- **Retries**: connection errors, 429 and 5xx are retried with exponential backoff.
- **Gaps** stay gaps: an interval with a missing sample on either side produces no row.
- Counters become increases with :mod:`pipelines.sources.counters` (resets give
  no negative values); the row at ``t`` covers ``(t - step, t]``.
"""

from __future__ import annotations

import logging
import math
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

import httpx
import numpy as np
import pandas as pd

from forecasting.errors import SourceError
from forecasting.redact import redact
from forecasting.schemas import NODE_METRICS, SEGMENT_ACCESS
from forecasting.settings import Settings
from pipelines.sources.counters import series_increases
from pipelines.sources.postgres import _default_region

logger = logging.getLogger(__name__)

#: Prometheus refuses query_range answers of more than this many points per series.
MAX_POINTS = 11_000
RETRIES = 4
BACKOFF_S = 0.5

Kind = Literal["counter", "gauge"]

#: dataset -> input name -> (kind, PromQL). ``{sel}`` is the label selector; every query
#: must keep the node label (default ``server``) and, for segments, ``segment``.
DEFAULT_MAPPING: dict[str, dict[str, tuple[Kind, str]]] = {
    "node_metrics": {
        "xacts": (
            "counter",
            "sum by (server) (pg_stat_database_xact_commit{sel}"
            " + pg_stat_database_xact_rollback{sel})",
        ),
        "fetched": ("counter", "sum by (server) (pg_stat_database_tup_fetched{sel})"),
        "written": (
            "counter",
            "sum by (server) (pg_stat_database_tup_inserted{sel}"
            " + pg_stat_database_tup_updated{sel} + pg_stat_database_tup_deleted{sel})",
        ),
        "active_backends": ("gauge", "max by (server) (pg_replicast_server_active_backends{sel})"),
        "max_connections": ("gauge", "max by (server) (pg_replicast_server_max_connections{sel})"),
        "in_recovery": ("gauge", "max by (server) (pg_replicast_server_in_recovery{sel})"),
        "disk_used_bytes": ("gauge", "sum by (server) (pg_database_size_bytes{sel})"),
        "repl_lag_s": (
            "gauge",
            "max by (server) (pg_replicast_replication_replay_lag_seconds{sel})"
            " or max by (server) (pg_replicast_server_own_lag_seconds{sel})",
        ),
        "repl_sent_bytes": (
            "counter",
            "sum by (server) (pg_replicast_replication_sent_bytes{sel})"
            " or max by (server) (pg_replicast_server_wal_bytes{sel}"
            " * pg_replicast_server_in_recovery{sel})",
        ),
    },
    "segment_access": {
        "reads": (
            "counter",
            "sum by (server, segment) (pg_replicast_table_seq_tup_read{sel}"
            " + pg_replicast_table_idx_tup_fetch{sel})",
        ),
        "writes": (
            "counter",
            "sum by (server, segment) (pg_replicast_table_n_tup_ins{sel}"
            " + pg_replicast_table_n_tup_upd{sel} + pg_replicast_table_n_tup_del{sel})",
        ),
        "size_bytes": ("gauge", "max by (server, segment) (pg_replicast_table_size_bytes{sel})"),
        "n_live_tup": ("gauge", "max by (server, segment) (pg_replicast_table_n_live_tup{sel})"),
        "n_dead_tup": ("gauge", "max by (server, segment) (pg_replicast_table_n_dead_tup{sel})"),
    },
}


@dataclass(frozen=True)
class PromTarget:
    """A Prometheus server and how its series map onto fleet names."""

    base_url: str
    display: str
    cluster: str
    region: str
    node: str | None
    node_label: str
    selector: str
    vcpus: float | None
    start: pd.Timestamp
    end: pd.Timestamp
    step_s: float | None
    mapping: dict[str, dict[str, tuple[Kind, str]]]


def parse_target(uri: str, settings: Settings, *, now: pd.Timestamp | None = None) -> PromTarget:
    """Read a ``prometheus://host:port[/path]?...`` URI.

    Query parameters: ``cluster``, ``region``, ``node`` (name for a single server),
    ``node_label`` (default ``server``), ``selector`` (PromQL label matchers),
    ``vcpus``, ``range`` (default ``1h``) or ``start``/``end`` (ISO times), ``step``
    (default: the dataset interval), ``mapping`` (TOML overriding inputs).

    Raises:
        SourceError: a malformed parameter or an unreadable mapping file.
    """
    parts = urlsplit(uri)
    scheme = "https" if parts.scheme == "prometheus+https" else "http"
    if not parts.hostname:
        raise SourceError(f"{redact(uri)!r}: no host; write prometheus://host:9090")
    params = dict(parse_qsl(parts.query))
    base_url = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    display = f"{parts.scheme}://{parts.hostname}:{parts.port or 9090}{parts.path}"
    cluster = params.get("cluster") or parts.hostname
    try:
        now = now or pd.Timestamp.now(tz="UTC")
        end = _timestamp(params["end"]) if "end" in params else now
        start = (
            _timestamp(params["start"])
            if "start" in params
            else end - pd.Timedelta(params.get("range", "1h"))
        )
        step_s = pd.Timedelta(params["step"]).total_seconds() if "step" in params else None
        vcpus = float(params["vcpus"]) if "vcpus" in params else None
    except (ValueError, KeyError) as exc:
        raise SourceError(
            f"{display}: bad query parameter ({exc}); write e.g. range=6h&step=5m or "
            "start=2025-01-01T00:00Z&end=2025-01-02T00:00Z"
        ) from exc
    if start >= end:
        raise SourceError(f"{display}: start {start} is not before end {end}")
    if step_s is not None and step_s <= 0:
        raise SourceError(f"{display}: step must be positive")
    return PromTarget(
        base_url=base_url,
        display=display,
        cluster=cluster,
        region=params.get("region") or _default_region(cluster, settings),
        node=params.get("node"),
        node_label=params.get("node_label", "server"),
        selector=params.get("selector", ""),
        vcpus=vcpus,
        start=start,
        end=end,
        step_s=step_s,
        mapping=_mapping(params.get("mapping"), display),
    )


def _timestamp(text: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text.strip().replace(" ", "+"))  # an unescaped '+' arrives as ' '

    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _mapping(path: str | None, display: str) -> dict[str, dict[str, tuple[Kind, str]]]:
    mapping = {ds: dict(inputs) for ds, inputs in DEFAULT_MAPPING.items()}
    if not path:
        return mapping
    try:
        overrides = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SourceError(f"{display}: cannot read mapping file {path}: {exc}") from exc
    for dataset, inputs in overrides.items():
        if dataset not in mapping or not isinstance(inputs, dict):
            raise SourceError(
                f"{path}: unknown table [{dataset}]; use [node_metrics] or [segment_access]"
            )
        for name, query in inputs.items():
            if name not in mapping[dataset]:
                raise SourceError(
                    f"{path}: [{dataset}] has no input {name!r}; known: {sorted(mapping[dataset])}"
                )
            mapping[dataset][name] = (mapping[dataset][name][0], str(query))
    return mapping


def aligned_range(
    start: pd.Timestamp, end: pd.Timestamp, step_s: float
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Snap ``start`` up and ``end`` down to multiples of ``step_s`` since the epoch."""
    first = math.ceil(start.timestamp() / step_s) * step_s
    last = math.floor(end.timestamp() / step_s) * step_s
    return pd.Timestamp(first, unit="s", tz="UTC"), pd.Timestamp(last, unit="s", tz="UTC")


def chunks(
    start: pd.Timestamp, end: pd.Timestamp, step_s: float, max_points: int = MAX_POINTS
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Split ``[start, end]`` (aligned) into ranges of at most ``max_points`` steps each."""
    span = pd.Timedelta(seconds=step_s * (max_points - 1))
    step = pd.Timedelta(seconds=step_s)
    out = []
    lo = start
    while lo <= end:
        hi = min(lo + span, end)
        out.append((lo, hi))
        lo = hi + step
    return out


class PromClient:
    """A small ``query_range`` client with retries and one-line errors."""

    def __init__(self, target: PromTarget, *, timeout_s: float = 30.0) -> None:
        self.target = target
        self._http = httpx.Client(base_url=target.base_url, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PromClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def query_range(
        self, name: str, promql: str, start: pd.Timestamp, end: pd.Timestamp, step_s: float
    ) -> list[dict]:
        """All series of ``promql`` over ``[start, end]``, chunked; ``name`` is for messages."""
        results: dict[tuple, dict] = {}
        for lo, hi in chunks(start, end, step_s):
            data = self._post(
                name,
                {
                    "query": promql,
                    "start": f"{lo.timestamp():.3f}",
                    "end": f"{hi.timestamp():.3f}",
                    "step": f"{step_s:g}",
                },
            )
            for series in data.get("result", []):
                key = tuple(sorted(series["metric"].items()))
                results.setdefault(key, {"metric": series["metric"], "values": []})
                results[key]["values"].extend(series.get("values", []))
        return list(results.values())

    def _post(self, name: str, form: dict[str, str]) -> dict:
        where = f"{self.target.display}: input {name!r}"
        last: str = ""
        for attempt in range(RETRIES):
            try:
                response = self._http.post("/api/v1/query_range", data=form)
            except httpx.TransportError as exc:
                last = f"unreachable ({type(exc).__name__}: {exc})"
            else:
                if response.status_code in (400, 422):
                    raise SourceError(
                        f"{where}: Prometheus rejected the query ({_error(response)}); "
                        "fix the PromQL in the mapping"
                    )
                if response.status_code == 200:
                    body = response.json()
                    if body.get("status") != "success":
                        raise SourceError(f"{where}: query failed ({body.get('error')})")
                    return body["data"]
                if response.status_code not in (429,) and response.status_code < 500:
                    raise SourceError(
                        f"{where}: HTTP {response.status_code} ({_error(response)}); "
                        "check the URL (and a proxy path) of Prometheus"
                    )
                last = f"HTTP {response.status_code} ({_error(response)})"
            if attempt < RETRIES - 1:
                delay = BACKOFF_S * 2**attempt
                logger.warning("%s: %s; retrying in %.1f s", where, last, delay)
                time.sleep(delay)
        raise SourceError(
            f"{self.target.display}: {last} after {RETRIES} attempts; "
            "check host and port and that Prometheus is running"
        )


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text[:200]))
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase


def _frame(
    series: list[dict], labels: list[str], grid: pd.DatetimeIndex, kind: Kind
) -> pd.DataFrame:
    """Long frame ``labels + ts + value`` on the full step grid (missing samples = nan)."""
    frames = []
    for item in series:
        values = item["values"]
        ts = pd.to_datetime([float(t) for t, _ in values], unit="s", utc=True).round("ms")
        raw = pd.Series([float(v) for _, v in values], index=ts)
        raw = raw[~raw.index.duplicated(keep="last")].reindex(grid)
        data = series_increases(raw.to_numpy()) if kind == "counter" else raw.to_numpy()
        frame = pd.DataFrame({"ts": grid, "value": data})
        for label in labels:
            frame[label] = item["metric"].get(label, "")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*labels, "ts", "value"])
    return pd.concat(frames, ignore_index=True)


def _inputs(
    client: PromClient, dataset: str, labels: list[str], step_s: float
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    target = client.target
    start, end = aligned_range(target.start, target.end, step_s)
    if start > end:
        raise SourceError(
            f"{target.display}: range {target.start}..{target.end} holds no full step of "
            f"{step_s:g} s; widen range= or shorten step="
        )
    grid = pd.date_range(start, end, freq=pd.Timedelta(seconds=step_s))
    merged: pd.DataFrame | None = None
    sel = "{" + target.selector + "}" if target.selector else ""
    for name, (kind, promql) in target.mapping[dataset].items():
        query = promql.replace("{sel}", sel)
        series = client.query_range(name, query, start, end, step_s)
        if not series:
            logger.warning(
                "%s: input %r of %s matched no series, so no %s rows; does the exporter run "
                "with --extend.query-path=pipelines/sources/exporter_queries.yaml (current)?",
                target.display,
                name,
                dataset,
                dataset,
            )
        frame = _frame(series, labels, grid, kind)
        frame = frame.rename(columns={"value": name})
        merged = frame if merged is None else merged.merge(frame, on=[*labels, "ts"], how="outer")
    assert merged is not None
    return merged, grid


def node_metrics(client: PromClient, step_s: float) -> pd.DataFrame:
    """``node_metrics`` rows per node and step (rows with any missing input are gaps)."""
    target = client.target
    label = target.node_label
    raw, _ = _inputs(client, "node_metrics", [label], step_s)
    raw = raw.dropna()
    if raw.empty:
        return pd.DataFrame(columns=NODE_METRICS.names)
    share = raw["written"] / (raw["fetched"] + raw["written"])
    share = share.where(raw["fetched"] + raw["written"] > 0, 0.0)
    qps = raw["xacts"] / step_s
    divisor = target.vcpus if target.vcpus else raw["max_connections"].clip(lower=1.0)
    nodes = raw[label].nunique()
    if target.node and nodes > 1:
        raise SourceError(
            f"{target.display}: node={target.node} given but {nodes} servers answer; "
            f"narrow selector= to one server or drop node="
        )
    return pd.DataFrame(
        {
            "ts": raw["ts"],
            "cluster": target.cluster,
            "region": target.region,
            "node": target.node or raw[label],
            "role": np.where(raw["in_recovery"] > 0, "replica", "primary"),
            "cpu_util": (raw["active_backends"] / divisor).clip(0.0, 1.0),
            "qps_read": qps * (1.0 - share),
            "qps_write": qps * share,
            "disk_used_bytes": raw["disk_used_bytes"],
            "repl_lag_s": raw["repl_lag_s"].clip(lower=0.0),
            "repl_bytes": raw["repl_sent_bytes"],
            "net_rtt_ms": 0.0,  # not observable through Prometheus
        }
    ).reset_index(drop=True)


def segment_access(client: PromClient, step_s: float) -> pd.DataFrame:
    """``segment_access`` rows per segment and step (gaps give no row)."""
    target = client.target
    raw, _ = _inputs(client, "segment_access", [target.node_label, "segment"], step_s)
    raw = raw.dropna()
    on_disk = raw["n_live_tup"] + raw["n_dead_tup"]
    width = (raw["size_bytes"] / on_disk).where(on_disk > 0, 0.0)
    return pd.DataFrame(
        {
            "ts": raw["ts"],
            "cluster": target.cluster,
            "segment": raw["segment"],
            "reads": raw["reads"],
            "writes": raw["writes"],
            "bytes_changed": raw["writes"] * width,
            "size_bytes": raw["size_bytes"],
        }
    ).reset_index(drop=True)


def snapshot(
    uri: str, settings: Settings, *, now: pd.Timestamp | None = None
) -> dict[str, pd.DataFrame]:
    """Read ``node_metrics`` and ``segment_access`` over the URI's range.

    Raises:
        SourceError: unreachable Prometheus, a rejected query, or no PostgreSQL series at all.
    """
    target = parse_target(uri, settings, now=now)
    with PromClient(target) as client:
        node_step = target.step_s or pd.Timedelta(NODE_METRICS.freq).total_seconds()
        seg_step = target.step_s or pd.Timedelta(SEGMENT_ACCESS.freq).total_seconds()
        nodes = node_metrics(client, node_step)
        if nodes.empty:
            raise SourceError(
                f"{target.display}: no PostgreSQL exporter series with complete data in "
                f"{target.start:%Y-%m-%d %H:%M}..{target.end:%H:%M}Z; check the exporter is "
                "scraped, runs with --extend.query-path=pipelines/sources/exporter_queries.yaml, "
                "and that selector= matches it"
            )
        segments = segment_access(client, seg_step)
    return {"node_metrics": nodes, "segment_access": segments}
