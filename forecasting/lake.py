"""The Parquet lake: ``<root>/<dataset>/date=YYYY-MM-DD/part-<uuid>.parquet``.

Every write is atomic and idempotent. A day partition is rewritten whole: the
existing rows and the new ones are merged, deduplicated on the dataset's key
plus ``ts`` (the newest row wins), written to a temp file beside the target,
fsynced, renamed over the old file and the directory fsynced. A crash leaves
the old partition or the new one, never half of each; the same rows written
twice give the same lake. Pages carry checksums and reads verify them, so a
flipped byte is an error, not a wrong number.

Writers of a dataset hold its lock (``<dataset>/.lock``, ``flock``) for the
whole merge; :meth:`Lake.clean_temp` removes a crashed writer's temp files only
under that lock, so it never deletes the temp file of a writer in flight. New
directories (the root, a dataset, a ``date=`` partition) are fsynced into
their parent when made.
"""

from __future__ import annotations

import fcntl
import logging
import uuid
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from forecasting.durable import TMP_SUFFIX, atomic_write, make_dirs_durable
from forecasting.errors import DataValidationError
from forecasting.schemas import dedupe_key

if TYPE_CHECKING:  # pandas loads only in the methods that take or give frames
    import pandas as pd

logger = logging.getLogger(__name__)
_EPOCH = date(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_NAMESPACE = uuid.UUID("6f1c2d55-5a63-4a5e-9a57-0c8f3f2b9e11")


@dataclass(frozen=True)
class WriteResult:
    dataset: str
    rows_in: int
    partitions: int
    rows_total: int


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` (zstd, page checksums) with :func:`durable.atomic_write`."""
    with atomic_write(path, "wb") as fh:
        pq.write_table(table, fh, compression="zstd", write_page_checksum=True)


def read_table_verified(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Read a Parquet file as an Arrow table, verifying page checksums; a corrupt file
    names itself. (One file through ``ParquetFile``: ``pq.read_table`` would load
    ``pyarrow.dataset``, which imports pandas.)"""
    try:
        with pq.ParquetFile(path, page_checksum_verification=True) as parquet:
            table: pa.Table = parquet.read(columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise DataValidationError(f"{path}: unreadable or corrupt Parquet file: {exc}") from exc
    return table


def read_parquet_verified(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet file, verifying page checksums; a corrupt file names itself."""
    frame: pd.DataFrame = read_table_verified(path, columns).to_pandas()  # pyarrow is untyped
    return frame


class Lake:
    """Partitioned Parquet datasets under one root directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, dataset: str) -> Path:
        return self.root / dataset

    def datasets(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def clean_temp(self) -> int:
        """Remove temp files left by crashed writers (``durable.TMP_SUFFIX``); returns how many.

        Each dataset is cleaned under its writers' lock, taken without waiting:
        a dataset whose lock is held has a writer in flight, and its temp files
        are that writer's; it is skipped (the next clean-up gets its leftovers).
        A dataset that cannot be locked (read-only lake) is skipped too: the
        next write there fails and says why.
        """
        removed = 0
        for dataset in self.datasets():
            try:
                with self._locked(dataset, wait=False) as held:
                    if held:
                        for tmp in self.path(dataset).rglob(f"*{TMP_SUFFIX}"):
                            tmp.unlink(missing_ok=True)
                            removed += 1
            except OSError as exc:
                logger.warning("%s: temp files not cleaned: %s", self.path(dataset), exc)
        return removed

    @contextmanager
    def _locked(self, dataset: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold ``dataset``'s writer lock; yields False if ``wait`` is off and it is taken."""
        directory = self.path(dataset)
        make_dirs_durable(directory)
        with open(directory / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # LOCK_NB and another process holds it
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _partition_file(self, dataset: str, day: date) -> Path:
        name = uuid.uuid5(_NAMESPACE, f"{dataset}/{day.isoformat()}")
        return self.path(dataset) / f"date={day.isoformat()}" / f"part-{name}.parquet"

    def write(self, dataset: str, frame: pd.DataFrame, key: list[str] | None = None) -> WriteResult:
        """Merge ``frame`` into ``dataset``, deduplicating on ``key`` (default: its schema key).

        ``frame`` must have a timezone-aware ``ts`` column; it is stored in UTC.
        """
        import pandas as pd

        if "ts" not in frame.columns:
            raise DataValidationError(f"{dataset}: frame has no 'ts' column")
        if frame.empty:
            return WriteResult(dataset, 0, 0, 0)
        ts = pd.to_datetime(frame["ts"])
        if ts.dt.tz is None:
            raise DataValidationError(f"{dataset}: 'ts' must be timezone-aware (UTC)")
        frame = frame.assign(ts=ts.dt.tz_convert("UTC"))
        key = key or dedupe_key(dataset)
        missing = [k for k in key if k not in frame.columns]
        if missing:
            raise DataValidationError(f"{dataset}: key column(s) {missing} missing from frame")
        total = 0
        days = frame["ts"].dt.date
        with self._locked(dataset):
            for day, part in frame.groupby(days, sort=True):
                target = self._partition_file(dataset, day)
                if target.exists():
                    part = pd.concat([read_parquet_verified(target), part], ignore_index=True)
                merged = (
                    part.drop_duplicates(subset=key, keep="last")
                    .sort_values(key[::-1][:1] + key[:-1], kind="stable")
                    .reset_index(drop=True)
                )
                write_parquet_atomic(pa.Table.from_pandas(merged, preserve_index=False), target)
                total += len(merged)
        return WriteResult(dataset, len(frame), days.nunique(), total)

    def write_table(
        self, dataset: str, table: pa.Table, key: list[str] | None = None
    ) -> WriteResult:
        """:meth:`write` without pandas, for an Arrow table: the same partition files, lock,
        atomic rewrite and dedupe (the last row of each key wins; rows sorted by ``ts``, then
        the rest of the key).

        ``table`` must have a timezone-aware ``ts`` column; it is stored in UTC (ns, as
        :meth:`write` stores it).
        """
        if "ts" not in table.column_names:
            raise DataValidationError(f"{dataset}: table has no 'ts' column")
        if table.num_rows == 0:
            return WriteResult(dataset, 0, 0, 0)
        ts_type = table.schema.field("ts").type
        if not pa.types.is_timestamp(ts_type) or ts_type.tz is None:
            raise DataValidationError(f"{dataset}: 'ts' must be timezone-aware (UTC)")
        ts = table["ts"].cast(pa.timestamp("ns", "UTC"))
        table = table.set_column(table.schema.get_field_index("ts"), "ts", ts)
        key = key or dedupe_key(dataset)
        missing = [k for k in key if k not in table.column_names]
        if missing:
            raise DataValidationError(f"{dataset}: key column(s) {missing} missing from table")
        # rows by UTC day (days since the epoch), in Python: pyarrow's conversions of Python
        # values (pa.array, pa.scalar) and its group_by import pandas
        days: dict[int, list[int]] = {}
        epoch_days = ts.cast(pa.timestamp("ns")).cast(pa.date32(), safe=False).cast(pa.int32())
        for row, day in enumerate(epoch_days.to_pylist()):
            days.setdefault(day, []).append(row)
        total = 0
        with self._locked(dataset):
            for day, rows in sorted(days.items()):
                part = table.take(_int64s(rows))
                target = self._partition_file(dataset, _EPOCH + timedelta(days=day))
                if target.exists():
                    part = pa.concat_tables(
                        [read_table_verified(target), part], promote_options="permissive"
                    )
                merged = _keep_last(part, key, sort_by=key[::-1][:1] + key[:-1])
                write_parquet_atomic(merged, target)
                total += merged.num_rows
        return WriteResult(dataset, table.num_rows, len(days), total)

    def partitions(
        self, dataset: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> list[Path]:
        directory = self.path(dataset)
        if not directory.is_dir():
            return []
        if start is not None or end is not None:
            import pandas as pd
        out = []
        for part_dir in sorted(directory.glob("date=*")):
            day = date.fromisoformat(part_dir.name.removeprefix("date="))
            if start is not None and day < pd.Timestamp(start).date():
                continue
            if end is not None and day > pd.Timestamp(end).date():
                continue
            out.extend(sorted(part_dir.glob("part-*.parquet")))
        return out

    def read(
        self,
        dataset: str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """Rows of ``dataset`` with ``start <= ts < end`` (either bound optional)."""
        import pandas as pd

        start = _utc(start)
        end = _utc(end)
        files = self.partitions(dataset, start, end)
        if not files:
            return pd.DataFrame(columns=columns or [])
        cols = None if columns is None else list(dict.fromkeys(["ts", *columns]))
        frame = pd.concat([read_parquet_verified(f, cols) for f in files], ignore_index=True)
        if start is not None:
            frame = frame[frame["ts"] >= start]
        if end is not None:
            frame = frame[frame["ts"] < end]
        frame = frame.reset_index(drop=True)
        return frame if columns is None else frame[columns]


def _utc(value: pd.Timestamp | str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    import pandas as pd

    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _keep_last(table: pa.Table, key: list[str], sort_by: list[str]) -> pa.Table:
    """The last row of each ``key`` (in table order), stably sorted on ``sort_by``
    (pandas' ``drop_duplicates(keep="last")`` then ``sort_values(kind="stable")``)."""
    columns = [_comparable(table[k]).to_pylist() for k in key]
    last = {values: row for row, values in enumerate(zip(*columns, strict=True))}
    kept = table.take(_int64s(sorted(last.values())))
    return kept.take(pc.sort_indices(kept, sort_keys=[(c, "ascending") for c in sort_by]))


def _comparable(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Timestamps as int64 (``to_pylist`` of nanosecond timestamps needs pandas)."""
    return column.cast(pa.int64()) if pa.types.is_timestamp(column.type) else column


def _int64s(values: list[int]) -> pa.Array:
    """An int64 array built from its buffer (``pa.array`` of Python values imports pandas)."""
    data = array("q", values)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def table_from_rows(rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow table of ``rows`` (same keys; values str, bool, int, float or timezone-aware
    datetime, stored as ns UTC) built without pandas, as :meth:`Lake.write_table` takes it."""
    return pa.table({name: _column(name, [row[name] for row in rows]) for name in rows[0]})


def _column(name: str, values: list[Any]) -> pa.Array:
    """One column of :func:`table_from_rows`, from its buffers."""
    kinds = {type(v) for v in values}
    if kinds <= {str}:
        data = [v.encode() for v in values]
        offsets = array("i", [0])
        for item in data:
            offsets.append(offsets[-1] + len(item))
        buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
        return pa.Array.from_buffers(pa.string(), len(values), buffers)
    if kinds <= {bool}:
        bits = bytearray((len(values) + 7) // 8)
        for i, v in enumerate(values):
            bits[i // 8] |= bool(v) << (i % 8)
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    if kinds <= {int}:
        return _int64s(values)
    if kinds <= {int, float}:
        floats = array("d", values)
        return pa.Array.from_buffers(pa.float64(), len(floats), [None, pa.py_buffer(floats)])
    if kinds <= {datetime} and all(v.tzinfo is not None for v in values):
        micros = [(v - _EPOCH_UTC) // timedelta(microseconds=1) for v in values]
        return _int64s([m * 1000 for m in micros]).view(pa.timestamp("ns", "UTC"))
    raise DataValidationError(f"column {name!r}: unsupported values {sorted(map(str, kinds))}")
