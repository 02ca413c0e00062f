"""Request and response models of the HTTP API (with examples for ``/docs``).

Every request field has bounds, so bad input is a 422 that names the field and
the reason, never a 500.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)

from forecasting.settings import Target
from forecasting.sync_endpoints import ENDPOINT_NAME
from replication.request import check_segment_pattern

#: Request numbers and flags are strict: ``true`` is not 1 and ``"5"`` is not 5.
SFloat = Annotated[float, Strict()]
SInt = Annotated[int, Strict()]
SBool = Annotated[bool, Strict()]


_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)$")


def _iso_text(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-11-30T20:00:00Z")
    return value


#: Timestamps a request may carry: inside pandas' ``datetime64[ns]`` range with room to spare.
TS_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TS_MAX = datetime(2200, 1, 1, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not TS_MIN <= aware < TS_MAX:
        raise ValueError(
            f"must lie between {TS_MIN:%Y-%m-%d} and {TS_MAX:%Y-%m-%d} (UTC), "
            f"got {value.isoformat()}"
        )
    return value


#: An RFC 3339 timestamp with offset (numbers, dates and naive times are refused),
#: from 1970 up to 2200.
IsoDatetime = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_in_range)]
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
_SERIES = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$"


class _Strict(BaseModel):
    """Request models: unknown fields, Infinity and NaN are refused (422 naming the field)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# -- errors ---------------------------------------------------------------------
class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description="where: body/query/path and the field")
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: what went wrong, naming the field and the reason."""

    detail: str | list[ErrorDetail]
    error: str = Field(description="the error class, e.g. UnknownKeyError")
    request_id: str | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "unknown series 'orders/mars' for target 'qps_total'; known series: "
                    "['orders/eu-west', 'orders/us-east']",
                    "error": "UnknownKeyError",
                }
            ]
        }
    )


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` entries for ``codes``, all with the :class:`ErrorBody` shape."""
    described = {
        401: "missing or wrong bearer token",
        404: "unknown cluster, series, node type or run",
        409: "conflicts with an active run",
        413: "request body larger than 1 MB",
        422: "invalid input: the body names the field and the reason",
        503: "no champion model loaded (or the registry is unreachable)",
    }
    return {code: {"model": ErrorBody, "description": described[code]} for code in codes}


# -- health ---------------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Ready (200) when a model can serve; 503 only when none can."""

    ready: bool
    reason: str = Field(description="why the service is (not) ready")
    degraded: str | None = Field(
        default=None,
        description="what is wrong while the service still serves (registry unreachable "
        "since when, a refused champion, a failed lake read), else null",
    )
    model: str | None = None
    model_version: str | None = None
    registry_up: bool = Field(description="the last refresh reached the model registry")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ready": True,
                    "reason": "serving replicast-load version 3",
                    "degraded": None,
                    "model": "replicast-load",
                    "model_version": "3",
                    "registry_up": True,
                },
                {
                    "ready": True,
                    "reason": "serving replicast-load version 3",
                    "degraded": "registry unreachable since 2026-12-02T05:10:00+00:00 "
                    "(ModelNotFoundError: ...); still serving replicast-load version 3",
                    "model": "replicast-load",
                    "model_version": "3",
                    "registry_up": False,
                },
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
    ts: list[IsoDatetime] = Field(
        min_length=1,
        max_length=5000,
        description="RFC 3339 timestamps with offset, increasing, on the model's grid (hourly)",
    )
    y: list[SFloat | None] = Field(
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
    horizon: SInt | None = Field(
        default=None, ge=1, le=1000, description="steps ahead; default: the trained horizon"
    )
    quantiles: list[SFloat] | None = Field(
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
    horizon: SInt | None = Field(
        default=None, ge=1, le=1000, description="steps ahead; default: the trained horizon"
    )
    risk: SFloat | None = Field(
        default=None,
        ge=0.01,
        le=0.999,
        description="forecast quantile to size on (default settings sizing.risk_quantile)",
    )
    target_util: SFloat | None = Field(
        default=None,
        ge=0.05,
        le=1,
        description="utilisation to plan for, 0.05..1 (default from settings)",
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
def _endpoint_name(value: str) -> str:
    if not re.match(ENDPOINT_NAME, value):
        raise ValueError(
            f"{value[:100]!r} is not an endpoint name: sync runs name endpoints of the "
            "settings (sync.endpoints), never paths or hosts"
        )
    return value


#: An endpoint name of settings ``sync.endpoints`` (refused with a clear reason otherwise).
EndpointName = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"pattern": ENDPOINT_NAME}),
    AfterValidator(_endpoint_name),
]


class SyncRunRequest(_Strict):
    """What to replicate between two named endpoints, and under which budgets."""

    source: EndpointName = Field(description="endpoint to read from (role source or both)")
    target: EndpointName = Field(description="endpoint to write to (role target or both)")
    transport: Literal["delta", "rsync"] = Field(
        default="delta", description="rsync for a host:path target"
    )
    order: Literal["priority", "alpha"] = "priority"
    cluster: str | None = Field(default=None, pattern=_NAME)
    replica: str | None = Field(
        default=None,
        pattern=_NAME,
        description="priority rows of this replica region (default: the target's link)",
    )
    segment_pattern: Annotated[str, AfterValidator(check_segment_pattern)] | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="glob of segments under the source, relative: no '..', no absolute path",
    )
    budget_bytes: SInt | None = Field(default=None, ge=1, le=2**62)
    budget_seconds: SFloat | None = Field(default=None, gt=0, le=7 * 86400)
    bwlimit: SFloat | None = Field(default=None, gt=0, le=1e12, description="bytes/s")
    checksum: SBool = False
    delete: SBool = Field(
        default=False,
        description="remove target files absent from the source (target needs allow_delete)",
    )
    dry_run: SBool = False
    whole_file: SBool | None = None
    concurrency: SInt | None = Field(default=None, ge=1, le=64)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "primary",
                    "target": "cn-north",
                    "transport": "rsync",
                    "cluster": "orders",
                    "segment_pattern": "orders-2026-*",
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
    source: str = Field(description="source endpoint name")
    target: str = Field(description="target endpoint name")
    segment_pattern: str | None
    transport: str
    order: str
    created: datetime
    finished: datetime | None
    executor_run_id: str | None
    worker_pid: int | None = Field(
        default=None, description="pid of the server worker process that executes the run"
    )
    progress: SyncProgressView | None
    result: SyncResultView | None
    errors: list[str]
    warnings: list[str]
