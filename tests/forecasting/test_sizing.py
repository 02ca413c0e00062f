from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import ConfigError, DataValidationError, UnknownKeyError
from forecasting.settings import Fleet, NodeType, Region, SizingConfig, load_settings
from forecasting.sizing import PLAN_COLUMNS, hold, plan_fleet, plan_series

ORIGIN = pd.Timestamp("2026-01-05 00:00", tz="UTC")


def _forecast(demand: list[float], series_id: str = "orders/eu-west") -> pd.DataFrame:
    steps = np.arange(1, len(demand) + 1)
    return pd.DataFrame(
        {
            "series_id": series_id,
            "ts": ORIGIN + pd.to_timedelta(steps, unit="h"),
            "origin": ORIGIN,
            "step": steps,
            "q0.5": np.asarray(demand) * 0.5,
            "q0.99": demand,
        }
    )


def _fleet(node_types: list[NodeType] | None = None, min_nodes: int = 2) -> Fleet:
    regions = [
        Region(name="us-east", timezone="UTC", bandwidth_bytes_s=1e9, rtt_ms=1),
        Region(
            name="eu-west", timezone="UTC", bandwidth_bytes_s=1e6, rtt_ms=70, min_nodes=min_nodes
        ),
    ]
    types = node_types or [
        NodeType(name="small", vcpus=2, qps_capacity=1000, disk_bytes=1, hourly_cost=1.0),
        NodeType(name="big", vcpus=8, qps_capacity=4000, disk_bytes=1, hourly_cost=3.0),
    ]
    return Fleet(
        regions=regions,
        node_types=types,
        clusters=[
            {"name": "orders", "primary_region": "us-east", "regions": ["us-east", "eu-west"]}
        ],
    )


def test_nodes_are_ceil_of_risk_quantile_over_usable_capacity_plus_redundancy() -> None:
    sizing = SizingConfig(risk_quantile=0.99, target_util=0.5, redundancy=1, hold_hours=0)
    only_small = _fleet(
        [NodeType(name="s", vcpus=1, qps_capacity=1000, disk_bytes=1, hourly_cost=1)]
    )
    plan = plan_series(
        _forecast([1500, 2000, 2001]),
        cluster="orders",
        region="eu-west",
        fleet=only_small,
        sizing=sizing,
    )
    # usable per node = 500 qps: 1500 -> 3, 2000 -> 4, 2001 -> 5; + 1 spare
    assert list(plan["nodes"]) == [4, 5, 6]
    assert list(plan["capacity_qps"]) == [4000, 5000, 6000]
    assert list(plan["cost_per_hour"]) == [4.0, 5.0, 6.0]
    assert (plan["quantile"] == 0.99).all()
    assert list(plan.columns) == PLAN_COLUMNS
    assert plan["reason"].str.contains("q0.99").all()


def test_region_minimum_binds_at_low_load() -> None:
    sizing = SizingConfig(target_util=1.0, redundancy=1, hold_hours=0)
    plan = plan_series(
        _forecast([10, 10]),
        cluster="orders",
        region="eu-west",
        fleet=_fleet(min_nodes=3),
        sizing=sizing,
    )
    assert list(plan["nodes"]) == [3, 3]
    assert plan["reason"].str.contains("region minimum 3").all()


def test_hold_period_delays_scale_down() -> None:
    assert list(hold(np.array([5, 2, 2, 2, 2]), 2)) == [5, 5, 5, 2, 2]
    assert list(hold(np.array([2, 2, 2]), 2, current=6)) == [6, 6, 2]
    sizing = SizingConfig(target_util=1.0, redundancy=0, hold_hours=2)
    only_small = _fleet(
        [NodeType(name="s", vcpus=1, qps_capacity=100, disk_bytes=1, hourly_cost=1)], min_nodes=0
    )
    plan = plan_series(
        _forecast([800, 100, 100, 100, 900]),
        cluster="orders",
        region="eu-west",
        fleet=only_small,
        sizing=sizing,
    )
    assert list(plan["nodes"]) == [8, 8, 8, 1, 9]
    assert plan["reason"].iloc[1].count("hold") == 1


def test_cheapest_node_type_that_fits_is_chosen() -> None:
    sizing = SizingConfig(target_util=1.0, redundancy=0, hold_hours=0)
    fleet = _fleet(min_nodes=0)
    # 3500 qps: small = 4 x 1.0 = 4.0/h; big = 1 x 3.0 = 3.0/h -> big
    plan = plan_series(
        _forecast([3500]), cluster="orders", region="eu-west", fleet=fleet, sizing=sizing
    )
    assert plan["node_type"].iloc[0] == "big"
    assert plan["cost_per_hour"].iloc[0] == 3.0
    # 900 qps: small = 1.0/h; big = 3.0/h -> small
    plan = plan_series(
        _forecast([900]), cluster="orders", region="eu-west", fleet=fleet, sizing=sizing
    )
    assert plan["node_type"].iloc[0] == "small"


def test_link_saturation_is_flagged() -> None:
    sizing = SizingConfig(hold_hours=0)
    repl = _forecast([1e6 * 3600 * 0.5, 1e6 * 3600 * 2.0])  # bytes per hour vs 1 MB/s link
    plan = plan_fleet(_forecast([100, 100]), fleet=_fleet(), sizing=sizing, repl_forecasts=repl)
    assert list(plan["link_saturated"]) == [False, True]
    assert "LINK SATURATED" in plan["reason"].iloc[1]


def test_unknown_cluster_empty_forecast_and_bad_settings_are_clear_errors(tmp_path: Path) -> None:
    sizing = SizingConfig()
    with pytest.raises(UnknownKeyError, match="nope"):
        plan_fleet(_forecast([1.0], series_id="nope/eu-west"), fleet=_fleet(), sizing=sizing)
    with pytest.raises(DataValidationError, match="no qps_total forecasts"):
        plan_fleet(_forecast([]), fleet=_fleet(), sizing=sizing)
    with pytest.raises(DataValidationError, match="empty forecast"):
        plan_series(
            _forecast([]), cluster="orders", region="eu-west", fleet=_fleet(), sizing=sizing
        )
    broken = NodeType.model_construct(
        name="neg", vcpus=1, qps_capacity=-5.0, disk_bytes=1.0, hourly_cost=1.0
    )
    fleet = _fleet()
    fleet.node_types.append(broken)
    with pytest.raises(ConfigError, match=r"neg\).qps_capacity"):
        plan_fleet(_forecast([1.0]), fleet=fleet, sizing=sizing)
    toml = tmp_path / "bad.toml"
    toml.write_text(
        '[[fleet.node_types]]\nname = "x"\nvcpus = 2\nqps_capacity = -5\n'
        "disk_bytes = 1e9\nhourly_cost = 1\n"
    )
    with pytest.raises(ConfigError, match="qps_capacity"):
        load_settings(toml)
