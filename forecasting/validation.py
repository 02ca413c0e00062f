"""Row-level validation of input frames against the dataset schemas (pure, no I/O).

A frame is checked as a whole first: a required column that is missing refuses
the whole input (:class:`~forecasting.errors.DataValidationError` naming the
source and the column). Then every row is checked, vectorised, and split into
``good`` rows (typed and normalised, ready for the lake) and ``quarantined``
rows (one row per rejected input row, every reason listed).

Decisions, so that callers and users can rely on them:

* **Row numbers** are 1-based data rows: row 1 is the first row after a CSV's
  header (the file's line 2: ingest reads a CSV one record per line) or the
  first row of a Parquet file or frame.
* **Timestamps** become timezone-aware UTC. ISO 8601 text with an offset
  (``2026-01-01T08:00+08:00``, ``...Z``) is converted; naive text is taken as
  UTC; plain numbers (numeric columns, or digit-only text that is not an ISO
  date) are epoch *seconds*. Anything else (``01/02/2026``) is quarantined with
  a hint to use ISO 8601. A time before the floor (default 2000-01-01: a zero,
  or an epoch value in the wrong unit) or later than the clock plus a tolerance
  (default 1 day: a typo'd year, a clock far off) is quarantined too, naming
  the column and the value, so that no far-past or far-future day partition
  is ever made (:class:`TimeBounds`, from the ``ingest`` settings).
* **Numbers**: a value that does not parse (``"abc"``), is missing or is not
  finite quarantines its row; the column itself stays numeric.
* **Text** values are stripped of surrounding blanks; empty text is missing.
* **Duplicates** of ``key + ts`` inside one input (after UTC normalisation):
  the first occurrence wins, later ones are quarantined as ``duplicate of row
  N``, so reading a file top-down never silently replaces a value. Only rows
  that pass every other check take part (a broken row never shadows a good
  one). The lake itself still lets a *later write* replace an earlier one.
* **Unknown columns** are dropped with a logged warning (unless the schema
  allows extras); they are kept in the quarantined rows' ``raw`` JSON.
* A quarantined row's ``ts`` is the row's own timestamp when it parses and
  lies within the bounds (else the Unix epoch), and ``quarantined_at`` is the
  clock; the quarantine is keyed on ``source + row + ts``, so re-validating the
  same input gives the same quarantine rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from forecasting.errors import DataValidationError
from forecasting.schemas import QUARANTINE, Column, Schema

logger = logging.getLogger(__name__)

EPOCH = pd.Timestamp(0, tz="UTC")
#: Timestamps before this are refused: they are zeros or epoch values in the wrong unit.
EARLIEST = pd.Timestamp("2000-01-01", tz="UTC")
#: Timestamps later than the clock plus this are refused (a typo'd year, a clock far off).
FUTURE_TOLERANCE = pd.Timedelta(days=1)
QUARANTINE_COLUMNS = list(dict.fromkeys([*QUARANTINE.names, "quarantined_at"]))

_CONTROL = r"[\x00-\x1f\x7f]"
_AWARE = r"\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_NUMBER = r"^[+-]?\d+(?:\.\d*)?$"
_YEAR = r"^\s*(\d{4,})-\d\d-\d\d"
#: The years a ``datetime64[ns]`` holds whole.
_FIRST_YEAR, _LAST_YEAR = 1678, 2261
# epoch seconds at or beyond this magnitude do not fit datetime64[ns] (pandas overflows)
_EPOCH_LIMIT_S = 9.2e9


@dataclass(frozen=True)
class TimeBounds:
    """The timestamps a row may have: from ``floor`` to the clock plus ``future_tolerance``."""

    floor: datetime = EARLIEST
    future_tolerance: timedelta = FUTURE_TOLERANCE


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validating one input (or one chunk of it).

    Attributes:
        good: rows that passed, with the schema's columns, typed, ``ts`` in UTC.
        quarantined: rejected rows with the columns of :data:`QUARANTINE_COLUMNS`.
        dropped_columns: unknown input columns that were dropped.
    """

    good: pd.DataFrame
    quarantined: pd.DataFrame
    dropped_columns: tuple[str, ...] = field(default=())


class Validator:
    """Validates the chunks of one input in order, remembering keys across chunks.

    Use one ``Validator`` per input (file or frame) so that duplicates are found
    across its chunks and row numbers continue; :func:`validate` is the
    one-chunk shortcut.

    Args:
        schema: the dataset contract.
        source: where the rows come from (a file path or URI); named in errors
            and stored with every quarantined row.
        now: the clock, stored as ``quarantined_at`` and the reference of the
            future bound. Defaults to the current time.
        bounds: the accepted timestamps (default: :class:`TimeBounds`).
    """

    def __init__(
        self,
        schema: Schema,
        *,
        source: str,
        now: datetime | None = None,
        bounds: TimeBounds | None = None,
    ) -> None:
        self.schema = schema
        self.source = source
        self.now = _utc_stamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
        bounds = bounds or TimeBounds()
        self.earliest = _utc_stamp(bounds.floor)
        self.latest = self.now + pd.Timedelta(bounds.future_tolerance)
        self._next_row = 1
        self._seen_keys = pd.Index([], dtype="uint64")
        self._seen_rows: NDArray[np.int64] = np.array([], dtype="int64")
        self._seen_full: NDArray[np.uint64] = np.array([], dtype="uint64")
        self._warned: set[str] = set()

    # -- whole-input checks -------------------------------------------------------------
    def check_columns(self, columns: Sequence[str]) -> tuple[str, ...]:
        """Refuse an input that lacks a required column; return the unknown columns.

        Raises:
            DataValidationError: a required column is missing or a name repeats.
        """
        names = [str(c) for c in columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise DataValidationError(
                f"{self.source}: column(s) {repeated} appear more than once in the header; "
                "rename or remove the repeats"
            )
        missing = [c for c in self.schema.required if c not in names]
        if missing:
            raise DataValidationError(
                f"{self.source}: required column {_names(missing)} missing for dataset "
                f"{self.schema.name!r} (found {names[:20]}); add the column, or pass the "
                "right --dataset if this file holds another dataset"
            )
        if self.schema.extra_allowed:
            return ()
        extra = tuple(n for n in names if n not in self.schema.names)
        new = [n for n in extra if n not in self._warned]
        if new:
            self._warned.update(new)
            logger.warning(
                "%s: dropping unknown column(s) %s (not in the %s schema)",
                self.source,
                new,
                self.schema.name,
            )
        return extra

    # -- rows -----------------------------------------------------------------------------
    def validate(
        self,
        frame: pd.DataFrame,
        rows: NDArray[np.int64] | None = None,
        problems: Sequence[pd.Series] = (),
    ) -> ValidationResult:
        """Validate the next chunk of the input.

        Args:
            frame: the raw rows (text or typed columns).
            rows: their 1-based data row numbers; default: continue after the
                previous chunk.
            problems: reasons the reader already found, each a Series of
                messages indexed by row position in ``frame`` (e.g. bytes that
                are not UTF-8); they come first in the row's reasons.

        Returns:
            The good rows and the quarantined rows of this chunk.

        Raises:
            DataValidationError: a required column is missing.
        """
        dropped = self.check_columns(list(frame.columns))
        n = len(frame)
        if rows is None:
            rows = np.arange(self._next_row, self._next_row + n, dtype="int64")
        rows = np.asarray(rows, dtype="int64")
        if n:
            self._next_row = int(rows.max()) + 1
        raw = frame if frame.index.equals(pd.RangeIndex(n)) else frame.reset_index(drop=True)
        values: dict[str, pd.Series] = {}
        found: list[pd.Series] = list(problems)  # raw has a RangeIndex: positions are labels
        for col in self.schema.columns:
            if col.name not in raw.columns:
                values[col.name] = _empty_typed(col, n)
                continue
            typed, reasons = _check_column(raw[col.name], col)
            if col.kind == "ts":
                typed, outside = self._check_bounds(raw[col.name], typed, col)
                reasons.extend(outside)
            values[col.name] = typed
            found.extend(reasons)
        typed_frame = pd.DataFrame(values, index=raw.index)
        reason = _join_reasons(found, n)
        flagged = reason.notna().to_numpy()
        if flagged.any() and len(raw.columns):
            empty = raw[flagged].isna().all(axis=1)
            reason.loc[empty.index[empty.to_numpy()]] = "empty row"
        reason = reason.fillna(self._duplicates(typed_frame, rows, ~flagged))
        bad = reason.notna().to_numpy()
        if not bad.any():
            return ValidationResult(typed_frame, empty_quarantine(), dropped)
        good = typed_frame[~bad].reset_index(drop=True)
        quarantined = self._quarantine_rows(
            raw[bad], rows[bad], typed_frame["ts"][bad], reason[bad]
        )
        return ValidationResult(good, quarantined, dropped)

    def _check_bounds(
        self, raw: pd.Series, typed: pd.Series, col: Column
    ) -> tuple[pd.Series, list[pd.Series]]:
        """Reasons for times before the floor or after the clock plus the tolerance.

        Those times become NaT, so that no quarantine row is filed under them.
        """
        reasons: list[pd.Series] = []
        early = (typed < self.earliest).to_numpy(bool)
        if early.any():
            reasons.append(
                col.name
                + ": "
                + _shown(raw[early])
                + f" is before {self.earliest:%Y-%m-%d} (a zero or wrongly scaled epoch value?)"
            )
        late = (typed > self.latest).to_numpy(bool)
        if late.any():
            reasons.append(
                col.name
                + ": "
                + _shown(raw[late])
                + f" is in the future (after {self.latest:%Y-%m-%dT%H:%M}Z, now + "
                + f"{_duration(self.latest - self.now)}; a wrong year or clock?)"
            )
        if early.any() or late.any():
            typed = typed.mask(early | late)
        return typed, reasons

    def reject_lines(
        self, rows: Sequence[int], texts: Sequence[str], reasons: Sequence[str]
    ) -> pd.DataFrame:
        """Quarantine rows that could not even be split into fields (malformed CSV lines).

        Args:
            rows: their 1-based data row numbers.
            texts: the raw text of each line (stored as a JSON string in ``raw``).
            reasons: why each line was rejected.
        """
        n = len(rows)
        return _quarantine_frame(
            ts=pd.Series([EPOCH] * n, dtype="datetime64[ns, UTC]"),
            dataset=self.schema.name,
            source=self.source,
            rows=np.asarray(rows, dtype="int64"),
            reasons=list(reasons),
            raw=[json.dumps(t, ensure_ascii=False) for t in texts],
            now=self.now,
        )

    def _duplicates(
        self, typed: pd.DataFrame, rows: NDArray[np.int64], mask: NDArray[np.bool_]
    ) -> pd.Series:
        """Reasons for the rows (among ``mask``) that repeat an earlier key + ts."""
        out = pd.Series(pd.NA, index=typed.index, dtype="object")
        cand = typed if mask.all() else typed[mask]
        if cand.empty:
            return out
        h_key = pd.util.hash_pandas_object(cand[self.schema.dedupe_key], index=False).to_numpy()
        h_full = pd.util.hash_pandas_object(cand, index=False).to_numpy()
        cand_rows = rows[mask]
        # first occurrence inside this chunk
        codes, _ = pd.factorize(h_key)
        _, first_idx = np.unique(codes, return_index=True)
        first_pos = first_idx[codes]
        first_row = cand_rows[first_pos]
        first_full = h_full[first_pos]
        is_dup = first_pos != np.arange(len(cand))
        # ... or in an earlier chunk
        # pandas-stubs type the target as an Index; pandas takes any array (no copy made)
        pos = self._seen_keys.get_indexer(h_key)  # type: ignore[arg-type]
        earlier = pos >= 0
        if earlier.any():
            first_row = np.where(earlier, self._seen_rows[pos], first_row)
            first_full = np.where(earlier, self._seen_full[pos], first_full)
            is_dup |= earlier
        if is_dup.any():
            same_as = first_row[is_dup].astype(str).astype(object)
            exact = first_full[is_dup] == h_full[is_dup]
            what = "/".join(self.schema.key)
            out.loc[cand.index[is_dup]] = np.where(
                exact,
                "ts: exact duplicate of row " + same_as,
                "ts: duplicate of row " + same_as + f" (same {what} and ts, other values; "
                "the first is kept)",
            )
        fresh = ~is_dup
        if fresh.any():
            self._seen_keys = self._seen_keys.append(pd.Index(h_key[fresh], dtype="uint64"))
            self._seen_rows = np.concatenate([self._seen_rows, cand_rows[fresh]])
            self._seen_full = np.concatenate([self._seen_full, h_full[fresh]])
        return out

    def _quarantine_rows(
        self, raw: pd.DataFrame, rows: NDArray[np.int64], ts: pd.Series, reason: pd.Series
    ) -> pd.DataFrame:
        return _quarantine_frame(
            ts=ts.fillna(EPOCH).reset_index(drop=True),
            dataset=self.schema.name,
            source=self.source,
            rows=rows,
            reasons=reason.astype(str).tolist(),
            raw=_rows_as_json(raw),
            now=self.now,
        )


def validate(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    source: str,
    now: datetime | None = None,
    bounds: TimeBounds | None = None,
) -> ValidationResult:
    """Split ``frame`` into good rows and quarantined rows for ``schema``.

    Args:
        frame: the rows as read (text or typed columns; extra columns allowed).
        schema: the dataset contract (see ``forecasting.schemas``).
        source: the file path or URI the rows came from (named in errors and
            stored with each quarantined row).
        now: the clock, stored as ``quarantined_at``; defaults to the current time.
        bounds: the accepted timestamps (default: :class:`TimeBounds`).

    Returns:
        ``ValidationResult(good, quarantined, dropped_columns)``.

    Raises:
        DataValidationError: a required column is missing (the whole input is refused).

    >>> from forecasting.schemas import SEGMENT_ACCESS
    >>> frame = pd.DataFrame({"ts": ["2026-01-01T00:00Z"] * 2, "cluster": "c",
    ...     "segment": ["a", "b"], "reads": ["1", "abc"], "writes": "0",
    ...     "bytes_changed": "0", "size_bytes": "1"})
    >>> out = validate(frame, SEGMENT_ACCESS, source="x.csv")
    >>> len(out.good), out.quarantined["reason"].tolist()
    (1, ["reads: 'abc' is not a number"])
    """
    return Validator(schema, source=source, now=now, bounds=bounds).validate(frame)


def empty_quarantine() -> pd.DataFrame:
    """A quarantine frame with no rows and the right columns."""
    return _quarantine_frame(
        ts=pd.Series([], dtype="datetime64[ns, UTC]"),
        dataset="",
        source="",
        rows=np.array([], dtype="int64"),
        reasons=[],
        raw=[],
        now=EPOCH,
    )


# -- column checks ----------------------------------------------------------------------------
def _check_column(raw: pd.Series, col: Column) -> tuple[pd.Series, list[pd.Series]]:
    """Typed values of one column and the reasons (indexed by row) it rejects."""
    if col.kind == "ts":
        return _check_ts(raw, col)
    if col.kind in ("float", "int"):
        return _check_number(raw, col)
    return _check_text(raw, col)


def _check_ts(raw: pd.Series, col: Column) -> tuple[pd.Series, list[pd.Series]]:
    reasons: list[pd.Series] = []
    missing = raw.isna()
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        typed = raw.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        typed = raw.dt.tz_localize("UTC")
    elif pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        typed = pd.to_datetime(_epoch_seconds(raw), unit="s", utc=True, errors="coerce")
    else:
        text = _text_array(raw)
        missing = pd.Series(_nulls(text), index=raw.index)
        typed = pd.Series(_parse_ts_text(text), index=raw.index).dt.tz_localize("UTC")
    typed = typed.astype("datetime64[ns, UTC]")
    if col.required:
        reasons.append(_reason(missing, f"{col.name}: missing value"))
    bad = typed.isna() & ~missing
    if bad.any():
        shown = raw[bad].astype(str).str.strip()
        year = pd.to_numeric(shown.str.extract(_YEAR, expand=False), errors="coerce")
        if pd.api.types.is_numeric_dtype(raw.dtype):
            seconds = raw[bad].astype("float64")
        else:
            seconds = pd.to_numeric(shown.where(shown.str.match(_NUMBER)), errors="coerce")
        far = (year < _FIRST_YEAR) | (year > _LAST_YEAR) | (seconds.abs() >= _EPOCH_LIMIT_S)
        if far.any():
            reasons.append(
                col.name
                + ": "
                + _shown(raw[bad][far])
                + f" is far out of range (years {_FIRST_YEAR}..{_LAST_YEAR} only)"
            )
        unparsed = bad[bad].index[~far.to_numpy(bool)]
        if len(unparsed):
            reasons.append(
                col.name
                + ": unparseable timestamp "
                + _shown(raw[unparsed])
                + " (use ISO 8601, e.g. 2026-01-31T13:00:00Z, or epoch seconds)"
            )
    return typed, reasons


def _parse_ts_text(text: pa.StringArray) -> NDArray[np.datetime64]:
    """Parse text timestamps to naive UTC ``datetime64[ns]`` (NaT where unparseable).

    Offsets are converted, naive text is taken as UTC, digits are epoch seconds.
    Aware and naive strings are parsed apart: pandas' ISO 8601 parser carries one
    string's offset over to naive strings when a column mixes both. Arrow's cast
    is the fast path; pandas parses a group that Arrow refuses.
    """
    out = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ns]")
    aware = pc.fill_null(pc.match_substring_regex(text, _AWARE), False)
    naive = pc.and_(pc.invert(aware), pc.is_valid(text))
    for mask, tz in ((aware, "UTC"), (naive, None)):
        where = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
        if not len(where):
            continue
        group = text.filter(mask)
        try:
            parsed = pc.cast(group, pa.timestamp("ns", tz)).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            stamps = pd.to_datetime(
                pd.Series(group.to_pylist(), dtype=object),
                utc=True,
                errors="coerce",
                format="ISO8601",
            )
            parsed = stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
        out[where] = parsed.astype("datetime64[ns]")
    epoch = np.isnat(out) & pc.fill_null(pc.match_substring_regex(text, _NUMBER), False).to_numpy(
        zero_copy_only=False
    )
    if epoch.any():
        seconds = pd.to_numeric(pd.Series(text.filter(epoch).to_pylist()), errors="coerce")
        stamps = pd.to_datetime(_epoch_seconds(seconds), unit="s", errors="coerce")
        out[epoch] = stamps.to_numpy(dtype="datetime64[ns]")
    return out


def _epoch_seconds(values: pd.Series) -> pd.Series:
    """Numbers as float seconds, NaN where too large for ``datetime64[ns]``.

    pandas raises ``OverflowError`` on such values instead of coercing, and wraps
    ``uint64`` values past ``int64`` silently.
    """
    seconds = values.astype("float64")
    return seconds.where(seconds.abs() < _EPOCH_LIMIT_S)


def _check_number(raw: pd.Series, col: Column) -> tuple[pd.Series, list[pd.Series]]:
    reasons: list[pd.Series] = []
    if pd.api.types.is_bool_dtype(raw.dtype):
        raw = raw.astype(object)
    if pd.api.types.is_numeric_dtype(raw.dtype):
        num = raw.astype("float64")
        missing = num.isna()
        mistyped = pd.Series(False, index=raw.index)
    else:
        text = _text_array(raw)
        missing = pd.Series(_nulls(text), index=raw.index)
        try:  # fast path: every value parses
            values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = pd.to_numeric(
                pd.Series(text.to_pylist(), dtype=object), errors="coerce"
            ).to_numpy(dtype="float64")
        num = pd.Series(values, index=raw.index, dtype="float64")
        mistyped = num.isna() & ~missing
    if col.required:
        reasons.append(_reason(missing, f"{col.name}: missing value"))
    if mistyped.any():
        reasons.append(col.name + ": " + _shown(raw[mistyped]) + " is not a number")
    infinite = np.isinf(num)
    if infinite.any():
        reasons.append(col.name + ": " + _shown(raw[infinite]) + " is not a finite number")
    finite = num.where(~infinite)
    if col.kind == "int":
        fractional = finite.notna() & (finite != np.floor(finite))
        if fractional.any():
            reasons.append(col.name + ": " + _shown(raw[fractional]) + " is not an integer")
    if col.min is not None:
        low = finite < col.min
        if low.any():
            reasons.append(col.name + ": " + _number(finite[low]) + f" below minimum {col.min}")
    if col.max is not None:
        high = finite > col.max
        if high.any():
            reasons.append(col.name + ": " + _number(finite[high]) + f" above maximum {col.max}")
    typed = finite if col.kind == "float" else finite.round().astype("Int64")
    return typed, reasons


def _check_text(raw: pd.Series, col: Column) -> tuple[pd.Series, list[pd.Series]]:
    reasons: list[pd.Series] = []
    # work on the distinct values: keys and roles repeat a lot
    if _arrow_backed(raw):
        text = _text_array(raw)
        distinct = pc.unique(text).drop_null()
        codes = pc.fill_null(pc.index_in(text, value_set=distinct), -1).to_numpy()
        values = np.array([*distinct.to_pylist(), None], dtype=object)  # code -1 (NA) -> None
    else:
        codes, uniques = pd.factorize(raw.astype(object), use_na_sentinel=True)
        stripped = pd.Series(uniques, dtype=object).astype(str).str.strip()
        # None as the filler: pandas and numpy take it, pandas-stubs 2 and numpy's stubs do not
        stripped = stripped.where(stripped.ne(""), None)  # type: ignore[call-overload, unused-ignore]
        values = np.append(stripped.to_numpy(dtype=object), None)  # type: ignore[call-overload]
    typed = pd.Series(values[codes], index=raw.index, dtype=object)
    missing = typed.isna()
    if col.required:
        reasons.append(_reason(missing, f"{col.name}: missing value"))
    if col.choices is not None:
        wrong = ~missing & ~typed.isin(col.choices)
        if wrong.any():
            reasons.append(
                col.name + ": " + _shown(raw[wrong]) + f" is not one of {'|'.join(col.choices)}"
            )
    else:
        control = pd.Series(values, dtype=object).str.contains(_CONTROL, regex=True, na=False)
        flagged = control.to_numpy(bool)[codes]
        if flagged.any():
            escaped = raw[flagged].astype(object).map(_escaped)
            reasons.append(
                col.name + ": " + _shown(escaped) + " holds a control character (NUL, tab, ...)"
            )
    return typed, reasons


def _escaped(value: object) -> str:
    """``value`` as text with control characters written as escapes (``\\x00``)."""
    return str(value).encode("unicode_escape").decode("ascii")


def _arrow_backed(raw: pd.Series) -> bool:
    """Whether ``raw`` holds Arrow strings (as CSV batches do), so no Python objects are made."""
    dtype = raw.dtype
    if isinstance(dtype, pd.ArrowDtype):
        return bool(
            pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
        )
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def _text_array(raw: pd.Series) -> pa.StringArray:
    """The values as an Arrow string array, blanks trimmed, empty text as null."""
    if _arrow_backed(raw):
        text = pa.array(raw.array).cast(pa.string())
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
    else:
        values = raw.astype(object)
        try:
            text = pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects
            text = pa.array(values.where(values.isna(), values.astype(str)), from_pandas=True)
    text = pc.utf8_trim_whitespace(text)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _nulls(text: pa.StringArray) -> NDArray[np.bool_]:
    nulls: NDArray[np.bool_] = text.is_null().to_numpy(zero_copy_only=False)
    return nulls


def _empty_typed(col: Column, n: int) -> pd.Series:
    dtype = {"ts": "datetime64[ns, UTC]", "float": "float64", "int": "Int64"}.get(col.kind, object)
    return pd.Series([None] * n, dtype=dtype)


# -- reasons and quarantine rows --------------------------------------------------------------
def _reason(mask: pd.Series, message: str) -> pd.Series:
    return pd.Series(message, index=mask.index[mask.to_numpy()], dtype=object)


def _shown(values: pd.Series) -> pd.Series:
    """The raw values quoted as they appeared, shortened."""
    text = values.astype(str).str.slice(0, 40)
    return "'" + text + "'"


def _number(values: pd.Series) -> pd.Series:
    return values.astype(str)


def _join_reasons(problems: list[pd.Series], n: int) -> pd.Series:
    """One ``"; "``-joined reason per bad row (columns in schema order), NA for good rows."""
    out = pd.Series(pd.NA, index=pd.RangeIndex(n), dtype=object)
    problems = [p for p in problems if len(p)]
    if not problems:
        return out
    joined = pd.concat(problems).groupby(level=0, sort=True).agg("; ".join)
    out.loc[joined.index] = joined.to_numpy()
    return out


def _rows_as_json(raw: pd.DataFrame) -> list[str]:
    if raw.empty:
        return [json.dumps({}) for _ in range(len(raw))]
    # None as the filler: pandas takes it, pandas-stubs 2 do not (3 do)
    plain = raw.astype(object).where(raw.notna(), None)  # type: ignore[call-overload, unused-ignore]
    return [
        json.dumps(record, default=str, ensure_ascii=False) for record in plain.to_dict("records")
    ]


def _quarantine_frame(
    *,
    ts: pd.Series,
    dataset: str,
    source: str,
    rows: NDArray[np.int64],
    reasons: list[str],
    raw: list[str],
    now: pd.Timestamp,
) -> pd.DataFrame:
    n = len(rows)
    return pd.DataFrame(
        {
            "ts": pd.Series(ts.to_numpy(), dtype="datetime64[ns, UTC]"),
            "dataset": pd.Series([dataset] * n, dtype=object),
            "source": pd.Series([source] * n, dtype=object),
            "row": pd.Series(rows, dtype="int64"),
            "reason": pd.Series(reasons, dtype=object),
            "raw": pd.Series(raw, dtype=object),
            "quarantined_at": pd.Series([now] * n, dtype="datetime64[ns, UTC]"),
        },
        columns=QUARANTINE_COLUMNS,
    )


def _duration(delta: pd.Timedelta) -> str:
    """``1 day``, ``2 h``, ``90 s``: a tolerance as a reader writes it."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
    return f"{seconds} s"


def _names(columns: list[str]) -> str:
    return ", ".join(repr(c) for c in columns)


def _utc_stamp(value: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
