from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import DataValidationError
from forecasting.schemas import NODE_METRICS, SEGMENT_ACCESS
from forecasting.validation import QUARANTINE_COLUMNS, TimeBounds, Validator, validate

NOW = pd.Timestamp("2026-03-01 12:00", tz="UTC")


def _good_row(i: int, **changes: str | None) -> dict[str, str | None]:
    row: dict[str, str | None] = {
        "ts": (pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=5 * i)).isoformat(),
        "cluster": "orders",
        "region": "us-east",
        "node": "n1",
        "role": "primary",
        "cpu_util": "0.5",
        "qps_read": "100",
        "qps_write": "10",
        "disk_used_bytes": "1e9",
        "repl_lag_s": "0.2",
        "repl_bytes": "5000",
        "net_rtt_ms": "1.5",
    }
    row.update(changes)
    return row


def _check(bad: dict[str, str | None]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three good rows with ``bad`` as data row 2; returns (good, quarantined)."""
    frame = pd.DataFrame([_good_row(0), _good_row(1, **bad), _good_row(2)])
    out = validate(frame, NODE_METRICS, source="in.csv", now=NOW)
    return out.good, out.quarantined


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"cpu_util": None}, "cpu_util: missing value"),
        ({"cluster": "  "}, "cluster: missing value"),
        ({"cpu_util": "abc"}, "cpu_util: 'abc' is not a number"),
        ({"qps_read": "1,5"}, "qps_read: '1,5' is not a number"),
        ({"cpu_util": "1.7"}, "cpu_util: 1.7 above maximum 1.0"),
        ({"qps_write": "-3"}, "qps_write: -3.0 below minimum 0.0"),
        ({"repl_bytes": "inf"}, "repl_bytes: 'inf' is not a finite number"),
        ({"role": "master"}, "role: 'master' is not one of primary|replica"),
        ({"ts": "31/01/2026 10:00"}, "ts: unparseable timestamp '31/01/2026 10:00'"),
        ({"ts": None}, "ts: missing value"),
        ({"ts": "2199-01-01T00:00Z"}, "ts: '2199-01-01T00:00Z' is in the future (after 2026-03-"),
        ({"ts": "9999-12-31"}, "ts: '9999-12-31' is far out of range (years 1678..2261 only)"),
        ({"node": "n\x001"}, "node: 'n\\x001' holds a control character"),
    ],
    ids=[
        "missing",
        "blank",
        "mistyped",
        "decimal-comma",
        "above-max",
        "below-min",
        "infinite",
        "bad-role",
        "bad-ts",
        "missing-ts",
        "future-ts",
        "out-of-range-ts",
        "nul-in-text",
    ],
)
def test_each_kind_of_bad_row_is_quarantined_with_its_reason(
    change: dict[str, str | None], expected: str
) -> None:
    good, quarantined = _check(change)
    assert len(good) == 2
    assert quarantined["row"].tolist() == [2]
    assert quarantined["reason"].iloc[0].startswith(expected)
    assert json.loads(quarantined["raw"].iloc[0]) == _good_row(1, **change)
    assert quarantined["quarantined_at"].iloc[0] == NOW
    assert quarantined["source"].iloc[0] == "in.csv"
    assert quarantined["dataset"].iloc[0] == "node_metrics"
    assert list(quarantined.columns) == QUARANTINE_COLUMNS


def test_a_mistyped_value_keeps_the_column_numeric() -> None:
    good, _ = _check({"cpu_util": "abc"})
    assert good["cpu_util"].dtype == np.float64
    assert good["cpu_util"].tolist() == [0.5, 0.5]


def test_a_row_with_several_problems_lists_every_reason() -> None:
    _, quarantined = _check({"cpu_util": "2", "role": "boss", "qps_read": "x"})
    reason = quarantined["reason"].iloc[0]
    for part in ("cpu_util: 2.0 above maximum", "role: 'boss'", "qps_read: 'x'"):
        assert part in reason
    # columns are reported in schema order
    assert reason.index("role") < reason.index("cpu_util") < reason.index("qps_read")


def test_duplicates_keep_the_first_and_quarantine_the_rest() -> None:
    first = _good_row(0)
    rows = [first, _good_row(1), dict(first), {**first, "cpu_util": "0.9"}]
    out = validate(pd.DataFrame(rows), NODE_METRICS, source="d.csv", now=NOW)
    assert len(out.good) == 2
    assert out.good["cpu_util"].tolist() == [0.5, 0.5]
    q = out.quarantined.set_index("row")["reason"]
    assert q[3] == "ts: exact duplicate of row 1"
    assert q[4].startswith("ts: duplicate of row 1 (same cluster/region/node and ts")


def test_duplicates_are_found_after_utc_normalisation_and_across_chunks() -> None:
    validator = Validator(NODE_METRICS, source="d.csv", now=NOW)
    first = validator.validate(pd.DataFrame([_good_row(0)]))
    again = validator.validate(
        pd.DataFrame([_good_row(1), _good_row(0, ts="2026-01-01T08:00+08:00")])
    )
    assert len(first.good) == 1 and len(again.good) == 1
    assert again.quarantined["row"].tolist() == [3]
    assert again.quarantined["reason"].tolist() == ["ts: exact duplicate of row 1"]


def test_a_broken_row_does_not_shadow_a_good_duplicate() -> None:
    rows = [_good_row(0, cpu_util="abc"), _good_row(0)]
    out = validate(pd.DataFrame(rows), NODE_METRICS, source="d.csv", now=NOW)
    assert len(out.good) == 1
    assert out.quarantined["row"].tolist() == [1]


def test_timestamps_are_normalised_to_utc() -> None:
    stamps = [
        "2026-01-01T08:00:00+08:00",  # offset converted
        "2026-01-01 00:05",  # naive -> UTC
        "2026-01-01T00:10:00Z",
        "2025-12-31T19:15:00-05:00",
        "1767226800",  # epoch seconds
        "2026-01-01T00:25:00.000+00:00",
        "2026-01-01T00:30",
        "20260101T003500",  # ISO 8601 basic format
    ]
    rows = [_good_row(i, ts=s) for i, s in enumerate(stamps)]
    out = validate(pd.DataFrame(rows), NODE_METRICS, source="tz.csv", now=NOW)
    assert out.quarantined.empty
    expected = pd.date_range("2026-01-01", periods=len(stamps), freq="5min", tz="UTC")
    assert out.good["ts"].tolist() == expected.tolist()
    assert str(out.good["ts"].dtype) == "datetime64[ns, UTC]"


def test_a_date_without_time_next_to_offsets_stays_utc_midnight() -> None:
    rows = [_good_row(0, ts="2026-01-02T08:00+08:00"), _good_row(0, ts="2026-01-03", node="n2")]
    out = validate(pd.DataFrame(rows), NODE_METRICS, source="d.csv")
    assert out.good["ts"].tolist() == [
        pd.Timestamp("2026-01-02 00:00", tz="UTC"),
        pd.Timestamp("2026-01-03 00:00", tz="UTC"),
    ]


def test_typed_timestamps_naive_aware_and_epoch_numbers() -> None:
    base = pd.DataFrame([_good_row(0)])
    naive = base.assign(ts=pd.Timestamp("2026-01-01 03:00"))
    aware = base.assign(ts=pd.Timestamp("2026-01-01 04:00", tz="Asia/Shanghai"))
    epoch = base.assign(ts=1767225600)
    got = [validate(f, NODE_METRICS, source="x").good["ts"].iloc[0] for f in (naive, aware, epoch)]
    assert got == [
        pd.Timestamp("2026-01-01 03:00", tz="UTC"),
        pd.Timestamp("2025-12-31 20:00", tz="UTC"),
        pd.Timestamp("2026-01-01 00:00", tz="UTC"),
    ]


def test_quarantine_ts_is_the_rows_own_time_or_the_epoch() -> None:
    rows = [_good_row(3, cpu_util="9"), _good_row(4, ts="garbage")]
    out = validate(pd.DataFrame(rows), NODE_METRICS, source="q.csv", now=NOW)
    assert out.quarantined["ts"].tolist() == [
        pd.Timestamp("2026-01-01 00:15", tz="UTC"),
        pd.Timestamp(0, tz="UTC"),
    ]


def test_missing_required_column_refuses_the_whole_input() -> None:
    frame = pd.DataFrame([_good_row(0)]).drop(columns=["cpu_util"])
    with pytest.raises(DataValidationError, match=r"metrics\.csv: required column 'cpu_util'"):
        validate(frame, NODE_METRICS, source="metrics.csv")


def test_unknown_columns_are_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    frame = pd.DataFrame([_good_row(0)]).assign(colour="blue")
    with caplog.at_level("WARNING"):
        out = validate(frame, NODE_METRICS, source="extra.csv")
    assert "colour" not in out.good.columns
    assert out.dropped_columns == ("colour",)
    assert "colour" in caplog.text and "extra.csv" in caplog.text


def test_text_values_are_stripped_and_good_rows_typed() -> None:
    frame = pd.DataFrame(
        {
            "ts": ["2026-01-01T00:00Z", "2026-01-01T00:15Z"],
            "cluster": [" orders ", "orders"],
            "segment": ["s1", "s1"],
            "reads": ["1", "2.5"],
            "writes": ["0", "0"],
            "bytes_changed": ["0", "10"],
            "size_bytes": ["100", "100"],
        }
    )
    out = validate(frame, SEGMENT_ACCESS, source="s.csv")
    assert out.quarantined.empty
    assert out.good["cluster"].tolist() == ["orders", "orders"]
    assert out.good["reads"].tolist() == [1.0, 2.5]
    assert list(out.good.columns) == SEGMENT_ACCESS.names


def test_an_all_empty_row_says_so() -> None:
    frame = pd.DataFrame([_good_row(0), dict.fromkeys(_good_row(0))])
    out = validate(frame, NODE_METRICS, source="e.csv")
    assert out.quarantined["reason"].tolist() == ["empty row"]


def test_zero_and_implausibly_early_timestamps_are_quarantined() -> None:
    rows = [_good_row(0, ts="0"), _good_row(1, ts="1999-12-31T23:00Z"), _good_row(2)]
    out = validate(pd.DataFrame(rows), NODE_METRICS, source="z.csv")
    assert len(out.good) == 1
    assert out.quarantined["reason"].str.contains("is before 2000-01-01").all()


def test_the_future_bound_follows_the_injected_clock_and_tolerance() -> None:
    rows = [_good_row(0, ts="2026-03-01T13:00Z"), _good_row(1, ts="2026-03-02T13:00Z")]
    default = validate(pd.DataFrame(rows), NODE_METRICS, source="f.csv", now=NOW)
    assert len(default.good) == 1
    assert default.quarantined["row"].tolist() == [2]
    assert "(after 2026-03-02T12:00Z, now + 1 day;" in default.quarantined["reason"].iloc[0]
    strict = TimeBounds(future_tolerance=timedelta(0))
    out = validate(pd.DataFrame(rows), NODE_METRICS, source="f.csv", now=NOW, bounds=strict)
    assert out.good.empty
    later = validate(pd.DataFrame(rows), NODE_METRICS, source="f.csv", now=NOW + pd.Timedelta("2D"))
    assert len(later.good) == 2


def test_times_outside_the_bounds_are_filed_under_the_epoch() -> None:
    """No quarantine row is filed under a far-off day (the lake partitions by ``ts``)."""
    rows = [_good_row(0, ts="2199-01-01"), _good_row(1, ts="2001-06-01"), _good_row(2)]
    floor = TimeBounds(floor=datetime(2005, 1, 1, tzinfo=UTC))
    out = validate(pd.DataFrame(rows), NODE_METRICS, source="b.csv", now=NOW, bounds=floor)
    assert out.quarantined["ts"].tolist() == [pd.Timestamp(0, tz="UTC")] * 2
    assert out.quarantined["reason"].iloc[1].startswith("ts: '2001-06-01' is before 2005-01-01")


@pytest.mark.parametrize(
    "ts", ["99999999999999999999", "-99999999999999999999", "18446744073709551615"]
)
def test_epoch_text_past_int64_is_far_out_of_range(ts: str) -> None:
    good, bad = _check({"ts": ts})
    assert len(good) == 2
    assert bad["reason"].tolist() == [f"ts: '{ts}' is far out of range (years 1678..2261 only)"]
    assert bad["ts"].tolist() == [pd.Timestamp(0, tz="UTC")]


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([1767225600.0, 1e20, -1e20]),
        pd.Series([1767225600, 2**64 - 1, 2**63], dtype="uint64"),
        pd.Series([1767225600, 2**62, -(2**62)], dtype="int64"),
        pd.Series([1767225600, 2**62, None], dtype="Int64"),
    ],
    ids=["float", "uint64", "int64", "nullable"],
)
def test_numeric_epoch_past_int64_is_far_out_of_range(values: pd.Series) -> None:
    frame = pd.DataFrame([_good_row(i) for i in range(3)]).assign(ts=values)
    out = validate(frame, NODE_METRICS, source="p.parquet", now=NOW)
    assert out.good["ts"].tolist() == [pd.Timestamp("2026-01-01", tz="UTC")]
    reasons = out.quarantined["reason"].tolist()
    assert all("is far out of range" in r or r == "ts: missing value" for r in reasons), reasons
    assert len(reasons) == 2
