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
