"""Metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecasting import metrics


def test_seasonal_naive_scale_hand_computed() -> None:
    train = [1.0, 2.0, 4.0, 7.0]  # lag-2 diffs: 3, 5
    assert metrics.seasonal_naive_scale(train, 2) == pytest.approx(4.0)


def test_seasonal_naive_scale_skips_gaps_and_falls_back_to_lag_one() -> None:
    assert metrics.seasonal_naive_scale([1.0, np.nan, 4.0, 3.0], 2) == pytest.approx(3.0)
    # shorter than a season: lag-1 errors |3-1| = 2
    assert metrics.seasonal_naive_scale([1.0, 3.0], 24) == pytest.approx(2.0)
    assert math.isnan(metrics.seasonal_naive_scale([5.0, 5.0, 5.0], 1))


def test_mase_hand_computed() -> None:
    train = [1.0, 2.0, 4.0, 7.0]  # scale 4 at season 2
    actual = [10.0, 12.0]
    forecast = [8.0, 18.0]  # abs errors 2, 6 -> mean 4
    assert metrics.mase(actual, forecast, train, 2) == pytest.approx(1.0)


def test_mase_ignores_missing_actuals() -> None:
    train = [0.0, 1.0, 2.0, 3.0]  # lag-1 scale 1
    assert metrics.mase([1.0, np.nan], [3.0, 100.0], train, 1) == pytest.approx(2.0)
    assert math.isnan(metrics.mase([np.nan], [1.0], train, 1))


def test_pinball_loss_hand_computed() -> None:
    actual = [10.0, 10.0]
    qf = {0.1: [12.0, 8.0], 0.9: [12.0, 8.0]}
    # q=0.1: errors -2 -> 0.9*2=1.8 ; +2 -> 0.1*2=0.2 ; mean 1.0
    # q=0.9: -2 -> 0.1*2=0.2 ; +2 -> 0.9*2=1.8 ; mean 1.0
    assert metrics.pinball_loss(actual, qf) == pytest.approx(1.0)
    assert metrics.pinball_loss([10.0], {0.5: [10.0]}) == 0.0
    assert metrics.pinball_loss([10.0], {0.5: [6.0]}) == pytest.approx(2.0)


def test_interval_and_quantile_coverage() -> None:
    actual = [1.0, 2.0, 3.0, 4.0, np.nan]
    lower = [0.0, 2.0, 3.5, 0.0, 0.0]
    upper = [2.0, 2.0, 5.0, 3.0, 9.0]
    assert metrics.interval_coverage(actual, lower, upper) == pytest.approx(0.5)
    assert metrics.quantile_coverage(actual, [1.0, 1.0, 5.0, 5.0, 0.0]) == pytest.approx(0.75)


def test_coverage_90_uses_q05_and_q95() -> None:
    actual = [1.0, 5.0, 9.0, 20.0]
    qf = {0.05: [0.0] * 4, 0.5: [5.0] * 4, 0.95: [10.0] * 4}
    assert metrics.coverage_90(actual, qf) == pytest.approx(0.75)
    assert math.isnan(metrics.coverage_90(actual, {0.5: [5.0] * 4}))


def test_mismatched_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match="forecast"):
        metrics.mase([1.0, 2.0], [1.0], [1.0, 2.0, 3.0], 1)
