"""The priority queue read (pyarrow only): the newest queue rows, as far back as they can lie."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from forecasting.lake import Lake
from replication.ordering import priority_ranks


def _queue(lake_dir: Path, rows: list[tuple[str, str, str, str, str, int]]) -> None:
    """Rows of (ts, origin, cluster, replica, segment, rank) written to the lake."""
    frame = pd.DataFrame(rows, columns=["ts", "origin", "cluster", "replica", "segment", "rank"])
    frame = frame.assign(
        ts=pd.to_datetime(frame["ts"], utc=True), origin=pd.to_datetime(frame["origin"], utc=True)
    )
    Lake(lake_dir).write("priority_queue", frame.assign(weight=1.0, cost_s=1.0, score=1.0))


def test_the_newest_origin_of_the_cluster_and_replica_wins(tmp_path: Path) -> None:
    _queue(
        tmp_path,
        [
            (
                "2026-01-03T08:00Z",
                "2026-01-03T08:00Z",
                "orders",
                "eu-west",
                "x",
                1,
            ),  # other replica
            ("2026-01-02T10:00Z", "2026-01-02T10:00Z", "orders", "cn-north", "b", 1),
            ("2026-01-02T10:00Z", "2026-01-02T10:00Z", "orders", "cn-north", "a", 2),
            ("2026-01-01T10:00Z", "2026-01-01T10:00Z", "orders", "cn-north", "c", 1),  # older
        ],
    )
    ranks, note = priority_ranks(tmp_path, "orders", "cn-north")
    assert ranks == {"b": 1, "a": 2}
    assert note == (
        "priority_queue of 2026-01-02T10:00:00+00:00 (2 segments, cluster=orders, replica=cn-north)"
    )
    ranks, _ = priority_ranks(tmp_path, None, None)
    assert ranks == {"x": 1}


def test_an_older_partition_may_hold_the_newest_origin(tmp_path: Path) -> None:
    """Rows whose ``ts`` lies after their origin: the read goes on while an older day's rows
    could still carry a newer origin."""
    _queue(
        tmp_path,
        [
            ("2026-01-03T01:00Z", "2026-01-01T05:00Z", "orders", "r", "old", 1),
            ("2026-01-02T23:00Z", "2026-01-02T22:00Z", "orders", "r", "new", 1),
        ],
    )
    assert priority_ranks(tmp_path, "orders", "r")[0] == {"new": 1}


def test_no_queue_and_no_rows_for_the_replica_are_told_apart(tmp_path: Path) -> None:
    ranks, note = priority_ranks(tmp_path, "orders", "r")
    assert ranks == {} and note.startswith("no priority_queue in the lake")
    _queue(tmp_path, [("2026-01-02T10:00Z", "2026-01-02T10:00Z", "orders", "r", "a", 1)])
    ranks, note = priority_ranks(tmp_path, "orders", "other")
    assert ranks == {} and note.startswith("no priority_queue rows for cluster=orders")


def test_reading_the_queue_loads_no_pandas(tmp_path: Path) -> None:
    _queue(tmp_path, [("2026-01-02T10:00Z", "2026-01-02T10:00Z", "orders", "r", "a", 1)])
    code = (
        "import sys; from pathlib import Path; from replication.ordering import priority_ranks\n"
        f"assert priority_ranks(Path({str(tmp_path)!r}), 'orders', 'r')[0] == {{'a': 1}}\n"
        "assert 'pandas' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
