from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import DataValidationError, UnknownKeyError
from forecasting.lake import Lake
from forecasting.settings import Settings
from forecasting.sizing import PLAN_COLUMNS
from pipelines.plan import QUEUE_COLUMNS, run_plan
from pipelines.simulate import simulate_fleet


def _ingest(settings: Settings, lake: Lake, days: int = 10) -> None:
    fleet = simulate_fleet(
        settings.fleet,
        start="2026-03-02",
        days=days,
        seed=5,
        nodes_per_region=1,
        segments_per_cluster=8,
    )
    lake.write("segment_access", fleet.segment_access)
    lake.write("node_metrics", fleet.node_metrics)


def test_plan_writes_sizing_plans_and_queues(settings: Settings, lake: Lake) -> None:
    _ingest(settings, lake)
    result = run_plan(settings, lake=lake)
    assert result.sizing_source == "fallback"  # no forecasts in this lake
    plans = lake.read("sizing_plans")
    assert list(plans.columns) == PLAN_COLUMNS
    n_series = sum(len(c.regions) for c in settings.fleet.clusters)
    assert len(plans) == n_series * settings.forecast.horizon
    minimum = {r.name: r.min_nodes for r in settings.fleet.regions}
    assert (plans["nodes"] >= plans["region"].map(minimum)).all()
    assert (plans["cost_per_hour"] > 0).all()
    assert plans["reason"].str.len().gt(0).all()
    queue = lake.read("priority_queue")
    assert list(queue.columns) == QUEUE_COLUMNS
    for (cluster, replica), group in queue.groupby(["cluster", "replica"]):
        assert replica != settings.fleet.cluster(cluster).primary_region
        assert sorted(group["rank"]) == list(range(1, len(group) + 1))
        ordered = group.sort_values("rank")
        assert (ordered["waited_s"] + ordered["cost_s"].cumsum()).max() <= (
            settings.priority.max_wait_s
        )


def test_plan_uses_forecasts_from_the_lake(settings: Settings, lake: Lake) -> None:
    _ingest(settings, lake)
    origin = pd.Timestamp("2026-03-12 00:00", tz="UTC")
    steps = np.arange(1, 4)
    rows = []
    for cluster in settings.fleet.clusters:
        for region in cluster.regions:
            rows.append(
                pd.DataFrame(
                    {
                        "ts": origin + pd.to_timedelta(steps, unit="h"),
                        "target": "qps_total",
                        "series_id": f"{cluster.name}/{region}",
                        "origin": origin,
                        "step": steps,
                        "model": "lightgbm",
                        "model_version": "7",
                        "q0.5": 1000.0,
                        "q0.99": 20000.0,
                    }
                )
            )
    lake.write("forecasts", pd.concat(rows, ignore_index=True))
    result = run_plan(settings, lake=lake)
    assert result.sizing_source == "forecasts"
    plan = result.sizing_plans
    assert len(plan) == 3 * len(rows)
    assert (plan["forecast_q"] == 20000.0).all()
    usable = plan["capacity_qps"] * settings.sizing.target_util
    assert (usable >= 20000.0).all()


def test_plan_refuses_unknown_clusters_and_empty_lakes(settings: Settings, lake: Lake) -> None:
    with pytest.raises(DataValidationError):
        run_plan(settings, lake=lake)
    fleet = simulate_fleet(
        settings.fleet,
        start="2026-03-02",
        days=2,
        seed=5,
        nodes_per_region=1,
        segments_per_cluster=4,
    )
    lake.write("node_metrics", fleet.node_metrics.assign(cluster="ghost"))
    lake.write("segment_access", fleet.segment_access)
    with pytest.raises(UnknownKeyError, match="ghost"):
        run_plan(settings, lake=lake)


@pytest.mark.slow
def test_run_decisions_registers_evaluates_and_plans(settings: Settings, lake: Lake) -> None:
    from models.mlflow_registry import HOT_SEGMENTS_MODEL, Registry
    from pipelines.plan import run_decisions

    _ingest(settings, lake, days=14)
    report = run_decisions(settings, lake=lake)
    assert set(report.evaluation) == {"priority", "sizing"}
    assert {"alphabetical", "oracle", "model"} <= set(report.evaluation["priority"])
    assert {"static", "vpa", "replicast", "oracle"} <= set(report.evaluation["sizing"])
    oracle = report.evaluation["priority"]["oracle"]["exposure"]
    assert all(p["exposure"] >= oracle - 1e-9 for p in report.evaluation["priority"].values())
    registry = Registry.from_settings(settings)
    champion = registry.load_champion(HOT_SEGMENTS_MODEL)
    assert champion.version == report.hot_segments.version
    artifacts = {a.path for a in registry.client.list_artifacts(report.run_id, "decisions")}
    assert {"decisions/sizing_capacity.png", "decisions/evaluation.json"} <= artifacts
    assert len(lake.read("segment_scores")) == report.hot_segments.scores_written > 0
    assert len(lake.read("sizing_plans")) == len(report.plan.sizing_plans)
