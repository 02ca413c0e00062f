from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.segment_features import (
    build_panel,
    feature_names,
    panel_from_counts,
    segment_features,
    segment_targets,
)
from forecasting.errors import DataValidationError

T0 = pd.Timestamp("2026-03-02 00:00", tz="UTC")  # a Monday


def _access() -> pd.DataFrame:
    rows = []
    for q in range(4 * 30):  # 30 hours of 15-minute rows
        ts = T0 + pd.Timedelta(minutes=15 * q)
        rows.append(("t/p20260301", ts, 4.0, 1.0, 100.0, 1e6))
        if q >= 8:  # a new partition appears after 2 hours, read 10x more
            rows.append(("t/p20260302", ts, 40.0, 2.0, 50.0, 2e6))
    return pd.DataFrame(
        rows, columns=["segment", "ts", "reads", "writes", "bytes_changed", "size_bytes"]
    )


def test_panel_sums_quarter_hours_into_windows() -> None:
    panel = build_panel(_access(), window="1h")
    assert list(panel.segments) == ["t/p20260301", "t/p20260302"]
    assert panel.n_windows == 30
    assert panel.reads[0, 0] == 16.0
    assert panel.reads[1, :2].sum() == 0 and panel.reads[1, 2] == 160.0
    assert panel.changed[0, 5] == 400.0
    assert list(panel.first_seen) == [0, 2]


def test_features_describe_the_past_and_local_calendar() -> None:
    panel = build_panel(_access(), window="1h")
    feats = segment_features(panel, [1, 5], timezone="Asia/Shanghai")
    # at t=1 only the first partition exists
    assert list(feats.loc[feats["t"] == 1, "segment"]) == ["t/p20260301"]
    row = feats[(feats["t"] == 5) & (feats["segment"] == "t/p20260302")].iloc[0]
    assert row["reads_1"] == 160.0
    assert row["reads_4"] == 4 * 160.0
    assert row["since_read"] == 0
    assert row["writes_1"] == 8.0
    assert row["age"] == 0  # partition dated the day of the predicted window
    # predicted window starts 06:00 UTC = 14:00 in Shanghai, Monday
    assert row["hour"] == 14.0 and row["dow"] == 0.0
    assert row["ts"] == T0 + pd.Timedelta(hours=6)
    assert set(feature_names(True)) <= set(feats.columns)


def test_features_do_not_look_ahead() -> None:
    frame = _access()
    later = frame["ts"] >= T0 + pd.Timedelta(hours=10)
    changed = frame.assign(reads=np.where(later, frame["reads"] * 100, frame["reads"]))
    a = segment_features(build_panel(frame), [9])
    b = segment_features(build_panel(changed), [9])
    pd.testing.assert_frame_equal(a, b)


def test_targets_are_next_window_values() -> None:
    panel = panel_from_counts(np.array(["a", "b"]), np.array([[1, 2, 3], [0, 5, 0]]))
    feats = segment_features(panel, [0, 1, 2])
    targets = segment_targets(panel, feats)
    keys = zip(feats["segment"], feats["t"], strict=True)
    got = dict(zip(keys, targets["reads"], strict=True))
    assert got[("a", 0)] == 2 and got[("a", 1)] == 3 and np.isnan(got[("a", 2)])
    assert got[("b", 1)] == 0
    assert ("b", 0) not in got  # b not seen yet at window 0
    assert "hour" not in feats.columns  # logical windows have no calendar


def test_empty_or_malformed_input_is_a_clear_error() -> None:
    with pytest.raises(DataValidationError, match="empty history"):
        build_panel(_access().iloc[:0])
    with pytest.raises(DataValidationError, match="reads"):
        build_panel(_access().drop(columns="reads"))
