"""Dataset contracts: columns, types, ranges and keys of every dataset in the lake.

Ingest validates against these; the lake dedupes on ``key + ("ts",)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["str", "float", "int", "ts"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    required: bool = True
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Schema:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    freq: str | None = None
    time_col: str = "ts"
    description: str = ""
    extra_allowed: bool = field(default=False)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def dedupe_key(self) -> list[str]:
        return [*self.key, self.time_col]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


NODE_METRICS = Schema(
    name="node_metrics",
    freq="5min",
    key=("cluster", "region", "node"),
    description="per-node load and replication metrics, one row per interval",
    columns=(
        Column("ts", "ts"),
        Column("cluster", "str"),
        Column("region", "str"),
        Column("node", "str"),
        Column("role", "str", choices=("primary", "replica")),
        Column("cpu_util", "float", min=0.0, max=1.0),
        Column("qps_read", "float", min=0.0),
        Column("qps_write", "float", min=0.0),
        Column("disk_used_bytes", "float", min=0.0),
        Column("repl_lag_s", "float", min=0.0),
        Column("repl_bytes", "float", min=0.0),
        Column("net_rtt_ms", "float", min=0.0),
    ),
)

SEGMENT_ACCESS = Schema(
    name="segment_access",
    freq="15min",
    key=("cluster", "segment"),
    description="per-segment reads, writes and changed bytes, one row per interval",
    columns=(
        Column("ts", "ts"),
        Column("cluster", "str"),
        Column("segment", "str"),
        Column("reads", "float", min=0.0),
        Column("writes", "float", min=0.0),
        Column("bytes_changed", "float", min=0.0),
        Column("size_bytes", "float", min=0.0),
    ),
)

QUARANTINE = Schema(
    name="quarantine",
    key=("source", "row"),
    time_col="ts",
    description="every rejected input row, with its source and the reason",
    columns=(
        Column("ts", "ts"),  # the row's own timestamp if it parses, else the Unix epoch
        Column("dataset", "str"),
        Column("source", "str"),
        Column("row", "int"),
        Column("reason", "str"),
        Column("raw", "str"),  # the row as JSON
        Column("quarantined_at", "ts", required=False),  # when it was first quarantined
    ),
)

FORECASTS = Schema(
    name="forecasts",
    key=("target", "series_id", "origin", "step", "model_version"),
    description="load forecasts: one row per series, target time and model version",
    extra_allowed=True,  # one float column per quantile: q0.5, q0.9, ...
    columns=(
        Column("ts", "ts"),
        Column("target", "str"),
        Column("series_id", "str"),
        Column("origin", "ts"),
        Column("step", "int", min=1),
        Column("model", "str"),
        Column("model_version", "str"),
    ),
)

#: Input datasets that ``ingest`` accepts, by name.
INPUT_SCHEMAS: dict[str, Schema] = {s.name: s for s in (NODE_METRICS, SEGMENT_ACCESS)}

#: Key columns of the output datasets (lake writes dedupe on key + ts).
OUTPUT_KEYS: dict[str, tuple[str, ...]] = {
    "quarantine": QUARANTINE.key,
    "forecasts": FORECASTS.key,
    "segment_scores": ("cluster", "segment", "model_version"),
    "sizing_plans": ("cluster", "region", "origin", "step"),
    "priority_queue": ("cluster", "replica", "segment", "origin"),
    "sync_runs": ("run_id",),
    "job_runs": ("job", "run_id"),
}


def dedupe_key(dataset: str) -> list[str]:
    """The columns that identify a row of ``dataset`` (always ending with ``ts``)."""
    if dataset in INPUT_SCHEMAS:
        return INPUT_SCHEMAS[dataset].dedupe_key
    if dataset in OUTPUT_KEYS:
        return [*OUTPUT_KEYS[dataset], "ts"]
    return ["ts"]
