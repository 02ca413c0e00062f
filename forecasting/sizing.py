"""The sizing planner: load forecasts -> nodes of which type per cluster/region and hour.

For each cluster/region series and horizon step:

1. ``demand`` = the forecast quantile at the configured risk (``sizing.risk_quantile``;
   if that column is missing, the nearest higher quantile, else the highest one);
2. for every node type: ``load_nodes = ceil(demand / (qps_capacity * target_util))``,
   ``nodes = max(load_nodes + redundancy, region.min_nodes)``;
3. the node type is chosen once per series for the whole horizon: the one with the
   lowest total cost over the horizon (ties: fewer node-hours, then name);
4. hold: the plan never scales down until ``hold_hours`` steps after the last step
   that needed more (``nodes_t = max(raw nodes of steps t-hold .. t)``, where steps at
   or before the origin take ``current_nodes`` if given), so it does not flap;
5. link check: the ``repl_bytes`` forecast (bytes per hour at the same quantile) is
   compared with the region's link bandwidth; ``link_saturated`` flags steps above it.

Each row carries ``reason`` (binding quantile and constraint) and ``cost_per_hour``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from forecasting.errors import ConfigError, DataValidationError
from forecasting.forecaster import quantile_column
from forecasting.settings import Fleet, NodeType, SizingConfig

PLAN_COLUMNS = [
    "ts",
    "cluster",
    "region",
    "origin",
    "step",
    "node_type",
    "nodes",
    "capacity_qps",
    "forecast_q",
    "quantile",
    "cost_per_hour",
    "reason",
    "link_saturated",
]

_SECONDS_PER_STEP = 3600.0


def validate_sizing(fleet: Fleet, sizing: SizingConfig) -> None:
    """Refuse settings the planner cannot use, naming the field (models may be built unchecked)."""
    for i, node in enumerate(fleet.node_types):
        if not node.qps_capacity > 0:
            raise ConfigError(
                f"fleet.node_types[{i}] ({node.name}).qps_capacity must be > 0, "
                f"got {node.qps_capacity}"
            )
        if not node.hourly_cost > 0:
            raise ConfigError(
                f"fleet.node_types[{i}] ({node.name}).hourly_cost must be > 0, "
                f"got {node.hourly_cost}"
            )
    if not 0 < sizing.target_util <= 1:
        raise ConfigError(f"sizing.target_util must be in (0, 1], got {sizing.target_util}")
    if not 0 < sizing.risk_quantile < 1:
        raise ConfigError(f"sizing.risk_quantile must be in (0, 1), got {sizing.risk_quantile}")
    if sizing.redundancy < 0 or sizing.hold_hours < 0:
        raise ConfigError("sizing.redundancy and sizing.hold_hours must be >= 0")


def risk_column(columns: list[str], risk: float) -> tuple[str, float]:
    """The quantile column to size on: ``risk`` itself, else the nearest higher, else highest."""
    available = {}
    for col in columns:
        if col.startswith("q"):
            try:
                available[float(col[1:])] = col
            except ValueError:
                continue
    if not available:
        raise DataValidationError(
            f"forecasts: no quantile columns (q0.5, q0.99, ...) among {columns}"
        )
    if quantile_column(risk) in columns:
        return quantile_column(risk), risk
    higher = sorted(q for q in available if q >= risk)
    chosen = higher[0] if higher else max(available)
    return available[chosen], chosen


def nodes_needed(
    demand: NDArray[np.float64], node: NodeType, target_util: float
) -> NDArray[np.intp]:
    """``ceil(demand / (capacity * util))`` with demand clipped at 0 (NaN -> 0)."""
    usable = node.qps_capacity * target_util
    if not usable > 0:
        raise ConfigError(f"node type {node.name}: qps_capacity x target_util must be > 0")
    demand = np.nan_to_num(np.asarray(demand, dtype=float), nan=0.0)
    # a tiny tolerance keeps exact multiples (e.g. 2.0000000001) from adding a node
    return np.ceil(np.maximum(demand, 0.0) / usable - 1e-9).astype(int)


def hold(raw: NDArray[np.intp], hold_hours: int, current: int | None = None) -> NDArray[np.intp]:
    """Running max over the last ``hold_hours`` steps: scale down only after the hold."""
    raw = np.asarray(raw, dtype=int)
    padded = np.concatenate([np.full(hold_hours, -1 if current is None else current), raw])
    return np.array([padded[i : i + hold_hours + 1].max() for i in range(len(raw))], dtype=int)


def _choose_type(
    demand: NDArray[np.float64], fleet: Fleet, sizing: SizingConfig, min_nodes: int
) -> tuple[NodeType, NDArray[np.intp], NDArray[np.intp]]:
    best = None
    for node in fleet.node_types:
        load = nodes_needed(demand, node, sizing.target_util)
        nodes = np.maximum(load + sizing.redundancy, min_nodes)
        key = (float(nodes.sum() * node.hourly_cost), int(nodes.sum()), node.name)
        if best is None or key < best[0]:
            best = (key, node, load, nodes)
    assert best is not None  # Fleet requires >= 1 node type
    return best[1], best[2], best[3]


def plan_series(
    forecast: pd.DataFrame,
    *,
    cluster: str,
    region: str,
    fleet: Fleet,
    sizing: SizingConfig,
    repl_forecast: pd.DataFrame | None = None,
    current_nodes: int | None = None,
) -> pd.DataFrame:
    """Plan one cluster/region from its qps forecast (``ts, step, q...`` rows, one per step).

    Args:
        forecast: the ``qps_total`` forecast of this series (``origin`` optional).
        cluster: cluster name (must be in the fleet).
        region: region name (must be one of the cluster's regions).
        fleet: node types, regions (links, minimum nodes) and clusters.
        sizing: risk quantile, target utilisation, redundancy, hold period.
        repl_forecast: the ``repl_bytes`` forecast (bytes per hour) for the link check.
        current_nodes: nodes running now; the hold keeps them until ``hold_hours`` pass.

    Returns:
        Rows of :data:`PLAN_COLUMNS`, one per step.
    """
    validate_sizing(fleet, sizing)
    spec = fleet.cluster(cluster)
    if region not in spec.regions:
        raise DataValidationError(
            f"cluster {cluster!r} has no region {region!r}; its regions are {spec.regions}"
        )
    reg = fleet.region(region)
    if forecast.empty:
        raise DataValidationError(
            f"{cluster}/{region}: empty forecast; run `replicast forecast` first "
            "or check that the lake holds history for this series"
        )
    forecast = forecast.sort_values("step").reset_index(drop=True)
    col, q = risk_column(list(forecast.columns), sizing.risk_quantile)
    demand = forecast[col].to_numpy(dtype=float)
    if np.isnan(demand).all():
        raise DataValidationError(f"{cluster}/{region}: forecast column {col} is all NaN")
    node, load, nodes_raw = _choose_type(demand, fleet, sizing, reg.min_nodes)
    nodes = hold(nodes_raw, sizing.hold_hours, current_nodes)
    saturated = np.zeros(len(forecast), dtype=bool)
    link_use = np.full(len(forecast), math.nan)
    if repl_forecast is not None and not repl_forecast.empty:
        rcol, _ = risk_column(list(repl_forecast.columns), sizing.risk_quantile)
        by_step = repl_forecast.set_index("step")[rcol]
        repl = forecast["step"].map(by_step).to_numpy(dtype=float)
        link_use = repl / (reg.bandwidth_bytes_s * _SECONDS_PER_STEP)
        saturated = np.nan_to_num(link_use, nan=0.0) > 1.0
    reasons = []
    for i in range(len(forecast)):
        need = int(load[i])
        if nodes[i] > nodes_raw[i]:
            why = f"hold: keeps {nodes[i]} for {sizing.hold_hours}h after a higher step"
        elif nodes_raw[i] == reg.min_nodes and need + sizing.redundancy < reg.min_nodes:
            why = f"region minimum {reg.min_nodes}"
        else:
            usable = f"{node.qps_capacity:g}x{sizing.target_util:g}"
            why = f"load {need} (ceil({demand[i]:.0f}/({usable}))) + redundancy {sizing.redundancy}"
        why = f"{col}={demand[i]:.0f} qps; {why}; {node.name} cheapest"
        if saturated[i]:
            why += f"; LINK SATURATED ({link_use[i]:.0%} of {region} bandwidth)"
        reasons.append(why)
    origin = forecast["origin"] if "origin" in forecast.columns else forecast["ts"].min()
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(forecast["ts"], utc=True),
            "cluster": cluster,
            "region": region,
            "origin": pd.to_datetime(origin, utc=True),
            "step": forecast["step"].astype(int).to_numpy(),
            "node_type": node.name,
            "nodes": nodes,
            "capacity_qps": nodes * node.qps_capacity,
            "forecast_q": demand,
            "quantile": q,
            "cost_per_hour": nodes * node.hourly_cost,
            "reason": reasons,
            "link_saturated": saturated,
        },
        columns=PLAN_COLUMNS,
    )


def plan_fleet(
    qps_forecasts: pd.DataFrame,
    *,
    fleet: Fleet,
    sizing: SizingConfig,
    repl_forecasts: pd.DataFrame | None = None,
    current_nodes: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Plan every series of a long forecast frame (``series_id = "<cluster>/<region>"``).

    Raises:
        DataValidationError: the frame is empty or a series id is malformed.
        UnknownKeyError: a cluster or region is not in the fleet.
        ConfigError: node types or sizing settings are unusable.
    """
    validate_sizing(fleet, sizing)
    if qps_forecasts.empty:
        raise DataValidationError(
            "sizing: no qps_total forecasts to plan from; run `replicast forecast` first"
        )
    if "series_id" not in qps_forecasts.columns or "step" not in qps_forecasts.columns:
        raise DataValidationError("sizing: forecasts need 'series_id' and 'step' columns")
    plans = []
    for series_id, group in qps_forecasts.groupby("series_id", sort=True):
        cluster, sep, region = str(series_id).partition("/")
        if not sep:
            raise DataValidationError(
                f"sizing: series_id {series_id!r} is not '<cluster>/<region>'"
            )
        repl = None
        if repl_forecasts is not None and not repl_forecasts.empty:
            repl = repl_forecasts[repl_forecasts["series_id"] == series_id]
        plans.append(
            plan_series(
                group,
                cluster=cluster,
                region=region,
                fleet=fleet,
                sizing=sizing,
                repl_forecast=repl,
                current_nodes=(current_nodes or {}).get(str(series_id)),
            )
        )
    return pd.concat(plans, ignore_index=True)
