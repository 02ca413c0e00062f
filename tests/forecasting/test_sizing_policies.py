from __future__ import annotations

import numpy as np
import pytest

from forecasting.errors import ConfigError, DataValidationError
from forecasting.sizing_policies import (
    ReplicastPolicy,
    StaticPolicy,
    VpaPolicy,
    auto_capacity,
    demand_to_nodes,
    replay,
    sizing_metrics,
    weighted_quantile,
)


def _diurnal(days: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 24)
    base = 1000 + 800 * np.sin(2 * np.pi * hours / 24)
    return base * (1 + 0.03 * rng.standard_normal(len(hours)))


def test_static_is_last_week_peak_times_1_3() -> None:
    history = np.concatenate([np.full(24, 5000.0), np.full(7 * 24, 100.0)])
    history[-30] = 200.0
    assert StaticPolicy().plan(history, 3, 1.0) == pytest.approx([260.0] * 3)


def test_vpa_is_decayed_p90_plus_15_percent() -> None:
    # one day of 100 long ago weighs little against 7 recent days of 10
    history = np.concatenate([np.full(24, 100.0), np.full(7 * 24, 10.0)])
    assert VpaPolicy().plan(history, 2, 1.0) == pytest.approx([11.5, 11.5])
    # the p90 of equal weights is the 90th percentile sample
    assert weighted_quantile(np.arange(1.0, 11.0), np.ones(10), 0.9) == 9.0


def test_metrics_hand_computed() -> None:
    actual = np.array([10.0, 20.0, 35.0, np.nan])
    nodes = np.array([2.0, 2.0, 2.0, 2.0])
    # capacity 25, util 0.6 -> usable 15 per node, 30 per plan; 35 > 30 violates
    metrics = sizing_metrics(actual, nodes, 25.0, 0.6)
    assert metrics["node_hours"] == 8.0
    assert metrics["violation_rate"] == pytest.approx(1 / 3)
    assert metrics["slack"] == pytest.approx(((30 - 10) / 30 + (30 - 20) / 30 + 0) / 3)
    assert list(demand_to_nodes(np.array([0.0, 14.9, 15.0, 15.1]), 25.0, 0.6)) == [0, 1, 1, 2]


def test_replay_oracle_never_violates_and_replicast_beats_vpa_on_a_daily_cycle() -> None:
    values = _diurnal(21)
    result = replay(
        values,
        {"static": StaticPolicy(), "vpa": VpaPolicy(), "replicast": ReplicastPolicy()},
        node_capacity=100.0,
        target_util=0.7,
    )
    metrics = result.metrics()
    assert len(result.hours) == 14 * 24
    assert metrics["oracle"]["violation_rate"] == 0
    assert metrics["oracle"]["node_hours"] <= metrics["replicast"]["node_hours"]
    assert metrics["replicast"]["node_hours"] < metrics["vpa"]["node_hours"]
    assert metrics["replicast"]["node_hours"] < 0.75 * metrics["static"]["node_hours"]
    assert metrics["replicast"]["violation_rate"] <= 0.02


def test_policies_plan_from_history_only() -> None:
    values = _diurnal(12)
    changed = values.copy()
    changed[8 * 24 :] *= 10  # the future changes; a plan made at day 8 must not
    policy = ReplicastPolicy()
    before = policy.plan(values[: 8 * 24], 24, 70.0)
    after = policy.plan(changed[: 8 * 24], 24, 70.0)
    assert np.array_equal(before, after)


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(DataValidationError, match="empty history"):
        replay(np.array([]), {}, node_capacity=1.0, target_util=0.7)
    with pytest.raises(DataValidationError, match="empty history"):
        replay(np.full(300, np.nan), {}, node_capacity=1.0, target_util=0.7)
    with pytest.raises(DataValidationError, match="warm-up"):
        replay(np.ones(100), {}, node_capacity=1.0, target_util=0.7)
    with pytest.raises(ConfigError, match="capacity"):
        replay(np.ones(300), {}, node_capacity=-2.0, target_util=0.7)
    with pytest.raises(ConfigError, match="utilisation"):
        replay(np.ones(300), {}, node_capacity=2.0, target_util=1.5)
    with pytest.raises(DataValidationError, match="--node-capacity"):
        auto_capacity(np.zeros(200))
    assert auto_capacity(np.full(200, 8.0)) == 2.0
