from __future__ import annotations

import math

import numpy as np
import pytest

from forecasting.errors import DataValidationError
from forecasting.exposure import (
    alphabetical_order,
    ascending_order,
    captured,
    completion_times,
    exposure_from_bins,
    exposure_from_events,
    smith_order,
)


def test_hand_computed_event_case() -> None:
    # a: 10 s on the link, b: 20 s. Reads of a at 5 s and 25 s; of b at 1 s, 15 s, 40 s.
    cost = np.array([10.0, 20.0])
    item = np.array([0, 0, 1, 1, 1])
    t = np.array([5.0, 25.0, 1.0, 15.0, 40.0])
    # order a, b: C_a = 10, C_b = 30 -> stale: a@5, b@1, b@15 = 3
    ab = completion_times(np.array([0, 1]), cost)
    assert list(ab) == [10.0, 30.0]
    assert exposure_from_events(ab, item, t) == 3
    # order b, a: C_b = 20, C_a = 30 -> stale: a@5, a@25, b@1, b@15 = 4
    ba = completion_times(np.array([1, 0]), cost)
    assert exposure_from_events(ba, item, t) == 4


def test_hand_computed_binned_case_prorates_inside_a_bin() -> None:
    # bins of 60 s; a reads 60 then 30, b reads 6 then 6; a costs 30 s, b 60 s.
    reads = np.array([[60.0, 30.0], [6.0, 6.0]])
    cost = np.array([30.0, 60.0])
    # a first: C_a = 30 -> half of bin 0 of a = 30; C_b = 90 -> 6 + 6/2 = 9 -> 39
    assert exposure_from_bins(completion_times(np.array([0, 1]), cost), reads, 60) == 39
    # b first: C_b = 60 -> 6; C_a = 90 -> 60 + 15 = 75 -> 81
    assert exposure_from_bins(completion_times(np.array([1, 0]), cost), reads, 60) == 81
    # completion past the data counts every read
    assert exposure_from_bins(np.array([500.0, 500.0]), reads, 60) == reads.sum()


def test_orders_and_captured() -> None:
    names = ["b", "a", "c"]
    assert list(alphabetical_order(names)) == [1, 0, 2]
    assert list(ascending_order(names, np.array([3.0, 3.0, 1.0]))) == [2, 1, 0]
    assert list(smith_order(names, np.array([1.0, 1.0, 9.0]), np.ones(3))) == [2, 1, 0]
    assert captured(100, 100, 40) == 0
    assert captured(100, 40, 40) == 1
    assert captured(100, 70, 40) == pytest.approx(0.5)
    assert math.isnan(captured(10, 10, 10))


def test_bad_inputs() -> None:
    with pytest.raises(DataValidationError, match="permutation"):
        completion_times(np.array([0, 0]), np.ones(2))
    with pytest.raises(DataValidationError, match=">= 0"):
        completion_times(np.array([0]), np.array([-1.0]))
    with pytest.raises(DataValidationError, match="shape"):
        exposure_from_bins(np.ones(2), np.ones((3, 2)), 60)
