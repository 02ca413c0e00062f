"""Arbitrary univariate series files (CSV / Parquet, NAB format and alike) -> regular long frame.

Each file is one series named after its path relative to the directory given
(``nab_aws_cloudwatch/ec2_cpu_utilization_24ae8d``). Timestamps without a
zone are taken as UTC. Rows whose timestamp does not parse are dropped and
values that are not numbers become missing (both logged with counts).

Frequency: the median spacing of the timestamps. Series sampled finer than
hourly (5-min NAB, ~1-min irregular Alibaba, 5-min Bitbrains) are resampled to
**hourly means** on clock-hour bins; hourly and coarser series are binned at
their own (rounded) spacing with the mean of each bin. Intervals without any
sample become NaN rows (gaps are kept visible, not filled), and leading and
trailing gaps are trimmed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.errors import DataValidationError
from forecasting.forecaster import SERIES, TS, Y

logger = logging.getLogger(__name__)

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
HOURLY = pd.Timedelta(hours=1)
_CANONICAL = (
    [pd.Timedelta(minutes=m) for m in (1, 5, 10, 15, 30)]
    + [pd.Timedelta(hours=h) for h in (1, 2, 3, 4, 6, 12)]
    + [pd.Timedelta(days=1), pd.Timedelta(weeks=1)]
)


@dataclass(frozen=True)
class RegularSeries:
    """One series on a regular grid."""

    name: str
    freq: pd.Timedelta
    values: pd.Series  # DatetimeIndex (UTC) -> float, NaN = no sample in the interval
    raw_freq: pd.Timedelta


def discover(paths: Sequence[str | Path]) -> list[tuple[str, Path]]:
    """``(name, path)`` of every series file under ``paths`` (files or directories).

    Raises:
        DataValidationError: a path does not exist or a directory holds no series file.
    """
    found: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append((_stem(path.name), path))
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _is_series(p))
            if not files:
                raise DataValidationError(
                    f"{path}: no series file (*{', *'.join(SUFFIXES)}) in this directory"
                )
            for file in files:
                rel = file.relative_to(path)
                name = (
                    str(rel.parent / _stem(rel.name))
                    if rel.parent != Path(".")
                    else _stem(rel.name)
                )
                found.append((name, file))
        else:
            raise DataValidationError(f"{path}: no such file or directory")
    return found


def _is_series(path: Path) -> bool:
    return path.name.lower().endswith(SUFFIXES)


def _stem(name: str) -> str:
    lower = name.lower()
    for suffix in SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_series(path: Path, *, timestamp_col: str, value_col: str, min_rows: int = 2) -> pd.Series:
    """Read one file into a float series indexed by UTC timestamps (sorted).

    ``value_col`` may list several comma-separated names; the first one the
    file has is used (handy for a directory mixing formats). Values that are not
    finite numbers are missing (NaN).

    Raises:
        DataValidationError: unreadable file, a missing column, or fewer than
            ``min_rows`` rows with both a timestamp and a number.
    """
    try:
        if path.name.lower().endswith((".parquet", ".pq")):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, low_memory=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataValidationError(f"{path}: cannot read as CSV/Parquet ({exc})") from exc
    present = [c.strip() for c in value_col.split(",") if c.strip() in frame.columns]
    value_col = present[0] if present else value_col
    for col, flag in ((timestamp_col, "--timestamp-col"), (value_col, "--value-col")):
        if col not in frame.columns:
            raise DataValidationError(
                f"{path}: no column {col!r} (columns: {list(frame.columns)[:12]}); "
                f"pass the right name with {flag}"
            )
    stamps = _parse_timestamps(frame[timestamp_col])
    values = pd.to_numeric(frame[value_col], errors="coerce").astype(float)
    values = values.where(np.isfinite(values))
    bad_ts = int(stamps.isna().sum())
    bad_values = int((values.isna() & frame[value_col].notna()).sum())
    if bad_ts or bad_values:
        logger.warning(
            "%s: %d row(s) with an unparseable %s dropped, %d non-numeric %s set missing",
            path,
            bad_ts,
            timestamp_col,
            bad_values,
            value_col,
        )
    keep = stamps.notna().to_numpy()
    series = pd.Series(values.to_numpy()[keep], index=pd.DatetimeIndex(stamps[keep]))
    series = series.sort_index()
    usable = int(series.notna().sum())
    if usable == 0:
        raise DataValidationError(
            f"{path}: no row has both a timestamp in {timestamp_col!r} and a number in "
            f"{value_col!r} (empty history)"
        )
    if usable < min_rows:
        raise DataValidationError(f"{path}: fewer than {min_rows} usable rows in {value_col!r}")
    return series


def read_hourly(path: Path, *, timestamp_col: str, value_col: str) -> pd.Series:
    """Read one file as hourly means on clock-hour bins (UTC); hours without data are NaN.

    Unlike :func:`regularize`, always hourly (coarser series get NaN hours between their
    samples) and one usable row is enough.

    Raises:
        DataValidationError: as :func:`read_series`.
    """
    series = read_series(path, timestamp_col=timestamp_col, value_col=value_col, min_rows=1)
    return series.dropna().resample("1h").mean()


def _parse_timestamps(raw: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(raw):
        unit = "ms" if raw.dropna().abs().median() > 1e11 else "s"
        return pd.to_datetime(raw, unit=unit, utc=True, errors="coerce")
    return pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")


def infer_spacing(index: pd.DatetimeIndex) -> pd.Timedelta:
    """Median spacing of the timestamps, snapped to the nearest common frequency."""
    diffs = np.diff(index.asi8)
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        raise DataValidationError("cannot infer a frequency from fewer than two timestamps")
    median = pd.Timedelta(int(np.median(diffs)), unit="ns")
    return min(_CANONICAL, key=lambda c: abs(np.log(c / median)))


def regularize(name: str, series: pd.Series) -> RegularSeries:
    """Resample to the regular grid (hourly means when finer than hourly); gaps become NaN."""
    raw = infer_spacing(pd.DatetimeIndex(series.index))
    freq = max(raw, HOURLY)
    binned = series.resample(freq).mean()
    valid = binned.notna().to_numpy()
    if valid.sum() < 2:
        raise DataValidationError(f"{name}: fewer than two intervals with data after resampling")
    first, last = np.flatnonzero(valid)[[0, -1]]
    binned = binned.iloc[first : last + 1].astype(float)
    return RegularSeries(name=name, freq=freq, values=binned, raw_freq=raw)


def load_series(
    files: Iterable[tuple[str, Path]], *, timestamp_col: str, value_col: str
) -> list[RegularSeries]:
    """Read and regularise each ``(name, path)``."""
    return [
        regularize(name, read_series(path, timestamp_col=timestamp_col, value_col=value_col))
        for name, path in files
    ]


def to_long(series: Sequence[RegularSeries]) -> pd.DataFrame:
    """Long frame ``series_id, ts, y`` of regular series."""
    parts = [
        pd.DataFrame({SERIES: s.name, TS: s.values.index, Y: s.values.to_numpy(float)})
        for s in series
    ]
    if not parts:
        return pd.DataFrame(columns=[SERIES, TS, Y])
    return pd.concat(parts, ignore_index=True)


def season_for(freq: pd.Timedelta) -> int:
    """Season length in steps: a day for sub-daily data, a week for daily, else 1."""
    if freq < pd.Timedelta(days=1) and pd.Timedelta(days=1) % freq == pd.Timedelta(0):
        return int(pd.Timedelta(days=1) / freq)
    if freq == pd.Timedelta(days=1):
        return 7
    return 1


def freq_alias(freq: pd.Timedelta) -> str:
    """A pandas alias for a fixed spacing (``1h``, ``30min``, ``1D``...)."""
    minutes = freq / pd.Timedelta(minutes=1)
    if minutes % (24 * 60) == 0:
        return f"{int(minutes // (24 * 60))}D"
    if minutes % 60 == 0:
        return f"{int(minutes // 60)}h"
    return f"{int(minutes)}min"
