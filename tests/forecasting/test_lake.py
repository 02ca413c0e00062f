from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from forecasting.errors import DataValidationError
from forecasting.lake import Lake


def _frame(n: int = 6, value: float = 1.0) -> pd.DataFrame:
    ts = pd.date_range("2026-01-01 22:00", periods=n, freq="1h", tz="UTC")
    return pd.DataFrame(
        {"ts": ts, "cluster": "c1", "segment": [f"s{i % 2}" for i in range(n)], "reads": value}
    )


def test_write_is_idempotent_and_partitions_by_day(lake: Lake) -> None:
    lake.write("segment_access", _frame())
    first = lake.read("segment_access")
    lake.write("segment_access", _frame())
    again = lake.read("segment_access")
    pd.testing.assert_frame_equal(first, again)
    assert len(again) == 6
    days = sorted(p.parent.name for p in lake.partitions("segment_access"))
    assert days == ["date=2026-01-01", "date=2026-01-02"]


def test_newer_rows_replace_older_on_same_key(lake: Lake) -> None:
    lake.write("segment_access", _frame(value=1.0))
    lake.write("segment_access", _frame(n=2, value=5.0))
    out = lake.read("segment_access").sort_values("ts")
    assert out["reads"].tolist()[:2] == [5.0, 5.0]
    assert out["reads"].tolist()[2:] == [1.0] * 4


def test_read_filters_by_time_range(lake: Lake) -> None:
    lake.write("segment_access", _frame())
    out = lake.read("segment_access", start="2026-01-02 00:00", end="2026-01-02 02:00")
    assert out["ts"].dt.hour.tolist() == [0, 1]


def test_naive_timestamps_are_refused(lake: Lake) -> None:
    frame = _frame().assign(ts=lambda f: f["ts"].dt.tz_localize(None))
    with pytest.raises(DataValidationError, match="timezone-aware"):
        lake.write("segment_access", frame)


def test_flipped_byte_is_an_error_not_a_wrong_number(lake: Lake) -> None:
    lake.write("segment_access", _frame())
    path = lake.partitions("segment_access")[0]
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(0)
    data = bytearray(path.read_bytes())
    data[chunk.data_page_offset + chunk.total_compressed_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataValidationError, match=str(path.name)):
        lake.read("segment_access")


def test_stray_temp_files_are_cleaned(lake: Lake) -> None:
    lake.write("segment_access", _frame())
    stray = lake.partitions("segment_access")[0].with_name(".part-x.parquet.abc.tmp")
    stray.write_bytes(b"half")
    assert lake.clean_temp() == 1
    assert not stray.exists()
