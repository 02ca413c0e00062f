"""Replication priority: the order in which pending (segment, replica) pairs are copied.

Each pending pair has a weight ``w`` (predicted read rate of the segment, reads/s)
and a cost ``p`` (seconds on the link: bytes to send / the replica region's link
bandwidth). On one link, ordering by ``w / p`` descending (Smith's rule) minimises
the access-weighted staleness ``sum_j w_j * C_j``.

Ageing bounds the wait. Every pair has a deadline: it must be *finished* no later
than ``max_wait_s`` after it became pending, i.e. ``waited_s + C_j <= max_wait_s``
where ``C_j`` is its completion time counted from now. Before each pick the
scheduler checks whether, after copying the best-scoring pair next, all the others
could still meet their deadlines (checked in earliest-deadline-first order, which
meets them whenever any order can); if not, the pair with the earliest deadline
jumps ahead. So when every deadline can be met this order meets them all, and
when they cannot it runs earliest-deadline-first, which minimises the largest
overshoot; otherwise it is Smith's rule.

Ties are broken deterministically: higher score, then longer wait, then segment
name, then cluster. The order is a pure function of its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from forecasting.errors import ConfigError, DataValidationError
from forecasting.settings import Fleet

#: Columns :func:`prioritize` needs.
PENDING_COLUMNS = ("cluster", "replica", "segment", "weight", "bytes_to_send", "waited_s")

_MIN_COST_S = 1e-9


def order_link(
    segments: Sequence[str],
    weight: NDArray[np.float64],
    cost_s: NDArray[np.float64],
    waited_s: NDArray[np.float64],
    *,
    max_wait_s: float,
    clusters: Sequence[str] | None = None,
) -> NDArray[np.intp]:
    """Order the pending pairs of one link; returns the positions in copy order.

    Args:
        segments: segment names (used for deterministic tie breaks).
        weight: predicted read rate of each pair (>= 0).
        cost_s: seconds each pair occupies the link (>= 0).
        waited_s: how long each pair has already been pending (>= 0).
        max_wait_s: the ageing bound (> 0): pending time plus completion time.
        clusters: cluster names, a second tie break (default: all equal).

    Returns:
        An integer array: ``order[k]`` is the position of the k-th pair to copy.
    """
    if max_wait_s <= 0:
        raise ConfigError(f"priority.max_wait_s must be > 0, got {max_wait_s}")
    n = len(segments)
    weight = np.asarray(weight, dtype=float)
    cost_s = np.asarray(cost_s, dtype=float)
    waited_s = np.asarray(waited_s, dtype=float)
    clusters = list(clusters) if clusters is not None else [""] * n
    score = weight / np.maximum(cost_s, _MIN_COST_S)
    # Smith's rule order with deterministic ties.
    smith = sorted(range(n), key=lambda i: (-score[i], -waited_s[i], segments[i], clusters[i]))
    # finish-by time (seconds from now) of each pair, and the pairs by it (EDF order)
    deadline = max_wait_s - waited_s
    edf = sorted(range(n), key=lambda i: (deadline[i], segments[i], clusters[i]))
    done = np.zeros(n, dtype=bool)
    remaining_cost = float(cost_s.sum())
    order: list[int] = []
    now = 0.0
    cursor = 0
    edf_cursor = 0
    while len(order) < n:
        while done[smith[cursor]]:
            cursor += 1
        while done[edf[edf_cursor]]:
            edf_cursor += 1
        best = smith[cursor]
        pick = best
        # Cheap test first: everything fits before the earliest deadline.
        if now + remaining_cost > deadline[edf[edf_cursor]] and not _fits_after(
            best, now, cost_s, deadline, edf[edf_cursor:], done
        ):
            pick = edf[edf_cursor]  # `best` would make someone late: most urgent first
        done[pick] = True
        order.append(pick)
        now += cost_s[pick]
        remaining_cost -= cost_s[pick]
    return np.asarray(order, dtype=int)


def _fits_after(
    first: int,
    now: float,
    cost_s: NDArray[np.float64],
    deadline: NDArray[np.float64],
    edf: list[int],
    done: NDArray[np.bool_],
) -> bool:
    """Whether, after copying ``first``, every other pending pair meets its deadline (EDF)."""
    t = now + cost_s[first]
    if t > deadline[first] + 1e-9:
        return False
    for i in edf:
        if done[i] or i == first:
            continue
        t += cost_s[i]
        if t > deadline[i] + 1e-9:
            return False
    return True


def prioritize(pending: pd.DataFrame, *, fleet: Fleet, max_wait_s: float) -> pd.DataFrame:
    """Rank pending (segment, replica) pairs per (cluster, replica) link.

    Args:
        pending: one row per pair with :data:`PENDING_COLUMNS`: ``weight`` is the predicted
            read rate (reads/s), ``bytes_to_send`` the bytes to ship, ``waited_s`` how long
            the pair has been pending.
        fleet: gives each replica region's link bandwidth.
        max_wait_s: the ageing bound (``settings.priority.max_wait_s``).

    Returns:
        The rows sorted by cluster, replica and rank, with ``cost_s`` (seconds on the
        link), ``score`` (w/p) and ``rank`` (1 = first) added.

    Raises:
        DataValidationError: a column is missing or a value is negative/NaN.
        UnknownKeyError: a replica region is not in the fleet.
    """
    missing = [c for c in PENDING_COLUMNS if c not in pending.columns]
    if missing:
        raise DataValidationError(
            f"pending pairs: missing column(s) {missing}; expected {list(PENDING_COLUMNS)}"
        )
    for col in ("weight", "bytes_to_send", "waited_s"):
        values = pd.to_numeric(pending[col], errors="coerce")
        bad = pending.index[~(values >= 0)]
        if len(bad):
            raise DataValidationError(
                f"pending pairs: column {col!r} must be a number >= 0; bad rows "
                f"{list(bad[:5])} (segments {list(pending.loc[bad[:5], 'segment'])})"
            )
    if pending.empty:
        return pending.assign(cost_s=[], score=[], rank=[])
    frames = []
    for (cluster, replica), group in pending.groupby(["cluster", "replica"], sort=True):
        bandwidth = fleet.region(str(replica)).bandwidth_bytes_s
        cost = group["bytes_to_send"].to_numpy(dtype=float) / bandwidth
        weight = group["weight"].to_numpy(dtype=float)
        order = order_link(
            group["segment"].astype(str).tolist(),
            weight,
            cost,
            group["waited_s"].to_numpy(dtype=float),
            max_wait_s=max_wait_s,
            clusters=[str(cluster)] * len(group),
        )
        ranked = group.iloc[order].assign(
            cost_s=cost[order],
            score=weight[order] / np.maximum(cost[order], _MIN_COST_S),
            rank=np.arange(1, len(group) + 1),
        )
        frames.append(ranked)
    return pd.concat(frames, ignore_index=True)


def max_wait_after(
    order: NDArray[np.intp], cost_s: NDArray[np.float64], waited_s: NDArray[np.float64]
) -> float:
    """The largest ``waited_s + completion time`` of an order (what the bound limits)."""
    completion = np.cumsum(np.asarray(cost_s, dtype=float)[order])
    total = np.asarray(waited_s, dtype=float)[order] + completion
    return float(total.max()) if len(total) else 0.0
