"""Request and response models of the HTTP API (with examples for ``/docs``).

Every request field has bounds, so bad input is a 422 that names the field and
the reason, never a 500.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from forecasting.settings import Target

SeriesId = str
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
_SERIES = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- health ---------------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    reason: str = Field(description="why the service is (not) ready")
    model: str | None = None
    model_version: str | None = None
    registry_up: bool = Field(description="the last refresh reached the model registry")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ready": True,
                    "reason": "serving replicast-load version 3",
                    "model": "replicast-load",
                    "model_version": "3",
                    "registry_up": True,
                }
            ]
        }
    )


class ReloadResult(BaseModel):
    outcome: Literal["swapped", "unchanged"]
    version: str | None
    previous_version: str | None


# -- forecast -------------------------------------------------------------------
class AdhocHistory(_Strict):
    """Recent history of a series the service does not know: one value per model step."""

    series_id: str = Field(default="adhoc", pattern=_SERIES, description="label of the series")
    ts: list[datetime] = Field(
        min_length=1,
        max_length=5000,
        description="timestamps (UTC; naive means UTC), increasing, on the model's grid (hourly)",
    )
    y: list[float | None] = Field(
        min_length=1,
        max_length=5000,
        description="values, one per timestamp; null marks a missing interval",
    )

    @model_validator(mode="after")
    def _same_length(self) -> AdhocHistory:
        if len(self.ts) != len(self.y):
            raise ValueError(
                f"history.ts has {len(self.ts)} timestamps but history.y has {len(self.y)} "
                "values; send one value per timestamp"
            )
        return self


class ForecastRequest(_Strict):
    """Forecast known series (``series_ids``) or one ad-hoc series (``history``)."""

    target: Target = Field(default="qps_total", description="which load series")
    series_ids: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description='known series keys "<cluster>/<region>" (history comes from the lake)',
    )
    history: AdhocHistory | None = Field(
        default=None, description="recent history of an ad-hoc series (instead of series_ids)"
    )
    horizon: int | None = Field(
        default=None, ge=1, le=1000, description="steps ahead; default: the trained horizon"
    )
    quantiles: list[float] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="levels (a subset of the trained ones); default: all trained levels",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "target": "qps_total",
                    "series_ids": ["orders/us-east"],
                    "horizon": 24,
                    "quantiles": [0.5, 0.9],
                }
            ]
        },
    )

    @model_validator(mode="after")
    def _one_source(self) -> ForecastRequest:
        if (self.series_ids is None) == (self.history is None):
            raise ValueError("send exactly one of series_ids (known series) or history (ad hoc)")
        if self.series_ids is not None:
            bad = [s for s in self.series_ids if not s or len(s) > 200]
            if bad:
                raise ValueError(f"series_ids: {bad[:3]} are not series keys (1..200 chars)")
        if self.quantiles is not None:
            bad_q = [q for q in self.quantiles if not 0 < q < 1]
            if bad_q:
                raise ValueError(f"quantiles: {bad_q} must lie strictly between 0 and 1")
        return self


class SeriesForecast(BaseModel):
    series_id: str
    ts: list[datetime] = Field(description="target times (UTC)")
    step: list[int]
    values: dict[str, list[float | None]] = Field(
        description='one list per quantile, keyed like the lake columns ("q0.5", "q0.9")'
    )


class ForecastResponse(BaseModel):
    model: str
    model_version: str = Field(description="the registry version that made every forecast here")
    target: str
    horizon: int
    forecasts: list[SeriesForecast]

    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "model": "replicast-load",
                    "model_version": "3",
                    "target": "qps_total",
                    "horizon": 2,
                    "forecasts": [
                        {
                            "series_id": "orders/us-east",
                            "ts": ["2026-11-30T20:00:00+00:00", "2026-11-30T21:00:00+00:00"],
                            "step": [1, 2],
                            "values": {"q0.5": [5120.0, 4980.5], "q0.9": [5800.2, 5650.0]},
                        }
                    ],
                }
            ]
        },
    )


# -- sizing ---------------------------------------------------------------------
class SizingRequest(_Strict):
    """Plan nodes per cluster and region from the champion's forecasts."""

    clusters: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="clusters to plan (default: every cluster of the fleet)",
    )
    horizon: int | None = Field(
        default=None, ge=1, le=1000, description="steps ahead; default: the trained horizon"
    )
    risk: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="forecast quantile to size on (default settings sizing.risk_quantile)",
    )
    target_util: float | None = Field(
        default=None, gt=0, le=1, description="utilisation to plan for (default from settings)"
    )
    node_types: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="node types allowed (default: every type of the fleet)",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "clusters": ["orders"],
                    "horizon": 24,
                    "risk": 0.9,
                    "target_util": 0.7,
                    "node_types": ["db.medium", "db.large"],
                }
            ]
        },
    )


class PlanRow(BaseModel):
    ts: datetime
    cluster: str
    region: str
    step: int
    node_type: str
    nodes: int
    capacity_qps: float
    forecast_q: float | None
    quantile: float
    cost_per_hour: float
    reason: str
    link_saturated: bool


class SizingResponse(BaseModel):
    model: str
    model_version: str
    origin: datetime = Field(description="the last observed hour the plan starts after")
    risk: float
    target_util: float
    total_cost: float = Field(description="sum of cost_per_hour over every row")
    rows: list[PlanRow]


# -- priorities -----------------------------------------------------------------
class PriorityItem(BaseModel):
    rank: int = Field(description="1 = copy first")
    segment: str
    replica: str
    weight: float | None = Field(description="predicted read rate")
    cost_s: float | None = Field(description="seconds to send over the link")
    score: float | None
    waited_s: float | None


class PrioritiesResponse(BaseModel):
    cluster: str
    replica: str | None
    origin: datetime | None = Field(description="when the queue was computed (null: never)")
    items: list[PriorityItem]


# -- sync runs ------------------------------------------------------------------
class SyncRunRequest(_Strict):
    """What to replicate, and under which budgets."""

    source: str = Field(min_length=1, max_length=4096, description="local source root")
    target: str = Field(
        min_length=1, max_length=4096, description="local directory, or host:path with rsync"
    )
    transport: Literal["delta", "rsync"] = "delta"
    order: Literal["priority", "alpha"] = "priority"
    cluster: str | None = Field(default=None, pattern=_NAME)
    replica: str | None = Field(default=None, pattern=_NAME)
    segment_pattern: str | None = Field(default=None, min_length=1, max_length=200)
    budget_bytes: int | None = Field(default=None, ge=1, le=2**62)
    budget_seconds: float | None = Field(default=None, gt=0, le=7 * 86400)
    bwlimit: float | None = Field(default=None, gt=0, le=1e12, description="bytes/s")
    checksum: bool = False
    delete: bool = Field(default=False, description="remove target files absent from source")
    dry_run: bool = False
    whole_file: bool | None = None
    concurrency: int | None = Field(default=None, ge=1, le=64)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "/srv/orders/segments",
                    "target": "/replicas/cn-north/orders",
                    "cluster": "orders",
                    "replica": "cn-north",
                    "budget_seconds": 600,
                    "bwlimit": 40000000,
                }
            ]
        },
    )


class SyncProgressView(BaseModel):
    bytes_total: int
    bytes_done: int
    bytes_sent: int
    files_total: int
    files_done: int
    segments_total: int
    segments_done: int
    current_segments: list[str]
    elapsed_s: float


class SyncResultView(BaseModel):
    bytes_read: int
    bytes_sent: int
    bytes_written: int
    files_copied: int
    files_skipped: int
    segments_copied: int
    segments_skipped: int
    segments_failed: int
    segments_pending: int
    seconds: float
    stop_reason: str | None


class SyncRunStatus(BaseModel):
    run_id: str
    state: str = Field(
        description="queued, running, cancelling, then finished, partial, failed, "
        "cancelled or dry-run"
    )
    source: str
    target: str
    transport: str
    order: str
    created: datetime
    finished: datetime | None
    executor_run_id: str | None
    progress: SyncProgressView | None
    result: SyncResultView | None
    errors: list[str]
    warnings: list[str]
