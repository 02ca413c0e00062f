"""The lake's pandas-free paths: Arrow tables merged as :meth:`Lake.write` merges frames."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from forecasting.errors import DataValidationError
from forecasting.lake import Lake, table_from_rows


def _frame(n: int = 6, value: float = 1.0, start: str = "2026-01-01 22:00") -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq="1h", tz="UTC")
    return pd.DataFrame(
        {"ts": ts, "cluster": "c1", "segment": [f"s{i % 2}" for i in range(n)], "reads": value}
    )


def _table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _both(tmp_path: Path, *frames: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same writes through :meth:`Lake.write` and :meth:`Lake.write_table`, read back."""
    by_frame, by_table = Lake(tmp_path / "frame"), Lake(tmp_path / "table")
    for frame in frames:
        by_frame.write("segment_access", frame)
        by_table.write_table("segment_access", _table(frame))
    return by_frame.read("segment_access"), by_table.read("segment_access")


def test_write_table_gives_the_lake_write_gives(tmp_path: Path) -> None:
    shuffled = _frame(n=5, value=3.0).sample(frac=1.0, random_state=1)
    dupes = pd.concat([_frame(n=3, value=7.0), _frame(n=3, value=8.0)], ignore_index=True)
    got_frame, got_table = _both(tmp_path, _frame(), shuffled, dupes)
    pd.testing.assert_frame_equal(got_table, got_frame)
    assert got_table["reads"].tolist()[:3] == [8.0, 8.0, 8.0]  # the last row of a key wins
    files = sorted(
        p.relative_to(tmp_path / "table") for p in (tmp_path / "table").rglob("*.parquet")
    )
    assert files == sorted(
        p.relative_to(tmp_path / "frame") for p in (tmp_path / "frame").rglob("*.parquet")
    )


def test_write_table_merges_into_partitions_written_from_frames(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.write("segment_access", _frame())
    lake.write_table("segment_access", _table(_frame(n=2, value=5.0)))
    out = lake.read("segment_access")
    assert out["reads"].tolist() == [5.0, 5.0, 1.0, 1.0, 1.0, 1.0]
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]"


def test_write_table_stores_other_zones_in_utc(tmp_path: Path) -> None:
    frame = _frame(n=2).assign(ts=lambda f: f["ts"].dt.tz_convert("Asia/Tokyo"))
    Lake(tmp_path).write_table("segment_access", _table(frame))
    days = sorted(p.parent.name for p in Lake(tmp_path).partitions("segment_access"))
    assert days == ["date=2026-01-01"]


def test_write_table_refuses_naive_ts_and_missing_keys(tmp_path: Path) -> None:
    naive = _table(_frame().assign(ts=lambda f: f["ts"].dt.tz_localize(None)))
    with pytest.raises(DataValidationError, match="timezone-aware"):
        Lake(tmp_path).write_table("segment_access", naive)
    with pytest.raises(DataValidationError, match="missing"):
        Lake(tmp_path).write_table("segment_access", _table(_frame().drop(columns="segment")))
    assert Lake(tmp_path).write_table("segment_access", _table(_frame(n=0))).rows_in == 0


def test_importing_the_lake_loads_no_pandas() -> None:
    code = "import sys, forecasting.lake; assert 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rows_give_the_table_pandas_gives(tmp_path: Path) -> None:
    row = {
        "ts": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "run_id": "r1",
        "state": "finished",
        "bytes_sent": 12,
        "seconds": 1.5,
        "ok": True,
    }
    got_frame, got_table = Lake(tmp_path / "f"), Lake(tmp_path / "t")
    got_frame.write("sync_runs", pd.DataFrame([row]))
    got_table.write_table("sync_runs", table_from_rows([row, {**row, "run_id": "r2"}]))
    one = got_table.read("sync_runs")
    pd.testing.assert_frame_equal(one.iloc[:1], got_frame.read("sync_runs"))
    assert one["run_id"].tolist() == ["r1", "r2"]
    with pytest.raises(DataValidationError, match="unsupported"):
        table_from_rows([{"ts": datetime(2026, 1, 2), "x": 1}])  # naive
