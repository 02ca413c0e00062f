"""Segment order of a run: the newest priority queue from the lake, or alphabetical.

pandas and pyarrow load only when the lake holds a queue to read (a sync starts
without them otherwise).
"""

from __future__ import annotations

from pathlib import Path

QUEUE = "priority_queue"


def _has_partitions(dataset: Path) -> bool:
    """Whether a lake dataset has a partition file (``date=*/part-*.parquet``, the lake's
    layout), found without pandas."""
    return next(dataset.glob("date=*/part-*.parquet"), None) is not None


def priority_ranks(
    lake_dir: Path, cluster: str | None, replica: str | None
) -> tuple[dict[str, int], str]:
    """Ranks (1 = first) of the newest ``priority_queue`` rows for ``cluster``/``replica``.

    Returns:
        ``(ranks, note)``; ranks is empty when there is no queue, and note says why.
    """
    absent = f"no priority_queue in the lake ({lake_dir}); fell back to alphabetical order"
    if not _has_partitions(Path(lake_dir) / QUEUE):
        return {}, absent
    import pandas as pd

    from forecasting.lake import Lake

    frame = Lake(lake_dir).read(QUEUE)
    where = f"cluster={cluster or '*'}, replica={replica or '*'}"
    if frame.empty:
        return {}, absent
    if cluster is not None:
        frame = frame[frame["cluster"] == cluster]
    if replica is not None:
        frame = frame[frame["replica"] == replica]
    if frame.empty:
        return {}, f"no priority_queue rows for {where}; fell back to alphabetical order"
    when = "origin" if "origin" in frame.columns else "ts"
    newest = frame[when].max()
    frame = frame[frame[when] == newest]
    ranks = frame.groupby("segment")["rank"].min().sort_values(kind="stable")
    note = f"priority_queue of {pd.Timestamp(newest).isoformat()} ({len(ranks)} segments, {where})"
    return {str(seg): int(rank) for seg, rank in ranks.items()}, note


def order_segments(names: list[str], ranks: dict[str, int]) -> list[str]:
    """Ranked segments first (by rank), the unknown ones after them, alphabetically."""
    known = sorted((n for n in names if n in ranks), key=lambda n: (ranks[n], n))
    rest = sorted(n for n in names if n not in ranks)
    return known + rest
