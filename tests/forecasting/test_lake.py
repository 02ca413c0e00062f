from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from forecasting import durable
from forecasting import lake as lake_module
from forecasting.durable import atomic_write
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


def _flip_a_value_byte(path: Path, column: str) -> None:
    """Flip one byte inside the values of ``column``'s last data page, not in a page header.

    The byte is the last one of the column chunk whose flip still decodes, to
    other numbers, when checksums are not verified: values sit after the
    header, at the end of the page.
    """
    meta = pq.ParquetFile(path).metadata
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    chunk = meta.row_group(0).column(names.index(column))
    end = (chunk.dictionary_page_offset or chunk.data_page_offset) + chunk.total_compressed_size
    original = pq.read_table(path).to_pandas()
    data = path.read_bytes()
    for offset in range(end - 1, chunk.data_page_offset, -1):
        corrupt = bytearray(data)
        corrupt[offset] ^= 0x01
        path.write_bytes(bytes(corrupt))
        try:
            decoded = pq.read_table(path, page_checksum_verification=False).to_pandas()
        except (OSError, pa.ArrowException):
            continue
        if not decoded.equals(original):
            return
    raise AssertionError(f"no byte of {column}'s data page decodes to other values")


def _random_frame() -> pd.DataFrame:
    return _frame().assign(reads=np.random.default_rng(0).random(6) * 100)


def test_a_flipped_value_byte_is_an_error_naming_the_file_not_a_wrong_number(lake: Lake) -> None:
    lake.write("segment_access", _random_frame())
    path = lake.partitions("segment_access")[0]
    _flip_a_value_byte(path, "reads")
    with pytest.raises(DataValidationError, match=f"{path.name}: unreadable or corrupt"):
        lake.read("segment_access")


def test_without_page_checksums_the_same_flip_gives_wrong_numbers(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the test above guards against: the lake writing no page checksums."""

    def without_checksums(table: pa.Table, path: Path) -> None:
        with atomic_write(path, "wb") as fh:
            pq.write_table(table, fh, compression="zstd", write_page_checksum=False)

    monkeypatch.setattr(lake_module, "write_parquet_atomic", without_checksums)
    frame = _random_frame()
    lake.write("segment_access", frame)
    _flip_a_value_byte(lake.partitions("segment_access")[0], "reads")
    read = lake.read("segment_access")  # no error ...
    day_one = frame[frame["ts"] < "2026-01-02"].reset_index(drop=True)
    got = read[read["ts"] < "2026-01-02"].sort_values("ts").reset_index(drop=True)
    assert not np.array_equal(got["reads"], day_one["reads"])  # ... but other numbers


def test_stray_temp_files_are_cleaned(lake: Lake) -> None:
    lake.write("segment_access", _frame())
    stray = lake.partitions("segment_access")[0].with_name(".part-x.parquet.abc.tmp")
    stray.write_bytes(b"half")
    assert lake.clean_temp() == 1
    assert not stray.exists()


def test_temp_files_of_a_writer_in_flight_are_left_alone(lake: Lake) -> None:
    lake.write("segment_access", _frame())
    lake.write("node_metrics", _frame().assign(node="n"), key=["node", "ts"])
    in_flight = lake.partitions("segment_access")[0].with_name(".part-y.parquet.abc.tmp")
    leftover = lake.partitions("node_metrics")[0].with_name(".part-z.parquet.abc.tmp")
    for tmp in (in_flight, leftover):
        tmp.write_bytes(b"half")
    with lake._locked("segment_access"):  # a writer holds the dataset (flock: any process)
        assert lake.clean_temp() == 1
        assert in_flight.exists()
        assert not leftover.exists()
    assert lake.clean_temp() == 1
    assert not in_flight.exists()


def test_new_directories_are_fsynced_into_their_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    real = durable.fsync_dir
    monkeypatch.setattr(durable, "fsync_dir", lambda path: (synced.append(path), real(path)))
    lake = Lake(tmp_path / "new" / "lake")
    lake.write("segment_access", _frame(n=2))
    dataset = lake.path("segment_access")
    for made in (lake.root, dataset, dataset / "date=2026-01-01"):
        assert made.parent in synced, made


def test_a_dataset_that_cannot_be_locked_is_not_cleaned(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.write("segment_access", _frame())

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(lake_module, "make_dirs_durable", read_only)
    assert lake.clean_temp() == 0
