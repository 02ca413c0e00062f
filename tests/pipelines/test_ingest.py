from __future__ import annotations

import errno
import gzip
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import Result
from typer.testing import CliRunner

from forecasting.errors import DataValidationError, SourceError
from forecasting.lake import Lake
from forecasting.schemas import NODE_METRICS, SEGMENT_ACCESS
from forecasting.settings import get_settings
from pipelines import ingest
from pipelines.ingest import (
    expand_paths,
    ingest_file,
    ingest_frame,
    ingest_paths,
    ingest_sample,
    ingest_uri,
    sample_paths,
)
from tests.conftest import SAMPLE_DIR

NOW = pd.Timestamp("2026-03-01 12:00", tz="UTC")
HEADER = ",".join(NODE_METRICS.names)


def _line(i: int, **changes: str) -> str:
    values = {
        "ts": (pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=5 * i)).isoformat(),
        "cluster": "orders",
        "region": "us-east",
        "node": f"n{i % 3}",
        "role": "primary" if i % 3 == 0 else "replica",
        "cpu_util": f"{0.1 + (i % 8) / 10:.2f}",
        "qps_read": str(100 + i),
        "qps_write": str(10 + i % 7),
        "disk_used_bytes": str(1e9 + i),
        "repl_lag_s": "0.5",
        "repl_bytes": str(4000 + i),
        "net_rtt_ms": "1.2",
    }
    values.update(changes)
    return ",".join(values[c] for c in NODE_METRICS.names)


def _write_csv(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def _corrupt_csv(path: Path) -> Path:
    """A node_metrics CSV with good rows mixed with garbage; data rows 3, 5, 6, 8, 9 are bad."""
    lines = [
        _line(0),
        _line(1),
        "#### garbage ####",  # 3: one field
        _line(3),
        _line(4, cpu_util="abc"),  # 5: mistyped
        "x,y,z",  # 6: three fields
        _line(7),
        _line(8, role="leader", qps_read="-1"),  # 8: two reasons
        _line(9, ts="yesterday"),  # 9: bad timestamp
        _line(10),
    ]
    return _write_csv(path, lines)


def test_corrupt_csv_quarantines_bad_rows_and_ingests_the_rest(tmp_path: Path, lake: Lake) -> None:
    path = _corrupt_csv(tmp_path / "node_metrics.csv")
    report = ingest_file(path, lake=lake, now=NOW)
    assert report.ok
    assert (report.rows_in, report.rows_good, report.rows_quarantined) == (10, 5, 5)
    good = lake.read("node_metrics")
    assert sorted(good["qps_read"].tolist()) == [100.0, 101.0, 103.0, 107.0, 110.0]
    q = lake.read("quarantine").set_index("row")
    assert sorted(q.index) == [3, 5, 6, 8, 9]
    assert q.loc[3, "reason"] == "row has 1 field(s), the header has 12"
    assert json.loads(q.loc[3, "raw"]) == "#### garbage ####"
    assert q.loc[5, "reason"] == "cpu_util: 'abc' is not a number"
    assert q.loc[6, "reason"] == "row has 3 field(s), the header has 12"
    assert "role: 'leader' is not one of primary|replica" in q.loc[8, "reason"]
    assert "qps_read: -1.0 below minimum 0.0" in q.loc[8, "reason"]
    assert q.loc[9, "reason"].startswith("ts: unparseable timestamp 'yesterday'")
    assert set(q["source"]) == {str(path.resolve())}
    assert (q["quarantined_at"] == NOW).all()
    assert json.loads(q.loc[5, "raw"])["cpu_util"] == "abc"
    assert report.reasons[0] == "row 3: row has 1 field(s), the header has 12"


def test_row_numbers_survive_small_csv_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [_line(i) for i in range(300)]
    for bad in (0, 57, 58, 199, 299):
        lines[bad] = "broken,line"
    lines[120] = _line(120, cpu_util="7")
    lines[250] = _line(3)  # duplicate of data row 4, in another block
    path = _write_csv(tmp_path / "node_metrics.csv", lines)
    monkeypatch.setattr(ingest, "_CSV_BLOCK_BYTES", 2048)
    report = ingest_file(path, lake=Lake(tmp_path / "small"), now=NOW)
    quarantined = Lake(tmp_path / "small").read("quarantine").sort_values("row")
    assert report.rows_in == 300
    assert quarantined["row"].tolist() == [1, 58, 59, 121, 200, 251, 300]
    assert quarantined.set_index("row").loc[251, "reason"] == "ts: exact duplicate of row 4"
    assert report.rows_good == 293


def test_missing_required_column_names_the_file_and_column(tmp_path: Path, lake: Lake) -> None:
    header = HEADER.replace(",cpu_util", "")
    lines = [",".join(_line(0).split(",")[:5] + _line(0).split(",")[6:])]
    path = _write_csv(tmp_path / "node_metrics.csv", lines, header=header)
    with pytest.raises(DataValidationError, match="node_metrics.csv: required column 'cpu_util'"):
        ingest_file(path, lake=lake)
    assert lake.read("node_metrics").empty


def test_missing_column_in_parquet_names_the_file(tmp_path: Path, lake: Lake) -> None:
    frame = pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=2, tz="UTC"), "cluster": "c"})
    path = tmp_path / "segment_access.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataValidationError, match=r"segment_access\.parquet: required column"):
        ingest_file(path, lake=lake)


def _typed_frame(n: int = 48) -> pd.DataFrame:
    ts = pd.date_range("2026-01-01", periods=n, freq="15min", tz="UTC")
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "ts": ts,
            "cluster": "orders",
            "segment": [f"seg{i % 4}" for i in range(n)],
            "reads": rng.uniform(0, 100, n),
            "writes": rng.uniform(0, 10, n),
            "bytes_changed": rng.uniform(0, 1e6, n),
            "size_bytes": 1e9,
        }
    ).drop_duplicates(["cluster", "segment", "ts"])


def test_parquet_with_typed_columns_lands_and_dataset_is_inferred_from_columns(
    tmp_path: Path, lake: Lake
) -> None:
    frame = _typed_frame()
    path = tmp_path / "export-2026.parquet"
    frame.to_parquet(path)
    report = ingest_file(path, lake=lake)
    assert report.dataset == "segment_access"
    assert report.rows_good == len(frame)
    out = lake.read("segment_access").sort_values(["ts", "segment"]).reset_index(drop=True)
    expected = frame.sort_values(["ts", "segment"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(out[SEGMENT_ACCESS.names], expected, check_dtype=False)


def test_flipped_byte_in_parquet_is_an_error_naming_the_file(tmp_path: Path, lake: Lake) -> None:
    path = tmp_path / "segment_access.parquet"
    pq.write_table(
        pa.Table.from_pandas(_typed_frame(), preserve_index=False),
        path,
        compression="none",
        write_page_checksum=True,
    )
    chunk = pq.ParquetFile(path).metadata.row_group(0).column(3)
    data = bytearray(path.read_bytes())
    data[chunk.data_page_offset + chunk.total_compressed_size - 4] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataValidationError, match="segment_access.parquet"):
        ingest_file(path, lake=lake)
    assert lake.read("segment_access").empty


@pytest.mark.parametrize("name", ["node_metrics.parquet", "node_metrics.csv", "x.csv.gz"])
def test_binary_garbage_is_an_error_naming_the_file(tmp_path: Path, lake: Lake, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(DataValidationError, match=name.replace(".", r"\.")):
        ingest_file(path, lake=lake)


def test_missing_file_and_unknown_type_are_errors(tmp_path: Path, lake: Lake) -> None:
    with pytest.raises(DataValidationError, match="nothere.csv: no such file"):
        ingest_file(tmp_path / "nothere.csv", lake=lake)
    (tmp_path / "node_metrics.json").write_text("{}")
    with pytest.raises(DataValidationError, match="node_metrics.json: unsupported file type"):
        ingest_file(tmp_path / "node_metrics.json", lake=lake)


def test_unknown_dataset_asks_for_dataset_option(tmp_path: Path, lake: Lake) -> None:
    path = _write_csv(tmp_path / "export.csv", ["1,2"], header="a,b")
    with pytest.raises(DataValidationError, match="pass --dataset"):
        ingest_file(path, lake=lake)


def test_ingest_is_idempotent(tmp_path: Path, lake: Lake) -> None:
    path = _corrupt_csv(tmp_path / "node_metrics.csv")
    ingest_paths([path], lake=lake, now=NOW)
    first = {d: lake.read(d) for d in ("node_metrics", "quarantine")}
    # again, later, through a relative path from another directory
    other = tmp_path / "elsewhere"
    other.mkdir()
    os.chdir(other)
    reports = ingest_paths(["../node_metrics.csv"], lake=lake, now=NOW + pd.Timedelta("1D"))
    assert reports[0].rows_quarantined == 5
    for dataset, frame in first.items():
        pd.testing.assert_frame_equal(lake.read(dataset), frame)


def test_timestamps_land_in_utc_partitions(tmp_path: Path, lake: Lake) -> None:
    lines = [_line(0, ts="2026-01-02T07:30:00+08:00"), _line(1, ts="2026-01-01 23:45")]
    ingest_file(_write_csv(tmp_path / "node_metrics.csv", lines), lake=lake)
    out = lake.read("node_metrics").sort_values("ts")
    assert out["ts"].tolist() == [
        pd.Timestamp("2026-01-01 23:30", tz="UTC"),
        pd.Timestamp("2026-01-01 23:45", tz="UTC"),
    ]
    assert [p.parent.name for p in lake.partitions("node_metrics")] == ["date=2026-01-01"]


def test_gzipped_csv_and_globs(tmp_path: Path, lake: Lake) -> None:
    body = "\n".join([HEADER, _line(0), _line(1)]) + "\n"
    with gzip.open(tmp_path / "node_metrics-a.csv.gz", "wt") as fh:
        fh.write(body)
    _write_csv(tmp_path / "node_metrics-b.csv", [_line(2)])
    reports = ingest_paths(str(tmp_path / "node_metrics-*"), lake=lake)
    assert [r.rows_good for r in reports] == [2, 1]
    assert len(lake.read("node_metrics")) == 3


def test_ingest_paths_reports_refused_files_and_goes_on(tmp_path: Path, lake: Lake) -> None:
    good = _write_csv(tmp_path / "node_metrics.csv", [_line(0)])
    missing = tmp_path / "gone.csv"
    with pytest.raises(DataValidationError, match="gone.csv"):
        ingest_paths([missing, good], lake=lake)
    reports = ingest_paths([missing, good], lake=lake, on_error="report")
    assert [r.ok for r in reports] == [False, True]
    assert "no such file" in (reports[0].error or "")
    assert len(lake.read("node_metrics")) == 1


def test_expand_paths_directories_and_unmatched_globs(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x")
    (tmp_path / "b.parquet").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    found = expand_paths([tmp_path, tmp_path / "a.csv", str(tmp_path / "zz*.csv")])
    assert [p.name for p in found] == ["a.csv", "b.parquet", "zz*.csv"]


def test_ingest_frame_validates_frames_from_sources(lake: Lake) -> None:
    frame = _typed_frame(8)
    frame.loc[2, "reads"] = -5.0
    report = ingest_frame(frame, dataset="segment_access", source="prometheus://h", lake=lake)
    assert (report.rows_good, report.rows_quarantined) == (7, 1)
    q = lake.read("quarantine")
    assert q["reason"].tolist() == ["reads: -5.0 below minimum 0.0"]
    assert q["row"].tolist() == [3]


def test_unknown_scheme_is_a_source_error(lake: Lake, settings) -> None:
    with pytest.raises(SourceError):
        ingest_uri("ftp://example.invalid/x", lake=lake, settings=settings)


def test_missing_sample_says_how_to_make_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "SAMPLE_DIR", tmp_path / "none")
    with pytest.raises(DataValidationError, match="make simulate-sample"):
        sample_paths()


@pytest.mark.slow
def test_the_shipped_sample_ingests_without_quarantine(lake: Lake) -> None:
    if not list(SAMPLE_DIR.glob("*.parquet")):
        pytest.skip("data/sample/ not generated yet")
    reports = ingest_sample(lake)
    assert {r.dataset for r in reports} == {"node_metrics", "segment_access"}
    for report in reports:
        assert report.rows_quarantined == 0, report.reasons
        assert report.rows_good == report.rows_in > 0


def test_binary_junk_lines_inside_a_csv_quarantine_only_their_rows(
    tmp_path: Path, lake: Lake
) -> None:
    path = tmp_path / "node_metrics.csv"
    junk = _line(1).replace("orders", "ord\xff\xfers").encode("latin-1")
    body = [HEADER.encode(), _line(0).encode(), junk, b"\x00\x01\x02\x9c", _line(3).encode()]
    path.write_bytes(b"\n".join(body) + b"\n")
    report = ingest_file(path, lake=lake, now=NOW)
    assert (report.rows_good, report.rows_quarantined) == (2, 2)
    q = lake.read("quarantine").set_index("row")
    assert q.loc[2, "reason"] == "cluster: not UTF-8 text"
    assert json.loads(q.loc[2, "raw"])["cluster"] == "ord\ufffd\ufffdrs"
    assert q.loc[3, "reason"] == "row has 1 field(s), the header has 12"


def test_a_csv_of_only_bad_rows_writes_only_quarantine(tmp_path: Path, lake: Lake) -> None:
    path = _write_csv(tmp_path / "node_metrics.csv", ["junk", _line(1, cpu_util="-1")])
    report = ingest_file(path, lake=lake)
    assert (report.rows_in, report.rows_good, report.rows_quarantined) == (2, 0, 2)
    assert lake.read("node_metrics").empty
    assert len(lake.read("quarantine")) == 2


def test_header_only_csv_ingests_nothing(tmp_path: Path, lake: Lake) -> None:
    report = ingest_file(_write_csv(tmp_path / "node_metrics.csv", []), lake=lake)
    assert (report.rows_in, report.rows_good, report.rows_quarantined) == (0, 0, 0)


def test_a_stray_quote_quarantines_only_its_own_line(tmp_path: Path, lake: Lake) -> None:
    lines = [
        _line(0),
        _line(1),
        _line(2, cluster='or"ders'),  # 3: a quote inside a value is a literal
        _line(3),
        _line(4, cluster='"orders'),  # 5: opens a quoted value that never closes
        _line(5),
        _line(6, cluster='"ord,ers"', region='"us""east"'),  # 7: quoted comma and quote
        _line(7),
    ]
    path = _write_csv(tmp_path / "node_metrics.csv", lines)
    report = ingest_file(path, lake=lake, now=NOW)
    assert (report.rows_in, report.rows_good, report.rows_quarantined) == (8, 7, 1)
    q = lake.read("quarantine")
    assert q["row"].tolist() == [5]
    assert q["reason"].tolist() == [ingest._UNBALANCED]
    assert json.loads(q["raw"].iloc[0]) == lines[4]
    good = lake.read("node_metrics").sort_values("ts")
    assert good["qps_read"].tolist() == [100.0, 101.0, 102.0, 103.0, 105.0, 106.0, 107.0]
    assert set(good["cluster"]) == {"orders", 'or"ders', "ord,ers"}
    assert 'us"east' in set(good["region"])


@pytest.mark.parametrize("block_bytes", [2048, 8 << 20])
def test_every_line_is_counted_across_blocks(
    tmp_path: Path, lake: Lake, monkeypatch: pytest.MonkeyPatch, block_bytes: int
) -> None:
    lines = [_line(i) for i in range(300)]
    lines[0] = _line(0, node='"n0')  # an open quote on the first line
    lines[57] = "broken,line"
    lines[58] = _line(58, role='"replica')
    lines[120] = _line(120, cpu_util="7")
    lines[199] = _line(199, region="us\reast")  # a lone carriage return
    lines[250] = _line(3)  # duplicate of data row 4, in another block
    lines[299] = _line(299, net_rtt_ms='"1.2')  # an open quote on the last line
    path = _write_csv(tmp_path / "node_metrics.csv", lines)
    monkeypatch.setattr(ingest, "_CSV_BLOCK_BYTES", block_bytes)
    report = ingest_file(path, lake=lake, now=NOW)
    q = lake.read("quarantine").sort_values("row").set_index("row")["reason"]
    assert q.index.tolist() == [1, 58, 59, 121, 200, 251, 300]
    assert q[1] == q[59] == q[300] == ingest._UNBALANCED
    assert q[200] == ingest._STRAY_CR
    assert q[251] == "ts: exact duplicate of row 4"
    assert (report.rows_in, report.rows_good, report.rows_quarantined) == (300, 293, 7)


def test_line_check_agrees_with_arrow_on_single_lines() -> None:
    """A line the check passes is one Arrow record; one it refuses is not."""
    cases = [
        b"a,b",
        b'"a",b',
        b'"a""b",c',
        b'"a"b"c,d',
        b'a"b,c',
        b'"a,b',
        b'a,"b""',
        b'"',
        b'""',
        b'a,"b\rc",d',
        b"a,b\rc",
        b'"a"\rb',
        b'x,"',
        b",,",
        b'"a"",b',
        b'""""',
    ]
    for line in cases:
        table, invalid = ingest._arrow_records(line + b"\nsentinel,line\n", ["x", "y"])
        one_record = table.num_rows + len(invalid) == 2
        assert (ingest._line_trouble(line) is None) == one_record, line


def test_bom_crlf_quotes_and_padded_header_names(tmp_path: Path, lake: Lake) -> None:
    header = ", ".join(NODE_METRICS.names)  # blanks after the commas
    row = _line(0).replace("orders", '"orders"')
    path = tmp_path / "node_metrics.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{header}\r\n{row}\r\n{_line(1)}\r\n".encode())
    report = ingest_file(path, lake=lake)
    assert (report.rows_good, report.rows_quarantined) == (2, 0)
    assert set(lake.read("node_metrics")["cluster"]) == {"orders"}


def test_repeated_header_names_are_refused(tmp_path: Path, lake: Lake) -> None:
    path = _write_csv(tmp_path / "node_metrics.csv", [_line(0) + ",x"], header=HEADER + ",node")
    with pytest.raises(DataValidationError, match=r"\['node'\] appear more than once"):
        ingest_file(path, lake=lake)


def test_far_future_and_far_past_timestamps_are_quarantined(tmp_path: Path, lake: Lake) -> None:
    lines = [
        _line(0),
        _line(1, ts="2199-01-01T00:00:00Z"),
        _line(2, ts="1999-12-31T23:59:59Z"),
        _line(3, ts="2026-03-02T11:00:00Z"),  # within now + 1 day
        _line(4, ts="2026-03-02T13:00:00Z"),  # an hour past it
        _line(5, ts="4102444800"),  # epoch seconds of 2100-01-01
    ]
    report = ingest_file(_write_csv(tmp_path / "node_metrics.csv", lines), lake=lake, now=NOW)
    assert (report.rows_in, report.rows_good, report.rows_quarantined) == (6, 2, 4)
    q = lake.read("quarantine").set_index("row")["reason"]
    assert q[2].startswith("ts: '2199-01-01T00:00:00Z' is in the future (after 2026-03-02T12:00Z")
    assert "now + 1 day" in q[2]
    assert q[3].startswith("ts: '1999-12-31T23:59:59Z' is before 2000-01-01")
    assert q[5].startswith("ts: '2026-03-02T13:00:00Z' is in the future")
    assert q[6].startswith("ts: '4102444800' is in the future")
    days = {p.parent.name for d in ("node_metrics", "quarantine") for p in lake.partitions(d)}
    assert days == {"date=2026-01-01", "date=2026-03-02", "date=1970-01-01"}


def test_timestamp_bounds_come_from_the_settings(
    tmp_path: Path, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICAST_INGEST__TS_FUTURE_TOLERANCE", "PT2H")
    monkeypatch.setenv("REPLICAST_INGEST__TS_FLOOR", "2026-01-01T00:10:00Z")
    get_settings.cache_clear()
    lines = [
        _line(0),
        _line(3),
        _line(4, ts="2026-03-01T13:30:00Z"),
        _line(5, ts="2026-03-01T14:30Z"),
    ]
    report = ingest_paths([_write_csv(tmp_path / "node_metrics.csv", lines)], lake=lake, now=NOW)[0]
    assert (report.rows_good, report.rows_quarantined) == (2, 2)
    q = lake.read("quarantine").set_index("row")["reason"]
    assert q[1].startswith("ts: '2026-01-01T00:00:00+00:00' is before 2026-01-01")
    assert "(after 2026-03-01T14:00Z, now + 2 h;" in q[4]


def test_a_failed_lake_write_refuses_the_input_by_name_and_the_others_still_land(
    tmp_path: Path, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _write_csv(tmp_path / "node_metrics-a.csv", [_line(0)])
    full = _write_csv(tmp_path / "node_metrics-full.csv", [_line(1)])
    last = _write_csv(tmp_path / "node_metrics-c.csv", [_line(2)])
    real_write = Lake.write

    def write(self: Lake, dataset: str, frame: pd.DataFrame, key: list[str] | None = None):
        if frame["qps_read"].eq(101.0).any():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/lake/x.tmp")
        return real_write(self, dataset, frame, key)

    monkeypatch.setattr(Lake, "write", write)
    with pytest.raises(DataValidationError, match=r"node_metrics-full\.csv: not ingested"):
        ingest_file(full, lake=lake)
    reports = ingest_paths([first, full, last], lake=lake, on_error="report")
    assert [r.ok for r in reports] == [True, False, True]
    assert "No space left on device" in (reports[1].error or "")
    assert "\n" not in (reports[1].error or "")
    assert sorted(lake.read("node_metrics")["qps_read"]) == [100.0, 102.0]


def test_a_line_longer_than_a_block_is_one_row(
    tmp_path: Path, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "_CSV_BLOCK_BYTES", 1024)
    long = _line(1, node="n" * 5000)
    path = _write_csv(tmp_path / "node_metrics.csv", [_line(0), long, _line(2)])
    path.write_bytes(path.read_bytes().rstrip(b"\n") + b"\n" + _line(3, node="m" * 3000).encode())
    report = ingest_file(path, lake=lake, now=NOW)
    assert (report.rows_in, report.rows_good, report.rows_quarantined) == (4, 4, 0)
    assert sorted(lake.read("node_metrics")["node"].str.len()) == [2, 2, 3000, 5000]


def _cli(*args: str) -> Result:
    """``replicast ingest`` run in-process; stdout and stderr both in ``output``."""
    from serving.cli import app

    return CliRunner().invoke(app, ["ingest", *args], env={"COLUMNS": "300"})


def test_a_symlink_loop_is_refused_by_name_and_the_other_inputs_land(
    tmp_path: Path, lake: Lake
) -> None:
    (tmp_path / "b.csv").symlink_to("a.csv")
    (tmp_path / "a.csv").symlink_to("b.csv")
    good = _write_csv(tmp_path / "node_metrics.csv", [_line(0), _line(1)])
    assert len(expand_paths([tmp_path / "a.csv", tmp_path / "b.csv", good])) == 3
    result = _cli("-s", "a.csv", "-s", str(good))
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output and "RuntimeError" not in result.output
    assert "error: a.csv: symlink loop" in result.output
    assert len(lake.read("node_metrics")) == 2


@pytest.mark.parametrize(
    "uri",
    [
        "mysql://u:SECRET@127.0.0.1/db",
        "prometheus://u:SECRET@",
        "mysql://127.0.0.1/db?password=SECRET",
    ],
    ids=["unknown-scheme", "prometheus-no-host", "query-password"],
)
def test_a_refused_uri_never_shows_its_password(uri: str, lake: Lake) -> None:
    result = _cli("-s", uri)
    assert result.exit_code == 7, result.output  # SourceError
    assert "refused" in result.output
    assert "SECRET" not in result.output + result.stderr


def test_a_failed_report_masks_the_secrets_of_its_source_and_error() -> None:
    report = ingest.failed_report(
        "postgresql://u:SECRET@h/db", None, SourceError("postgresql://u:SECRET@h/db: down")
    )
    assert "SECRET" not in report.source + str(report.error)


def test_blank_lines_are_counted_and_a_gzip_bomb_of_them_stays_small(
    tmp_path: Path, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every blank line is in ``rows in`` and quarantined; past the cap they share one row."""
    monkeypatch.setattr(ingest, "MAX_BLANK_ROWS", 3)
    small = _write_csv(tmp_path / "node_metrics.csv", [_line(0), "", "", _line(1), "\r", ""])
    report = ingest_file(small, lake=lake, now=NOW)
    assert (report.rows_in, report.rows_good, report.rows_quarantined) == (6, 2, 4)
    q = lake.read("quarantine").sort_values("row")
    assert q["row"].tolist() == [2, 3, 5, 6]
    assert q["reason"].tolist()[:3] == ["empty row"] * 3
    assert q["reason"].iloc[3].startswith("empty row; 0 more blank line(s) up to row 6")

    n = 3_000_000
    bomb = tmp_path / "segment_access.csv.gz"
    body = ",".join(SEGMENT_ACCESS.names) + "\n2026-01-01T00:00Z,orders,s1,1,0,0,100\n"
    bomb.write_bytes(gzip.compress((body + "\n" * n + body.split("\n")[1]).encode(), 1))
    report = ingest_file(bomb, lake=lake, now=NOW)
    assert report.rows_in == n + 2
    assert (report.rows_good, report.rows_quarantined) == (1, n + 1)  # the last row repeats
    q = lake.read("quarantine")
    q = q[q["source"] == str(bomb.resolve())]
    assert len(q) == 3 + 1 + 1  # 3 blank lines, one summary, one duplicate
    assert f"{n - 3 - 1} more blank line(s) up to row {n + 1}" in " ".join(q["reason"])


def test_a_compressed_input_that_inflates_past_the_limit_is_refused(
    tmp_path: Path, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "MAX_INFLATED_BYTES", 1 << 20)
    bomb = tmp_path / "node_metrics.csv.gz"
    bomb.write_bytes(gzip.compress((HEADER + "\n" + _line(0) + "\n" * (2 << 20)).encode()))
    with pytest.raises(DataValidationError, match="decompresses to more than 1,048,576 bytes"):
        ingest_file(bomb, lake=lake, now=NOW)
    assert lake.datasets() == []
    small = _write_csv(tmp_path / "small.csv", [_line(0)])
    small_gz = tmp_path / "node_metrics-small.csv.gz"
    small_gz.write_bytes(gzip.compress(small.read_bytes()))
    assert ingest_file(small_gz, lake=lake, now=NOW).rows_good == 1
