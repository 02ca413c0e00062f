"""Segment order of a run: the newest priority queue from the lake, or alphabetical.

The queue is read with pyarrow only (no pandas), newest ``date=`` partition first, and
only as far back as the newest queue can lie; pyarrow loads only when the lake holds a
queue (a sync starts without it otherwise).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

QUEUE = "priority_queue"
_COLUMNS = ["cluster", "replica", "segment", "rank"]


def _partitions_newest_first(dataset: Path) -> list[tuple[date, list[Path]]]:
    """The dataset's ``date=YYYY-MM-DD`` partitions with their files, newest first."""
    out = []
    for part_dir in sorted(dataset.glob("date=*"), reverse=True):
        files = sorted(part_dir.glob("part-*.parquet"))
        if files:
            out.append((date.fromisoformat(part_dir.name.removeprefix("date=")), files))
    return out


def _utc_ns(ns: int) -> datetime:
    """A UTC datetime from nanoseconds since the epoch (microsecond precision)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


def priority_ranks(
    lake_dir: Path, cluster: str | None, replica: str | None
) -> tuple[dict[str, int], str]:
    """Ranks (1 = first) of the newest ``priority_queue`` rows for ``cluster``/``replica``.

    The newest rows are those of the latest ``origin`` (``ts`` for a queue without it).
    A queue's ``origin`` is never after its ``ts``, so rows in a partition whose day ends
    before the newest origin found so far cannot be newer: the read stops there.

    Returns:
        ``(ranks, note)``; ranks is empty when there is no queue, and note says why.
    """
    absent = f"no priority_queue in the lake ({lake_dir}); fell back to alphabetical order"
    partitions = _partitions_newest_first(Path(lake_dir) / QUEUE)
    if not partitions:
        return {}, absent
    import pyarrow as pa
    import pyarrow.parquet as pq

    from forecasting.lake import read_table_verified

    where = f"cluster={cluster or '*'}, replica={replica or '*'}"
    best: int | None = None  # newest origin so far, ns since the epoch (UTC)
    ranks: dict[str, int] = {}
    any_rows = False
    for day, files in partitions:
        day_end = datetime.combine(day + timedelta(days=1), time(), UTC)
        if best is not None and _utc_ns(best) >= day_end:
            break
        for path in files:
            when = "origin" if "origin" in pq.read_schema(path).names else "ts"
            table = read_table_verified(path, [*_COLUMNS, when])
            any_rows = any_rows or table.num_rows > 0
            # rows filtered in Python: few rows, and pyarrow's conversions of Python
            # values (pa.scalar for a compute filter) import pandas
            columns = [table[c].to_pylist() for c in _COLUMNS]
            stamps = table[when].cast(pa.timestamp("ns", "UTC")).cast(pa.int64()).to_pylist()
            for c, r, segment, rank, stamp in zip(*columns, stamps, strict=True):
                if (cluster is not None and c != cluster) or (replica is not None and r != replica):
                    continue
                if stamp is None or (best is not None and stamp < best):
                    continue
                if best is None or stamp > best:
                    best, ranks = stamp, {}
                ranks[str(segment)] = min(int(rank), ranks.get(str(segment), int(rank)))
    if not any_rows:
        return {}, absent
    if best is None:
        return {}, f"no priority_queue rows for {where}; fell back to alphabetical order"
    ranked = dict(sorted(ranks.items(), key=lambda item: (item[1], item[0])))
    note = f"priority_queue of {_utc_ns(best).isoformat()} ({len(ranked)} segments, {where})"
    return ranked, note


def order_segments(names: list[str], ranks: dict[str, int]) -> list[str]:
    """Ranked segments first (by rank), the unknown ones after them, alphabetically."""
    known = sorted((n for n in names if n in ranks), key=lambda n: (ranks[n], n))
    rest = sorted(n for n in names if n not in ranks)
    return known + rest
