"""Ingest: CSV / Parquet files, the shipped sample or a source URI -> validated lake rows.

Every input is validated against its dataset schema (``forecasting.validation``):
good rows are merged into the dataset, bad rows go to the ``quarantine``
dataset with their source, row number, reasons and raw values. An input that
cannot be used at all (unreadable, corrupt, missing a required column) or
that cannot be written (disk full, any write error) raises
:class:`~forecasting.errors.DataValidationError` naming the file and the reason.

A CSV is read one record per physical line: every data line is counted in
``rows_in`` and either lands or is quarantined on its own, with its row number
(data row N is the file's line N + 1); blank lines past :data:`MAX_BLANK_ROWS`
per input are counted but share one summary quarantine row. A quoted value may hold commas and
doubled quotes but not a line break: a line whose quote does not close on the
same line is quarantined as an "unbalanced quote" and reading goes on with the
next line, so a stray ``"`` never swallows the lines after it. Blocks without
such trouble are parsed by Arrow in one go; only a block in trouble is split
into lines, and only its troubled lines are set aside.

Ingest is idempotent: the lake dedupes good rows on ``key + ts``; quarantine
rows are keyed on ``source + row + ts`` (``ts`` = the row's own timestamp) and
keep the ``quarantined_at`` of their first ingest, so the same input twice
gives the same lake. Sources are named by their resolved absolute path (or the
URI without its password), so relative paths from another directory match.
"""

from __future__ import annotations

import codecs
import csv
import glob
import gzip
import io
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from numpy.typing import NDArray

import pipelines
from forecasting.errors import DataValidationError, ReplicastError, SourceError
from forecasting.lake import Lake, read_parquet_verified
from forecasting.redact import redact
from forecasting.schemas import INPUT_SCHEMAS, Schema
from forecasting.settings import get_settings
from forecasting.validation import TimeBounds, ValidationResult, Validator, empty_quarantine
from pipelines import sources

if TYPE_CHECKING:
    from forecasting.settings import Settings

logger = logging.getLogger(__name__)

#: The shipped sample fleet, found relative to the installed package.
SAMPLE_DIR = Path(pipelines.__file__).resolve().parents[1] / "data" / "sample"

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: How many reasons an :class:`IngestReport` keeps as examples.
MAX_EXAMPLES = 5
#: Blank lines of one input quarantined as a row each; the rest share one summary row.
MAX_BLANK_ROWS = 10_000
#: A compressed input that inflates past this many bytes is refused (a decompression bomb).
MAX_INFLATED_BYTES = 10 << 30
_CSV_BLOCK_BYTES = 8 << 20
_REPLACEMENT = "\ufffd"
_UNBALANCED = "unbalanced quote: the line ends inside a quoted value (a '\"' never closed)"
_STRAY_CR = "a carriage return (\\r) inside the line would split it in two"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

#: ``progress(done, total)``: bytes of a CSV file, rows of a Parquet file or frame.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class IngestReport:
    """What happened to one input (a file, or one dataset of a source URI).

    Attributes:
        source: the resolved file path or the URI (password removed).
        dataset: the dataset the rows were validated against ("" if unknown).
        rows_in: data rows read: every line after a CSV's header, malformed ones included.
        rows_good: rows written to the dataset.
        rows_quarantined: rows written to ``quarantine``.
        reasons: the first few quarantine reasons, as ``"row N: reason"``.
        dropped_columns: unknown columns that were ignored.
        seconds: wall time spent.
        error: why the whole input was refused (then nothing was written).
    """

    source: str
    dataset: str
    rows_in: int = 0
    rows_good: int = 0
    rows_quarantined: int = 0
    reasons: tuple[str, ...] = field(default=())
    dropped_columns: tuple[str, ...] = field(default=())
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# -- frames ----------------------------------------------------------------------------------
def ingest_frame(
    frame: pd.DataFrame,
    *,
    dataset: str,
    source: str,
    lake: Lake,
    now: datetime | None = None,
    bounds: TimeBounds | None = None,
) -> IngestReport:
    """Validate ``frame`` as ``dataset`` and write good rows and quarantined rows to ``lake``.

    Args:
        frame: the rows (text or typed columns; unknown columns are dropped).
        dataset: an input dataset name (``node_metrics`` or ``segment_access``).
        source: where the rows come from (stored with quarantined rows).
        lake: the lake to write to.
        now: the clock for ``quarantined_at`` and the future bound; defaults to
            the current time.
        bounds: the accepted timestamps; default: the ``ingest`` settings.

    Returns:
        The counts and the first reasons.

    Raises:
        DataValidationError: unknown dataset, a required column is missing, or
            the lake could not be written (disk full...).
    """
    started = time.perf_counter()
    schema = schema_for(dataset, source)
    if len(frame.index) == 0:  # nothing to check (a source had no rows)
        return IngestReport(source=source, dataset=dataset, seconds=time.perf_counter() - started)
    validator = Validator(schema, source=source, now=now, bounds=bounds or settings_bounds())
    result = validator.validate(frame)
    _write(lake, dataset, result.good, result.quarantined, source)
    report = _report(source, dataset, len(frame), result, started)
    _log(report)
    return report


# -- files -----------------------------------------------------------------------------------
def ingest_file(
    path: str | Path,
    *,
    lake: Lake,
    dataset: str | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    bounds: TimeBounds | None = None,
) -> IngestReport:
    """Ingest one CSV (optionally gzipped) or Parquet file.

    CSV values are read as text, so that a mistyped number reaches validation
    (and quarantines its row) instead of changing the column's type; a line
    with the wrong number of fields or an unbalanced quote is quarantined too,
    on its own (one record per line, see the module doc). Parquet pages are
    checksum-verified.

    Args:
        path: the file.
        lake: the lake to write to.
        dataset: the dataset the file holds; default: from the file name
            (``node_metrics*.csv``) or else from its columns.
        now: the clock for ``quarantined_at`` and the future bound.
        progress: called with ``(done, total)`` while reading.
        bounds: the accepted timestamps; default: the ``ingest`` settings.

    Raises:
        DataValidationError: the file is missing, unreadable, corrupt, of an
            unknown type, or lacks a required column, or the lake could not be
            written (disk full...); the message names the file and the reason.
    """
    started = time.perf_counter()
    path = _resolved(Path(path))
    source = str(path)
    if not path.is_file():
        what = "no file matches this pattern" if glob.has_magic(source) else "no such file"
        raise DataValidationError(f"{source}: {what}")
    name = path.name.lower()
    bounds = bounds or settings_bounds()
    unlisted = 0  # quarantined lines without a row of their own
    if name.endswith(PARQUET_SUFFIXES):
        frame = read_parquet_verified(path)
        dataset = dataset or infer_dataset(path, list(frame.columns))
        validator = Validator(schema_for(dataset, source), source=source, now=now, bounds=bounds)
        result = validator.validate(frame)
        rows_in = len(frame)
        if progress is not None:
            progress(rows_in, rows_in)
    elif name.endswith(CSV_SUFFIXES):
        result, rows_in, unlisted, dataset = _validate_csv(path, dataset, now, progress, bounds)
    else:
        raise DataValidationError(
            f"{source}: unsupported file type; use {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
        )
    _write(lake, dataset, result.good, result.quarantined, source)
    report = _report(source, dataset, rows_in, result, started, unlisted)
    _log(report)
    return report


def ingest_paths(
    paths_or_globs: str | Path | Iterable[str | Path],
    *,
    lake: Lake,
    dataset: str | None = None,
    now: datetime | None = None,
    on_error: Literal["raise", "report"] = "raise",
    bounds: TimeBounds | None = None,
) -> list[IngestReport]:
    """Ingest files named by paths, directories (their CSV/Parquet files) or globs.

    Args:
        paths_or_globs: one or more paths / globs (``data/*.csv``, ``**`` works).
        lake: the lake to write to (stray temp files are cleaned first).
        dataset: force the dataset of every file; default: inferred per file.
        now: the clock for ``quarantined_at`` and the future bound (one value
            for the whole call).
        on_error: ``"raise"`` stops at the first refused file; ``"report"``
            records the error in that file's report and goes on.
        bounds: the accepted timestamps; default: the ``ingest`` settings.

    Returns:
        One report per file, in order.

    Raises:
        DataValidationError: a file is refused (only with ``on_error="raise"``).
    """
    if isinstance(paths_or_globs, str | Path):
        paths_or_globs = [paths_or_globs]
    lake.clean_temp()
    now = now or pd.Timestamp.now(tz="UTC")
    bounds = bounds or settings_bounds()
    reports = []
    for path in expand_paths(paths_or_globs):
        try:
            reports.append(ingest_file(path, lake=lake, dataset=dataset, now=now, bounds=bounds))
        except ReplicastError as exc:
            if on_error == "raise":
                raise
            reports.append(failed_report(str(path), dataset, exc))
    return reports


def ingest_sample(
    lake: Lake, *, now: datetime | None = None, bounds: TimeBounds | None = None
) -> list[IngestReport]:
    """Ingest the shipped sample fleet (``data/sample/*.parquet``).

    Raises:
        DataValidationError: the sample directory holds no Parquet file.
    """
    return ingest_paths(sample_paths(), lake=lake, now=now, bounds=bounds)


def sample_paths(sample_dir: Path | None = None) -> list[Path]:
    """The sample's Parquet files (default directory: :data:`SAMPLE_DIR`).

    Raises:
        DataValidationError: there are none.
    """
    sample_dir = SAMPLE_DIR if sample_dir is None else sample_dir
    files = sorted(sample_dir.glob("*.parquet"))
    if not files:
        raise DataValidationError(
            f"{sample_dir}: no sample Parquet files; regenerate them with `make simulate-sample`"
        )
    return files


def expand_paths(paths_or_globs: Iterable[str | Path]) -> list[Path]:
    """Expand globs and directories into files, in order, without repeats.

    A name that matches nothing is kept as is, so that ingesting it reports
    "no such file" under its own name.
    """
    out: list[Path] = []
    for spec in paths_or_globs:
        text = str(spec)
        if glob.has_magic(text):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            out.extend(m for m in matches if m.is_file()) if matches else out.append(Path(text))
        elif Path(text).is_dir():
            out.extend(
                p
                for p in sorted(Path(text).iterdir())
                if p.is_file() and p.name.lower().endswith(CSV_SUFFIXES + PARQUET_SUFFIXES)
            )
        else:
            out.append(Path(text))
    seen: set[Path] = set()
    unique = []
    for path in out:
        try:
            key = path.expanduser().resolve()
        except (OSError, RuntimeError):  # a symlink loop: ingest_file refuses it by name
            key = path.expanduser().absolute()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


# -- source URIs -----------------------------------------------------------------------------
def is_uri(spec: str) -> bool:
    """Whether ``spec`` is a scheme URI (``postgresql://``, ``prometheus://``...)."""
    return bool(_URI.match(spec)) and not spec.lower().startswith("file://")


def ingest_uri(
    uri: str,
    *,
    lake: Lake,
    settings: Settings,
    dataset: str | None = None,
    now: datetime | None = None,
) -> list[IngestReport]:
    """Snapshot a source URI through ``pipelines.sources`` and ingest each dataset it returns.

    Args:
        uri: ``postgresql://...``, ``prometheus://...`` or any scheme the sources know.
        lake: the lake to write to.
        settings: passed to ``pipelines.sources.snapshot``.
        dataset: keep only this dataset of the snapshot.
        now: the clock for ``quarantined_at`` and the future bound.

    Raises:
        SourceError: the source failed or cannot be reached.
        DataValidationError: a returned frame lacks a required column, or the
            lake could not be written.
    """
    frames = sources.snapshot(uri, settings)
    if dataset is not None:
        if dataset not in frames:
            raise SourceError(
                f"{redact(uri)}: the source returned no {dataset!r} rows "
                f"(it returned {sorted(frames)}); drop --dataset or pick one of those"
            )
        frames = {dataset: frames[dataset]}
    now = now or pd.Timestamp.now(tz="UTC")
    bounds = time_bounds(settings)
    return [
        ingest_frame(frame, dataset=name, source=redact(uri), lake=lake, now=now, bounds=bounds)
        for name, frame in frames.items()
    ]


# -- helpers ---------------------------------------------------------------------------------
def time_bounds(settings: Settings) -> TimeBounds:
    """The timestamps ``settings`` accept (``[ingest] ts_floor``, ``ts_future_tolerance``)."""
    return TimeBounds(
        floor=settings.ingest.ts_floor, future_tolerance=settings.ingest.ts_future_tolerance
    )


def settings_bounds() -> TimeBounds:
    """:func:`time_bounds` of the process settings (:func:`forecasting.settings.get_settings`)."""
    return time_bounds(get_settings())


def schema_for(dataset: str, source: str = "") -> Schema:
    """The input schema named ``dataset``.

    Raises:
        DataValidationError: no such input dataset.
    """
    try:
        return INPUT_SCHEMAS[dataset]
    except KeyError:
        where = f"{source}: " if source else ""
        raise DataValidationError(
            f"{where}unknown dataset {dataset!r}; ingest accepts {sorted(INPUT_SCHEMAS)}"
        ) from None


def infer_dataset(path: Path, columns: list[str]) -> str:
    """The dataset a file holds: from its name (``node_metrics*``) or else its columns.

    Raises:
        DataValidationError: neither tells (the message suggests ``--dataset``).
    """
    stem = path.name.lower()
    for suffix in (*CSV_SUFFIXES, *PARQUET_SUFFIXES):
        stem = stem.removesuffix(suffix)
    for name in INPUT_SCHEMAS:
        if stem == name or any(stem.startswith(name + sep) for sep in "-_."):
            return name
    matches = [s.name for s in INPUT_SCHEMAS.values() if set(s.required) <= set(columns)]
    if len(matches) == 1:
        return matches[0]
    raise DataValidationError(
        f"{path}: cannot tell which dataset this file holds (its columns {columns[:20]} "
        f"match {matches or 'none'} of {sorted(INPUT_SCHEMAS)}); name the file after the "
        "dataset or pass --dataset"
    )


def failed_report(source: str, dataset: str | None, exc: Exception) -> IngestReport:
    """The report of an input that was refused as a whole (a URI's secrets masked)."""
    return IngestReport(source=redact(source), dataset=dataset or "", error=redact(str(exc)))


def _report(
    source: str,
    dataset: str,
    rows_in: int,
    result: ValidationResult,
    started: float,
    unlisted: int = 0,
) -> IngestReport:
    """``unlisted``: quarantined lines without a quarantine row of their own (blank lines)."""
    q = result.quarantined.sort_values("row", kind="stable").head(MAX_EXAMPLES)
    examples = tuple(f"row {r}: {why}" for r, why in zip(q["row"], q["reason"], strict=True))
    return IngestReport(
        source=source,
        dataset=dataset,
        rows_in=rows_in,
        rows_good=len(result.good),
        rows_quarantined=len(result.quarantined) + unlisted,
        reasons=examples,
        dropped_columns=result.dropped_columns,
        seconds=time.perf_counter() - started,
    )


def _log(report: IngestReport) -> None:
    logger.info(
        "ingested %s as %s: %d rows, %d good, %d quarantined in %.2f s",
        report.source,
        report.dataset,
        report.rows_in,
        report.rows_good,
        report.rows_quarantined,
        report.seconds,
    )
    if report.rows_quarantined:
        logger.warning(
            "%s: %d row(s) quarantined (dataset 'quarantine'); first: %s",
            report.source,
            report.rows_quarantined,
            report.reasons[0],
        )


def _write(
    lake: Lake, dataset: str, good: pd.DataFrame, quarantined: pd.DataFrame, source: str
) -> None:
    """Merge the good rows, then the quarantined rows, into the lake.

    Raises:
        DataValidationError: a write failed (disk full, read-only, I/O error);
            each lake file is whole (old or new), the input can be ingested again.
    """
    try:
        if not good.empty:
            lake.write(dataset, good)
        if not quarantined.empty:
            lake.write("quarantine", _keep_first_quarantine_time(lake, quarantined))
    except OSError as exc:
        raise DataValidationError(
            f"{source}: not ingested: writing the lake failed: {_first_line(exc)}; every lake "
            "file is whole (old or new) but this input may be only partly in; ingest it again "
            "once fixed (ingest is idempotent)"
        ) from exc


def _keep_first_quarantine_time(lake: Lake, rows: pd.DataFrame) -> pd.DataFrame:
    """Give rows already in the quarantine (same source, row, ts, reason, raw) their old time.

    Re-ingesting the same bad input then rewrites identical rows.
    """
    same = ["source", "row", "ts", "reason", "raw"]
    end = rows["ts"].max() + pd.Timedelta(1, "ns")
    existing = lake.read("quarantine", start=rows["ts"].min(), end=end)
    if existing.empty or "quarantined_at" not in existing.columns:
        return rows
    existing = existing[existing["source"].isin(rows["source"].unique())]
    if existing.empty:
        return rows
    old = existing[[*same, "quarantined_at"]].rename(columns={"quarantined_at": "_old"})
    old = old.assign(
        ts=old["ts"].astype("datetime64[ns, UTC]"),
        _old=old["_old"].astype("datetime64[ns, UTC]"),
        row=old["row"].astype("int64"),
    ).drop_duplicates(subset=same, keep="first")
    merged = rows.merge(old, on=same, how="left", validate="many_to_one")
    merged["quarantined_at"] = merged["_old"].fillna(merged["quarantined_at"])
    return merged.drop(columns="_old")[rows.columns]


# -- CSV -------------------------------------------------------------------------------------
def _validate_csv(
    path: Path,
    dataset: str | None,
    now: datetime | None,
    progress: Progress | None,
    bounds: TimeBounds | None = None,
) -> tuple[ValidationResult, int, int, str]:
    """The validated CSV, its data line count, the quarantined lines without a row, its dataset."""
    source = str(path)
    total = path.stat().st_size
    with ExitStack() as stack:
        raw_fh = stack.enter_context(open(path, "rb"))
        fh: IO[bytes] = raw_fh
        if path.name.lower().endswith(".gz"):
            gz = stack.enter_context(gzip.GzipFile(fileobj=raw_fh))
            fh = io.BufferedReader(_Capped(gz, MAX_INFLATED_BYTES, source))
        try:
            names = _csv_header(fh, source)
            dataset = dataset or infer_dataset(path, names)
            validator = Validator(
                schema_for(dataset, source),
                source=source,
                now=now,
                bounds=bounds or settings_bounds(),
            )
            validator.check_columns(names)
            goods, bads = [], []
            rows_in = unlisted = 0
            for result, n, summarised in _csv_chunks(fh, names, validator):
                goods.append(result.good)
                bads.append(result.quarantined)
                rows_in += n
                unlisted += summarised
                if progress is not None:
                    progress(min(raw_fh.tell(), total), total)
        except (OSError, EOFError, pa.ArrowException, UnicodeDecodeError, csv.Error) as exc:
            raise DataValidationError(f"{source}: unreadable CSV file: {_first_line(exc)}") from exc
    good = pd.concat(goods, ignore_index=True) if goods else _empty_good(validator)
    bad = [b for b in bads if not b.empty]
    quarantined = pd.concat(bad, ignore_index=True) if bad else empty_quarantine()
    extra = tuple(n for n in names if n not in validator.schema.names)
    return ValidationResult(good, quarantined, extra), rows_in, unlisted, dataset


def _csv_header(fh: IO[bytes], source: str) -> list[str]:
    line = fh.readline()
    if not line.strip():
        raise DataValidationError(f"{source}: empty CSV file (no header line)")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataValidationError(
            f"{source}: the header line is not UTF-8 text; is this really a CSV file?"
        ) from exc
    fields = next(csv.reader(io.StringIO(text)), [])
    names = [f.strip() for f in fields]
    if not any(names):
        raise DataValidationError(f"{source}: the CSV header line names no columns")
    return names


def _csv_chunks(
    fh: IO[bytes], names: list[str], validator: Validator
) -> Iterator[tuple[ValidationResult, int, int]]:
    """Validate the CSV body in blocks of whole lines.

    Yields each block's result, its line count and how many of its quarantined
    lines have no quarantine row of their own: blank lines past
    :data:`MAX_BLANK_ROWS` are counted, and share one summary row at the end.
    """
    body = _Utf8Repair(fh, chunk=_CSV_BLOCK_BYTES)
    first = 1  # data row number of the block's first line
    blank_rows = 0  # blank lines quarantined as a row each so far
    extra: list[int] = []  # the first and last row of the blank lines past the cap
    n_extra = 0
    for block in _line_blocks(body, _CSV_BLOCK_BYTES):
        lines = block.count(b"\n") + (not block.endswith(b"\n"))
        numbers = np.arange(first, first + lines, dtype="int64")
        block, numbers, blanks = _drop_blank_lines(block, numbers)
        frame, rows, rejected = _parse_block(block, names, numbers, validator.source)
        if len(blanks):
            own = blanks[: max(MAX_BLANK_ROWS - blank_rows, 0)]
            blank_rows += len(own)
            rejected += [(int(r), "", "empty row") for r in own]
            if len(own) < len(blanks):
                extra = [extra[0] if extra else int(blanks[len(own)]), int(blanks[-1])]
                n_extra += len(blanks) - len(own)
        problems = _not_utf8(frame) if body.replaced else []
        result = validator.validate(frame, rows=rows, problems=problems)
        if rejected:
            bad = validator.reject_lines(*zip(*rejected, strict=True))
            result = ValidationResult(
                result.good,
                pd.concat([result.quarantined, bad], ignore_index=True),
                result.dropped_columns,
            )
        yield result, lines, 0
        first += lines
    if n_extra:
        why = (
            f"empty row; {n_extra - 1} more blank line(s) up to row {extra[1]} are counted "
            "with this one, not quarantined one by one"
        )
        summary = validator.reject_lines([extra[0]], [""], [why])
        yield ValidationResult(_empty_good(validator), summary), 0, n_extra - 1


def _drop_blank_lines(
    block: bytes, numbers: NDArray[np.int64]
) -> tuple[bytes, NDArray[np.int64], NDArray[np.int64]]:
    """Take the blank lines (``\\n``, ``\\r\\n``) out of ``block``.

    Returns the block without them, the kept lines' numbers and the blank lines'
    (``numbers``: one row number per line of ``block``).
    """
    if not (block.startswith((b"\n", b"\r\n")) or b"\n\n" in block or b"\n\r\n" in block):
        return block, numbers, numbers[:0]
    data = np.frombuffer(block, dtype=np.uint8)
    stops = np.flatnonzero(data == ord("\n")) + 1  # each terminated line's end
    starts = np.concatenate(([0], stops[:-1]))
    sizes = stops - starts
    blank = (sizes == 1) | ((sizes == 2) & (data[starts] == ord("\r")))
    if len(numbers) > len(stops):  # an unterminated last line, never blank
        blank = np.append(blank, False)
        sizes = np.append(sizes, len(block) - (stops[-1] if len(stops) else 0))
    kept = data[np.repeat(~blank, sizes)].tobytes()
    return kept, numbers[~blank], numbers[blank]


def _line_blocks(stream: io.RawIOBase, size: int) -> Iterator[bytes]:
    """The stream in blocks of about ``size`` bytes, each ending at a line break (but the last).

    A line longer than ``size`` makes a longer block (its pieces are joined once).
    """
    pending: list[bytes] = []
    while data := stream.read(size):
        cut = data.rfind(b"\n") + 1
        if not cut:
            pending.append(data)
            continue
        yield b"".join([*pending, data[:cut]])
        pending = [data[cut:]]
    if rest := b"".join(pending):
        yield rest


#: A line set aside: its data row number, its text and why.
_Rejected = tuple[int, str, str]


def _parse_block(
    block: bytes, names: list[str], numbers: NDArray[np.int64], source: str
) -> tuple[pd.DataFrame, NDArray[np.int64], list[_Rejected]]:
    """Split a block of whole lines into records, exactly one per line.

    Returns the parsed rows, their data row numbers (``numbers``: one per line)
    and the lines set aside. Arrow parses the block in one go; if that does not
    give one record per line (a quote left open, a stray carriage return), the
    troubled lines are set aside and Arrow parses the others.

    Raises:
        DataValidationError: the line check and Arrow disagree (never seen; it
            refuses the file rather than misnumber or lose a row).
    """
    if not block:
        return pd.DataFrame(columns=names), numbers[:0], []
    lines = len(numbers)
    quoted, has_cr = b'"' in block, b"\r" in block
    if not quoted and not has_cr:  # no quote, no \r: each line is a record
        table, invalid = _arrow_records(block, names)
        if table.num_rows + len(invalid) != lines:
            raise _unsplit(source, numbers)
        return _numbered(table, invalid, numbers)
    if not has_cr or block.count(b"\r") == block.count(b"\r\n"):  # no line splits in two
        try:
            table, invalid = _arrow_records(block, names)
        except pa.ArrowInvalid:  # e.g. a quote still open at the end of the block
            pass
        else:
            # each record is one or more whole lines: as many records as lines means
            # one record per line, unless the last line's quote ran to the end
            body = block.removesuffix(b"\n")
            last = body[body.rfind(b"\n") + 1 :]
            if table.num_rows + len(invalid) == lines and _line_trouble(last) is None:
                return _numbered(table, invalid, numbers)
    texts = block.split(b"\n")
    if block.endswith(b"\n"):
        texts.pop()
    keep: list[int] = []
    rejected: list[_Rejected] = []
    for i, text in enumerate(texts):
        why = _line_trouble(text)
        if why is None:
            keep.append(i)
        else:
            rejected.append((int(numbers[i]), text.decode("utf-8", "replace"), why))
    if not keep:
        return pd.DataFrame(columns=names), numbers[:0], rejected
    table, invalid = _arrow_records(b"\n".join(texts[i] for i in keep) + b"\n", names)
    if table.num_rows + len(invalid) != len(keep):
        raise _unsplit(source, numbers)
    frame, rows, wrong_width = _numbered(table, invalid, numbers[keep])
    return frame, rows, wrong_width + rejected


def _unsplit(source: str, numbers: NDArray[np.int64]) -> DataValidationError:
    return DataValidationError(
        f"{source}: data rows {numbers[0]}..{numbers[-1]} could not be split into one "
        "record per line"
    )


def _arrow_records(data: bytes, names: list[str]) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """Parse CSV lines with Arrow, every value as text.

    Also returns the records of the wrong width as ``(position, text, reason)``.
    """
    invalid: list[tuple[int, str, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        why = f"row has {row.actual_columns} field(s), the header has {row.expected_columns}"
        invalid.append((row.number - 1, row.text, why))  # numbered from 1 (use_threads off)
        return "skip"

    table = pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(
            # one Arrow block: its chunker would cut inside an open quote
            column_names=names,
            use_threads=False,
            block_size=max(len(data), 1 << 20),
        ),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=True
        ),
    )
    return table, invalid


def _numbered(
    table: pa.Table, invalid: list[tuple[int, str, str]], numbers: NDArray[np.int64]
) -> tuple[pd.DataFrame, NDArray[np.int64], list[_Rejected]]:
    """The parsed rows and their row numbers (``numbers``: one per record, in order)."""
    wrong = np.zeros(len(numbers), dtype=bool)
    wrong[[at for at, _, _ in invalid]] = True
    rejected = [(int(numbers[at]), text, why) for at, text, why in invalid]
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)  # no Python strings made
    return frame, numbers[~wrong], rejected


def _line_trouble(line: bytes) -> str | None:
    """Why one line is not one CSV record by itself (None if it is)."""
    line = line.removesuffix(b"\r")
    if b'"' not in line and b"\r" not in line:
        return None
    if _RECORD.fullmatch(line):
        return None
    return _STRAY_CR if _RECORD_ANY_CR.fullmatch(line) else _UNBALANCED


def _record_pattern(ends: bytes) -> re.Pattern[bytes]:
    """One CSV record on one line as Arrow splits it; the bytes ``ends`` end an unquoted value.

    A field is empty, unquoted (quotes inside are literal) or quoted (``""``
    is a quote; after the closing quote the rest up to the comma is literal).
    The quoted part is possessive, so a line is matched in one pass.
    """
    plain = b"[^," + ends + b"]"
    field = b'(?:"(?:[^"]|"")*+"' + plain + b'*|[^",' + ends + b"]" + plain + b"*)?"
    return re.compile(field + b"(?:," + field + b")*")


_RECORD = _record_pattern(b"\r")
_RECORD_ANY_CR = _record_pattern(b"")


class _Capped(io.RawIOBase):
    """A stream that refuses its input once more than ``limit`` bytes were read from it."""

    def __init__(self, inner: IO[bytes], limit: int, source: str) -> None:
        super().__init__()
        self._inner = inner
        self._limit = limit
        self._source = source
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(min(len(target), self._limit + 1 - self._read))
        self._read += len(data)
        if self._read > self._limit:
            raise DataValidationError(
                f"{self._source}: decompresses to more than {self._limit:,} bytes; refused as "
                "a likely decompression bomb (split it, or ingest it uncompressed)"
            )
        target[: len(data)] = data
        return len(data)


class _Utf8Repair(io.RawIOBase):
    """A byte stream that replaces bytes that are not UTF-8 with U+FFFD (and counts them).

    Arrow's CSV reader refuses a whole file for one line of binary junk; after
    this repair the junk is an ordinary bad value (or malformed line) that
    quarantines only its row.
    """

    def __init__(self, inner: IO[bytes], chunk: int = 1 << 20) -> None:
        super().__init__()
        self._inner = inner
        self._chunk = chunk
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = memoryview(b"")
        self._eof = False
        self.replaced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer and not self._eof:
            data = self._inner.read(self._chunk)
            self._eof = not data
            text = self._decoder.decode(data, final=self._eof)
            self.replaced += text.count(_REPLACEMENT)
            self._buffer = memoryview(text.encode("utf-8"))
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def _not_utf8(frame: pd.DataFrame) -> list[pd.Series]:
    """A reason for each value holding a replaced (non UTF-8) byte."""
    problems = []
    for name in frame.columns:
        hit = frame[name].str.contains(_REPLACEMENT, regex=False).fillna(False).to_numpy(bool)
        if hit.any():
            problems.append(
                pd.Series(f"{name}: not UTF-8 text", index=np.flatnonzero(hit), dtype=object)
            )
    return problems


def _empty_good(validator: Validator) -> pd.DataFrame:
    return validator.validate(pd.DataFrame(columns=validator.schema.names), rows=np.array([])).good


def _resolved(path: Path) -> Path:
    """``path`` made absolute with its symlinks followed.

    Raises:
        DataValidationError: a symlink loop (``Path.resolve`` raises ``RuntimeError``
            before Python 3.13, ``OSError`` after) or another unresolvable path.
    """
    try:
        return path.expanduser().resolve()
    except RuntimeError:
        raise DataValidationError(
            f"{path}: symlink loop (a link that points back to itself)"
        ) from None
    except OSError as exc:
        raise DataValidationError(f"{path}: {exc.strerror or exc}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ = [
    "SAMPLE_DIR",
    "IngestReport",
    "expand_paths",
    "failed_report",
    "infer_dataset",
    "ingest_file",
    "ingest_frame",
    "ingest_paths",
    "ingest_sample",
    "ingest_uri",
    "is_uri",
    "sample_paths",
    "settings_bounds",
    "time_bounds",
]
