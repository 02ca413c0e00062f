"""The plan job (``replicast plan``): sizing plans and replication priority queues -> lake.

Sizing: the newest ``qps_total`` forecasts in the lake (``replicast forecast``) are
planned by :func:`forecasting.sizing.plan_fleet`, with the ``repl_bytes`` forecasts for
the link check and the nodes running in the last hour as the hold's starting point.
When the lake holds no forecasts yet, the plan falls back to the replicast sizing
policy's own demand (seasonal profile + validated margin) built from ``node_metrics``
and says so in each row's reason.

Priority: every segment changed in the last hour of ``segment_access`` is pending on
each replica region of its cluster (all regions but the primary). Its weight is the
predicted read rate of the newest ``segment_scores`` (reads per second), its cost the
bytes changed since it became pending over the region's link bandwidth, and its wait
the time since its first pending change (:func:`forecasting.priority.prioritize`).

:func:`evaluate_decisions` runs both backtests (priority exposure on the sample's
sync runs, sizing replay of every cluster/region) and returns the JSON of ``replicast
plan --json``; inside an active MLflow run it also logs metrics and two plots.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd

from forecasting.errors import DataValidationError
from forecasting.lake import Lake
from forecasting.priority import prioritize
from forecasting.settings import Settings
from forecasting.sizing import plan_fleet
from forecasting.sizing_policies import (
    ReplayResult,
    ReplicastPolicy,
    default_policies,
    inner_target,
    replay,
)
from models.mlflow_registry import Registry
from pipelines import load_series
from pipelines.hot_segments import (
    HotSegmentsSummary,
    PriorityEvaluation,
    backtest_hot_segments,
    log_evaluation,
    prepare,
    train_hot_segments,
)

log = logging.getLogger(__name__)

SIZING_PLANS = "sizing_plans"
PRIORITY_QUEUE = "priority_queue"
FORECASTS = "forecasts"
QUEUE_COLUMNS = [
    "ts",
    "origin",
    "cluster",
    "replica",
    "segment",
    "rank",
    "weight",
    "cost_s",
    "score",
    "waited_s",
]


@dataclass
class PlanResult:
    """What ``run_plan`` wrote."""

    sizing_plans: pd.DataFrame
    priority_queue: pd.DataFrame
    sizing_source: str  # "forecasts" or "fallback"


# ---------------------------------------------------------------- sizing plan


def _latest_forecasts(lake: Lake, target: str) -> pd.DataFrame:
    frame = lake.read(FORECASTS)
    if frame.empty or "target" not in frame.columns:
        return pd.DataFrame()
    frame = frame[frame["target"] == target]
    if frame.empty:
        return frame
    newest = frame.groupby("series_id")["origin"].transform("max")
    frame = frame[frame["origin"] == newest]
    # one model version per series: the newest one written
    return frame.drop_duplicates(subset=["series_id", "step"], keep="last")


def _fallback_forecasts(settings: Settings, lake: Lake, target: str) -> pd.DataFrame:
    """Demand per series from the replicast sizing policy, shaped like ``forecasts`` rows."""
    series = load_series.read_series(lake, [target], settings.forecast.freq)[target]
    risk = settings.sizing.risk_quantile
    usable = min(n.qps_capacity for n in settings.fleet.node_types) * settings.sizing.target_util
    policy = ReplicastPolicy(target_violation=inner_target(risk))
    rows = []
    horizon = settings.forecast.horizon
    for series_id, group in series.groupby("series_id", sort=True):
        group = group.sort_values("ts")
        if group["y"].notna().sum() == 0:
            continue
        origin = group["ts"].max()
        demand = policy.plan(group["y"].to_numpy(dtype=float), horizon, usable)
        steps = np.arange(1, horizon + 1)
        rows.append(
            pd.DataFrame(
                {
                    "series_id": series_id,
                    "ts": origin + pd.to_timedelta(steps, unit="h"),
                    "origin": origin,
                    "step": steps,
                    f"q{risk:g}": demand,
                }
            )
        )
    if not rows:
        raise DataValidationError(f"no {target} history in the lake to plan from")
    return pd.concat(rows, ignore_index=True)


def _current_nodes(lake: Lake) -> dict[str, int]:
    frame = lake.read("node_metrics", columns=["ts", "cluster", "region", "node"])
    if frame.empty:
        return {}
    last = frame["ts"].max()
    recent = frame[frame["ts"] > last - pd.Timedelta(hours=1)]
    counts = recent.groupby(["cluster", "region"])["node"].nunique()
    return {f"{c}/{r}": int(n) for (c, r), n in counts.items()}


def sizing_plan(settings: Settings, *, lake: Lake) -> tuple[pd.DataFrame, str]:
    """The sizing plan of every cluster/region; returns (plan rows, source of the demand)."""
    qps = _latest_forecasts(lake, "qps_total")
    source = "forecasts"
    if qps.empty:
        log.warning("no qps_total forecasts in the lake; planning from the replicast policy")
        qps = _fallback_forecasts(settings, lake, "qps_total")
        source = "fallback"
    repl = _latest_forecasts(lake, "repl_bytes")
    plan = plan_fleet(
        qps,
        fleet=settings.fleet,
        sizing=settings.sizing,
        repl_forecasts=repl if not repl.empty else None,
        current_nodes=_current_nodes(lake),
    )
    if source == "fallback":
        plan["reason"] = "no forecasts in lake, replicast policy demand; " + plan["reason"]
    return plan, source


# ---------------------------------------------------------------- priority queue


def priority_queue(settings: Settings, *, lake: Lake) -> pd.DataFrame:
    """Rank the segments changed in the last hour for every replica region of their cluster."""
    access = lake.read("segment_access")
    if access.empty:
        raise DataValidationError(
            "segment_access is empty in the lake: run `replicast ingest --source sample` first"
        )
    now = access["ts"].max() + pd.Timedelta(minutes=15)
    recent = access[(access["ts"] >= now - pd.Timedelta(hours=1)) & (access["bytes_changed"] > 0)]
    changed = recent.groupby(["cluster", "segment"], as_index=False).agg(
        bytes_to_send=("bytes_changed", "sum"), first_change=("ts", "min")
    )
    scores = lake.read("segment_scores")
    if scores.empty:
        log.warning("no segment_scores in the lake; weighting by last-hour reads")
        last_hour = access[access["ts"] >= now - pd.Timedelta(hours=1)]
        weights = last_hour.groupby(["cluster", "segment"], as_index=False)["reads"].sum()
        weights = weights.rename(columns={"reads": "pred_reads"})
    else:
        newest = scores[scores["ts"] == scores["ts"].max()]
        weights = newest.drop_duplicates(["cluster", "segment"], keep="last")[
            ["cluster", "segment", "pred_reads"]
        ]
    pending = changed.merge(weights, on=["cluster", "segment"], how="left")
    pending["weight"] = pending["pred_reads"].fillna(0.0) / 3600.0
    pending["waited_s"] = (now - pending["first_change"]).dt.total_seconds()
    rows = []
    for cluster_name, group in pending.groupby("cluster", sort=True):
        cluster = settings.fleet.cluster(str(cluster_name))
        for replica in cluster.regions:
            if replica != cluster.primary_region:
                rows.append(group.assign(replica=replica))
    if not rows:
        return pd.DataFrame(columns=QUEUE_COLUMNS)
    ranked = prioritize(
        pd.concat(rows, ignore_index=True),
        fleet=settings.fleet,
        max_wait_s=settings.priority.max_wait_s,
    )
    return ranked.assign(ts=now, origin=now)[QUEUE_COLUMNS]


def run_plan(settings: Settings, *, lake: Lake) -> PlanResult:
    """Build the sizing plans and priority queues and write both to the lake."""
    plan, source = sizing_plan(settings, lake=lake)
    queue = priority_queue(settings, lake=lake)
    lake.write(SIZING_PLANS, plan)
    if not queue.empty:
        lake.write(PRIORITY_QUEUE, queue)
    log.info("plan: %d sizing rows (%s), %d queue rows", len(plan), source, len(queue))
    return PlanResult(plan, queue, source)


# ---------------------------------------------------------------- evaluations


def sizing_evaluation(
    settings: Settings, *, lake: Lake
) -> tuple[dict[str, dict[str, float]], dict[str, ReplayResult], dict[str, pd.DatetimeIndex]]:
    """Replay static, vpa, replicast and oracle on every ``qps_total`` series of the lake.

    Demand becomes nodes of the smallest node type of the fleet at
    ``sizing.target_util``. Returns overall metrics (node-hours summed, rates weighted
    by hours), each series' replay, and each series' hourly timestamps.
    """
    series = load_series.read_series(lake, ["qps_total"], settings.forecast.freq)["qps_total"]
    capacity = min(n.qps_capacity for n in settings.fleet.node_types)
    util = settings.sizing.target_util
    replays: dict[str, ReplayResult] = {}
    stamps: dict[str, pd.DatetimeIndex] = {}
    for series_id, group in series.groupby("series_id", sort=True):
        group = group.sort_values("ts")
        try:
            replays[str(series_id)] = replay(
                group["y"].to_numpy(dtype=float),
                default_policies(settings.sizing.risk_quantile),
                node_capacity=capacity,
                target_util=util,
            )
        except DataValidationError as exc:
            log.warning("%s: sizing replay skipped: %s", series_id, exc)
            continue
        stamps[str(series_id)] = pd.DatetimeIndex(group["ts"])
    if not replays:
        raise DataValidationError("sizing evaluation: no series with more than 7 days of history")
    overall: dict[str, dict[str, float]] = {}
    for name in next(iter(replays.values())).nodes:
        node_hours = violations = slack = hours = 0.0
        for result in replays.values():
            m = result.metrics()[name]
            n = float((~np.isnan(result.actual)).sum())
            node_hours += m["node_hours"]
            if not math.isnan(m["violation_rate"]):
                violations += m["violation_rate"] * n
                slack += m["slack"] * n
                hours += n
        overall[name] = {
            "node_hours": node_hours,
            "violation_rate": violations / hours if hours else math.nan,
            "slack": slack / hours if hours else math.nan,
        }
    return overall, replays, stamps


def plot_capacity(result: ReplayResult, stamps: pd.DatetimeIndex, title: str):  # noqa: ANN201 - a matplotlib Figure
    """Planned usable capacity per policy against the real load over the replay."""
    import matplotlib  # deferred: matplotlib only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4))
    x = stamps[result.hours]
    ax.plot(x, result.actual, color="black", lw=1.2, label="real load")
    usable = result.node_capacity * result.target_util
    for name, nodes in result.nodes.items():
        ax.step(x, nodes * usable, where="post", lw=0.9, label=f"{name} (x util)")
    ax.set_title(title)
    ax.set_ylabel("qps")
    ax.legend(loc="upper left", fontsize=8, ncol=5)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def evaluate_decisions(
    settings: Settings, *, lake: Lake, priority: PriorityEvaluation | None = None
) -> dict:
    """Both decision backtests as ``{"priority": {...}, "sizing": {...}}``.

    Args:
        settings: fleet, sizing and forecast settings.
        lake: reads ``segment_access`` and ``node_metrics``.
        priority: a priority evaluation already computed (e.g. by
            :func:`pipelines.hot_segments.train_hot_segments`); recomputed when None.

    Inside an active MLflow run the metrics and the two plots (exposure per policy,
    planned capacity vs real load per policy) are logged too.
    """
    if priority is None:
        clusters = prepare(lake.read("segment_access"), settings)
        priority = backtest_hot_segments(clusters, folds=settings.forecast.folds)
    overall, replays, stamps = sizing_evaluation(settings, lake=lake)
    out = {"priority": priority.as_dict(), "sizing": overall}
    if mlflow.active_run() is not None:
        import matplotlib.pyplot as plt  # deferred: matplotlib only when a plot is drawn

        log_evaluation(priority)
        mlflow.log_metrics(
            {
                f"sizing.{name}.{key}": float(value)
                for name, metrics in overall.items()
                for key, value in metrics.items()
                if not math.isnan(value)
            }
        )
        busiest = max(replays, key=lambda s: float(np.nansum(replays[s].actual)))
        fig = plot_capacity(
            replays[busiest], stamps[busiest], f"{busiest}: planned capacity vs real load"
        )
        mlflow.log_figure(fig, "decisions/sizing_capacity.png")
        plt.close(fig)
        mlflow.log_dict(out, "decisions/evaluation.json")
    return out


# ---------------------------------------------------------------- the daily decisions job


@dataclass
class DecisionsReport:
    """What :func:`run_decisions` trained, evaluated and wrote."""

    hot_segments: HotSegmentsSummary
    evaluation: dict
    plan: PlanResult
    run_id: str


def run_decisions(settings: Settings, *, lake: Lake) -> DecisionsReport:
    """Train the hot-segment model, evaluate both decisions and write today's plan.

    One MLflow run (``job=decisions``) holds the hot-segment backtest, its registration
    through the champion gate, the sizing and priority evaluations and their plots.
    Then ``segment_scores``, ``sizing_plans`` and ``priority_queue`` are written to the
    lake, from the newest load forecasts and segment scores.
    """
    with Registry.connect(settings).run("decisions") as run:
        mlflow.set_tag("job", "decisions")
        summary = train_hot_segments(settings, lake=lake)
        evaluation = evaluate_decisions(settings, lake=lake, priority=summary.evaluation)
    return DecisionsReport(summary, evaluation, run_plan(settings, lake=lake), run.info.run_id)
