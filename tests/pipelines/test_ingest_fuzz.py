"""Fuzzing ingest: hostile CSVs through the real ``ingest_file`` into a real lake.

Whatever the bytes: no exception but a refusal of the whole file (and none at
all when the header is sound), every data line counted once (``rows in`` =
lines = good + quarantined, each one in the lake), the rows already in the
lake untouched, and no partition outside the accepted time range.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecasting.errors import DataValidationError
from forecasting.lake import Lake
from forecasting.schemas import NODE_METRICS
from pipelines.ingest import _arrow_records, _line_trouble, ingest_file

NOW = pd.Timestamp("2026-12-01 12:00", tz="UTC")
HEADER = ",".join(NODE_METRICS.names).encode()
HOSTILE = [
    b"",
    b'"',
    b'""',
    b'"a,b"',
    b'x"y',
    b'"open',
    b"NaN",
    b"nan",
    b"inf",
    b"-Infinity",
    b"1e400",
    b"-1e400",
    b"9" * 400,
    b"1e-400",
    b"\x00",
    b"a\x00b",
    b"\xff\xfe",
    b"\xc3",
    b"\r",
    b"2199-01-01T00:00:00Z",
    b"1999-01-01",
    b"0",
    b"-1",
    b"99999999999999999999",
    b"4102444800",
    b"0001-01-01",
    b"9999-12-31T23:59:59Z",
    b"2026-13-45",
    " \u00e9\u6f22 ".encode(),
]


def _values(i: int, cluster: str = "orders") -> list[bytes]:
    ts = pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(minutes=5 * i)
    return [
        ts.isoformat().encode(),
        cluster.encode(),
        b"us-east",
        f"n{i % 3}".encode(),
        b"primary" if i % 3 == 0 else b"replica",
        f"{0.1 + (i % 8) / 10:.2f}".encode(),
        str(100 + i).encode(),
        b"10",
        b"1000000000",
        b"0.5",
        b"4000",
        b"1.2",
    ]


@st.composite
def _line(draw: st.DrawFn) -> bytes:
    values = _values(draw(st.integers(0, 5000)))
    kind = draw(st.sampled_from(["good", "value", "quote", "fields", "bytes"]))
    if kind == "value":  # one hostile value
        at = draw(st.integers(0, len(values) - 1))
        values[at] = draw(st.sampled_from(HOSTILE) | st.binary(max_size=12))
    elif kind == "fields":  # too few or too many fields
        count = draw(st.integers(0, 20))
        values = (values * 2)[:count]
    line = b",".join(values)
    if kind == "quote":  # a stray quote anywhere
        at = draw(st.integers(0, len(line)))
        line = line[:at] + b'"' + line[at:]
    if kind == "bytes":
        line = draw(st.binary(max_size=80))
    return line


@st.composite
def _hostile_csv(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(_line(), max_size=25))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    end = draw(st.sampled_from([newline, b""]))
    return newline.join([HEADER, *lines]) + end


def _data_lines(content: bytes) -> int:
    """Lines after the header: one per line break, plus an unterminated last line."""
    body = content.split(b"\n", 1)[1] if b"\n" in content else b""
    return body.count(b"\n") + (not body.endswith(b"\n") and body != b"")


def _known_lake(root: Path) -> tuple[Lake, pd.DataFrame]:
    """A lake holding known good rows (their own cluster, which the fuzzer never writes)."""
    lake = Lake(root / "lake")
    known = root / "node_metrics-known.csv"
    known.write_bytes(b"\n".join([HEADER, *(b",".join(_values(i, "known")) for i in range(5))]))
    report = ingest_file(known, lake=lake, now=NOW)
    assert (report.rows_good, report.rows_quarantined) == (5, 0)
    return lake, lake.read("node_metrics")


def _check(lake: Lake, known: pd.DataFrame, path: Path, content: bytes, refusable: bool) -> None:
    path.write_bytes(content)
    try:
        report = ingest_file(path, lake=lake, now=NOW)
    except DataValidationError:
        if not refusable:
            raise
        report = None
    after = lake.read("node_metrics")
    pd.testing.assert_frame_equal(
        after[after["cluster"] == "known"].reset_index(drop=True), known, check_like=True
    )
    for dataset in ("node_metrics", "quarantine"):
        for part in lake.partitions(dataset):
            day = pd.Timestamp(part.parent.name.removeprefix("date="), tz="UTC")
            assert day == pd.Timestamp(0, tz="UTC") or (
                pd.Timestamp("2000-01-01", tz="UTC") <= day <= NOW + pd.Timedelta("1D")
            ), part
    if report is None:
        return
    assert report.rows_in == _data_lines(content)
    assert report.rows_in == report.rows_good + report.rows_quarantined
    assert len(after) == len(known) + report.rows_good
    quarantine = lake.read("quarantine", columns=["source", "row"])
    rows = quarantine.loc[quarantine["source"] == str(path.resolve()), "row"].tolist()
    assert len(rows) == len(set(rows)) == report.rows_quarantined


FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(content=_hostile_csv())
def test_hostile_csv_lines_are_each_accounted_for(tmp_path: Path, content: bytes) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as root:
        lake, known = _known_lake(Path(root))
        _check(lake, known, Path(root) / "node_metrics.csv", content, refusable=False)


@FUZZ
@given(content=st.binary(max_size=400) | st.builds(bytes.__add__, st.just(HEADER), st.binary()))
def test_random_bytes_are_refused_or_accounted_for(tmp_path: Path, content: bytes) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as root:
        lake, known = _known_lake(Path(root))
        _check(lake, known, Path(root) / "node_metrics.csv", content, refusable=True)


@settings(max_examples=500, deadline=None)
@given(line=st.text(alphabet='a,"\r\x00 ', max_size=14).map(str.encode))
def test_the_line_check_agrees_with_arrow(line: bytes) -> None:
    """A line passes the check exactly when Arrow reads it as one record of its own."""
    sentinel = {"a": "sentinel", "b": "line"}
    try:
        table, invalid = _arrow_records(line + b"\nsentinel,line\n", ["a", "b"])
    except pa.ArrowInvalid:
        own = False
    else:
        records = table.num_rows + len(invalid)
        own = records == 2 and table.to_pylist()[-1:] == [sentinel]
    assert (_line_trouble(line) is None) == own
