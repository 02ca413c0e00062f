"""The newest ``priority_queue`` rows, read from the lake and cached until the lake changes."""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd

from forecasting.lake import Lake

DATASET = "priority_queue"


class PriorityQueueView:
    """Reads ``priority_queue`` once per change of its files (count, newest mtime)."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._stamp: tuple[int, float] | None = None
        self._frame = pd.DataFrame()
        self._lock = threading.Lock()

    def _stamp_now(self) -> tuple[int, float]:
        files = self.lake.partitions(DATASET)
        return (len(files), max((f.stat().st_mtime for f in files), default=0.0))

    def frame(self) -> pd.DataFrame:
        """Every row of the dataset (cached)."""
        stamp = self._stamp_now()
        with self._lock:
            if stamp != self._stamp:
                self._frame = self.lake.read(DATASET) if stamp[0] else pd.DataFrame()
                self._stamp = stamp
            return self._frame

    def latest(self, cluster: str, replica: str | None, limit: int) -> dict[str, Any]:
        """The newest queue of ``cluster`` (per replica), best rank first, at most ``limit``."""
        frame = self.frame()
        if frame.empty or "cluster" not in frame.columns:
            return {"cluster": cluster, "replica": replica, "origin": None, "items": []}
        rows = frame[frame["cluster"] == cluster]
        if replica is not None:
            rows = rows[rows["replica"] == replica]
        if rows.empty:
            return {"cluster": cluster, "replica": replica, "origin": None, "items": []}
        when = "origin" if "origin" in rows.columns else "ts"
        origin = rows[when].max()
        rows = rows[rows[when] == origin].sort_values(["rank", "replica", "segment"]).head(limit)
        items = [
            {
                "rank": int(r.rank),
                "segment": str(r.segment),
                "replica": str(r.replica),
                "weight": _num(r.weight),
                "cost_s": _num(r.cost_s),
                "score": _num(r.score),
                "waited_s": _num(r.waited_s),
            }
            for r in rows.itertuples(index=False)
        ]
        return {
            "cluster": cluster,
            "replica": replica,
            "origin": pd.Timestamp(origin).to_pydatetime(),
            "items": items,
        }


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None
