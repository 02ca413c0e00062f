"""Turn a :class:`~serving.http.schemas.ForecastRequest` into a response payload, without pandas.

This is the hot path of the service: cached NumPy history in, the model's
``forecast_arrays`` fast path, a plain dict out (serialised by orjson).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from forecasting.errors import DataValidationError
from serving.http.schemas import AdhocHistory, ForecastRequest
from serving.http.services.model_cache import ServingModel

#: Longest grid an ad-hoc history may span (in model steps), gaps included.
MAX_ADHOC_STEPS = 20_000


def _ns(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000


def adhoc_arrays(history: AdhocHistory, step_ns: int) -> tuple[np.datetime64, np.ndarray]:
    """Place an ad-hoc history on the model's regular grid (missing steps become NaN).

    Returns:
        The last timestamp (UTC, naive ``datetime64[ns]``) and the values, oldest first.

    Raises:
        DataValidationError: timestamps not increasing or not on the model's grid.
    """
    stamps = np.fromiter((_ns(t) for t in history.ts), dtype=np.int64, count=len(history.ts))
    offsets = stamps - stamps[0]
    if len(stamps) > 1 and np.any(np.diff(stamps) <= 0):
        bad = int(np.argmax(np.diff(stamps) <= 0)) + 1
        raise DataValidationError(
            f"history.ts[{bad}]: timestamps must increase strictly; sort them and drop duplicates"
        )
    if np.any(offsets % step_ns):
        bad = int(np.argmax(offsets % step_ns != 0))
        raise DataValidationError(
            f"history.ts[{bad}]: not on the model's grid of {step_ns // 1_000_000_000} s steps "
            f"from history.ts[0]; aggregate to that resolution first"
        )
    positions = offsets // step_ns
    size = int(positions[-1]) + 1
    if size > MAX_ADHOC_STEPS:
        raise DataValidationError(
            f"history.ts: spans {size} steps (gaps included); send at most {MAX_ADHOC_STEPS}"
        )
    values = np.full(size, np.nan)
    values[positions] = np.array([np.nan if v is None else v for v in history.y], dtype=float)
    return np.datetime64(int(stamps[-1]), "ns"), values


def _series_payload(series_id: str, out: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        "series_id": series_id,
        "ts": out["ts"],
        "step": out["step"],
        "values": {k: v for k, v in out.items() if k not in ("ts", "step")},
    }


def forecast_payload(model: ServingModel, request: ForecastRequest) -> dict[str, Any]:
    """Forecast every series of ``request`` with ``model`` (one version for all of them).

    Raises:
        UnknownKeyError: an unknown target or series (404).
        DataValidationError: input the model cannot use (422).
    """
    forecaster = model.forecaster
    horizon = request.horizon if request.horizon is not None else forecaster.horizon
    if horizon > forecaster.horizon:
        raise DataValidationError(
            f"horizon: {horizon} exceeds the trained horizon {forecaster.horizon} of "
            f"{model.name} version {model.version}"
        )
    forecasts = []
    if request.history is not None:
        ts_last, values = adhoc_arrays(request.history, model.step_ns)
        out = model.forecast(
            request.target, request.history.series_id, ts_last, values, horizon, request.quantiles
        )
        forecasts.append(_series_payload(request.history.series_id, out))
    else:
        for series_id in request.series_ids or ():
            out = model.known_forecast(request.target, series_id, horizon, request.quantiles)
            forecasts.append(_series_payload(series_id, out))
    return {
        "model": model.name,
        "model_version": model.version,
        "target": request.target,
        "horizon": horizon,
        "forecasts": forecasts,
    }
