"""Counters -> increases and rates: resets never give negative numbers, gaps stay gaps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.sources.counters import counter_increase, increases, rates, series_increases


def test_increase_is_the_difference_when_the_counter_grows() -> None:
    assert counter_increase(100.0, 160.0) == 60.0


def test_a_drop_is_a_reset_and_counts_from_zero() -> None:
    # restarted server: 1000 -> 30 means 30 new events, not -970
    assert counter_increase(1000.0, 30.0) == 30.0


def test_known_reset_counts_from_zero_even_if_the_value_grew() -> None:
    # pg_stat_reset() then more activity than before: stats_reset moved
    assert counter_increase(10.0, 25.0, reset=True) == 25.0


def test_a_counter_born_in_the_interval_counts_whole() -> None:
    assert counter_increase(None, 7.0) == 7.0


def test_missing_values_stay_missing() -> None:
    assert math.isnan(counter_increase(math.nan, 5.0))
    assert math.isnan(counter_increase(5.0, math.nan))


def test_increases_follow_the_keys_of_the_current_sample() -> None:
    out = increases({"a": 1.0, "gone": 9.0}, {"a": 4.0, "new": 2.0})
    assert out == {"a": 3.0, "new": 2.0}


def test_rates_divide_by_the_interval_and_never_go_negative() -> None:
    out = rates({"xact": 500.0, "tup": 10.0}, {"xact": 800.0, "tup": 4.0}, 60.0)
    assert out["xact"] == pytest.approx(5.0)
    assert out["tup"] == pytest.approx(4.0 / 60.0)
    assert all(v >= 0 for v in out.values())


def test_rates_refuse_an_empty_interval() -> None:
    with pytest.raises(ValueError, match="interval"):
        rates({"a": 1.0}, {"a": 2.0}, 0.0)


def test_series_increases_handle_reset_and_gap() -> None:
    values = np.array([10.0, 15.0, 3.0, np.nan, 8.0, 12.0])
    out = series_increases(values)
    assert math.isnan(out[0])
    assert out[1] == 5.0
    assert out[2] == 3.0  # reset
    assert math.isnan(out[3]) and math.isnan(out[4])  # both sides of the gap
    assert out[5] == 4.0
    assert np.all(out[~np.isnan(out)] >= 0)


def test_series_increases_of_a_single_sample_is_unknown() -> None:
    assert np.isnan(series_increases(np.array([3.0]))).all()
