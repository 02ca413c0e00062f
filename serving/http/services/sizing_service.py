"""``POST /v1/sizing``: forecast each cluster/region with the champion, then plan nodes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecasting.errors import DataValidationError, UnknownKeyError
from forecasting.settings import Fleet, Settings, SizingConfig
from forecasting.sizing import plan_series
from serving.http.schemas import SizingRequest
from serving.http.services.model_cache import ServingModel


def _forecast_frame(model: ServingModel, target: str, series_id: str, horizon: int) -> pd.DataFrame:
    history = model.series.get(target, series_id)
    out = model.known_forecast(target, series_id, horizon, None)
    frame = pd.DataFrame({k: np.array(v, copy=True) for k, v in out.items()})
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.tz_localize("UTC")
    frame["origin"] = pd.Timestamp(history.ts[-1]).tz_localize("UTC")
    return frame


def _fleet_for(fleet: Fleet, node_types: list[str] | None) -> Fleet:
    if node_types is None:
        return fleet
    chosen = [fleet.node_type(name) for name in dict.fromkeys(node_types)]
    return fleet.model_copy(update={"node_types": chosen})


def plan(model: ServingModel, settings: Settings, request: SizingRequest) -> dict[str, Any]:
    """Plan the requested clusters (all regions of each) with ``model``.

    Raises:
        UnknownKeyError: an unknown cluster, node type or series without history (404).
        DataValidationError: a horizon beyond the trained one (422).
    """
    fleet = _fleet_for(settings.fleet, request.node_types)
    sizing = SizingConfig(
        risk_quantile=request.risk or settings.sizing.risk_quantile,
        target_util=request.target_util or settings.sizing.target_util,
        redundancy=settings.sizing.redundancy,
        hold_hours=settings.sizing.hold_hours,
    )
    horizon = request.horizon or model.forecaster.horizon
    if horizon > model.forecaster.horizon:
        raise DataValidationError(
            f"horizon: {horizon} exceeds the trained horizon {model.forecaster.horizon}"
        )
    if "qps_total" not in model.forecaster.targets:
        raise UnknownKeyError(
            f"model version {model.version} does not forecast qps_total; sizing needs it"
        )
    clusters = [
        fleet.cluster(name) for name in (request.clusters or [c.name for c in fleet.clusters])
    ]
    plans = []
    for cluster in clusters:
        for region in cluster.regions:
            series_id = f"{cluster.name}/{region}"
            qps = _forecast_frame(model, "qps_total", series_id, horizon)
            repl = None
            if "repl_bytes" in model.forecaster.targets:
                try:
                    repl = _forecast_frame(model, "repl_bytes", series_id, horizon)
                except UnknownKeyError:
                    repl = None
            plans.append(
                plan_series(
                    qps,
                    cluster=cluster.name,
                    region=region,
                    fleet=fleet,
                    sizing=sizing,
                    repl_forecast=repl,
                )
            )
    rows = pd.concat(plans, ignore_index=True)
    forecast_q = rows["forecast_q"].astype(float)
    return {
        "model": model.name,
        "model_version": model.version,
        "origin": rows["origin"].min().to_pydatetime(),
        "risk": sizing.risk_quantile,
        "target_util": sizing.target_util,
        "total_cost": float(rows["cost_per_hour"].sum()),
        "rows": [
            {
                "ts": r.ts.to_pydatetime(),
                "cluster": r.cluster,
                "region": r.region,
                "step": int(r.step),
                "node_type": r.node_type,
                "nodes": int(r.nodes),
                "capacity_qps": float(r.capacity_qps),
                "forecast_q": None if not np.isfinite(fq) else float(fq),
                "quantile": float(r.quantile),
                "cost_per_hour": float(r.cost_per_hour),
                "reason": r.reason,
                "link_saturated": bool(r.link_saturated),
            }
            for r, fq in zip(rows.itertuples(index=False), forecast_q, strict=True)
        ],
    }
