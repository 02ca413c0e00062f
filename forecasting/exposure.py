"""Stale-read exposure: how many real reads hit a replica before its copy arrived.

A sync run starts at ``t0`` with pending segments ``j``; copied one after another in a
given order over one link, segment ``j`` completes at ``C_j = t0 + sum of the costs
(seconds on the link) of j and of every segment before it``. Until then the replica
serves a stale copy of ``j``, so

    exposure(order) = sum_j  real reads of j in [t0, C_j).

Reads come in one of two forms, both counted with the *real* future reads:

* events (:func:`exposure_from_events`): one timestamp per read (access traces); a read
  at time ``t`` is stale when ``t < C_j``.
* binned counts (:func:`exposure_from_bins`): reads per interval of ``bin_s`` seconds
  after ``t0`` (e.g. the 15-minute ``segment_access`` rows); reads are taken as spread
  uniformly inside an interval, so a completion in the middle of a bin counts the
  prorated share of that bin.

Orderings are compared on the same run with
``captured = (alphabetical - policy) / (alphabetical - oracle)``: 0 is no better than
rsync's alphabetical order, 1 is as good as knowing the future.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from forecasting.errors import DataValidationError
from forecasting.priority import order_link

#: Orderings the evaluators compare (``oldest_change`` and ``smallest`` need their inputs).
POLICIES = ("alphabetical", "oldest_change", "smallest", "last_window", "model", "oracle")


def completion_times(order: NDArray[np.intp], cost_s: NDArray[np.float64]) -> NDArray[np.float64]:
    """Completion time (seconds after t0) of every item, indexed like ``cost_s``."""
    cost_s = np.asarray(cost_s, dtype=float)
    if np.any(~(cost_s >= 0)):
        raise DataValidationError("exposure: every cost (seconds on the link) must be >= 0")
    order = np.asarray(order, dtype=int)
    if sorted(order.tolist()) != list(range(len(cost_s))):
        raise DataValidationError(
            f"exposure: the order must be a permutation of 0..{len(cost_s) - 1}, got {order[:10]}"
        )
    completion = np.empty(len(cost_s))
    completion[order] = np.cumsum(cost_s[order])
    return completion


def exposure_from_events(
    completion_s: NDArray[np.float64], event_item: NDArray[np.intp], event_t: NDArray[np.float64]
) -> float:
    """Reads that arrive before their item is copied.

    Args:
        completion_s: completion time of each item (seconds after t0).
        event_item: for each read, the index of its item (-1: not pending, ignored).
        event_t: for each read, its time in seconds after t0 (>= 0).
    """
    event_item = np.asarray(event_item, dtype=int)
    event_t = np.asarray(event_t, dtype=float)
    pending = event_item >= 0
    stale = event_t[pending] < np.asarray(completion_s, dtype=float)[event_item[pending]]
    return float(stale.sum())


def exposure_from_bins(
    completion_s: NDArray[np.float64], reads: NDArray[np.float64], bin_s: float
) -> float:
    """Reads (prorated within a bin) that arrive before their item is copied.

    Args:
        completion_s: completion time of each item (seconds after t0).
        reads: array ``(items, bins)``: real reads of each item in ``[t0 + b*bin_s,
            t0 + (b+1)*bin_s)``.
        bin_s: bin length in seconds (> 0).
    """
    if not bin_s > 0:
        raise DataValidationError(f"exposure: bin length must be > 0 s, got {bin_s}")
    reads = np.asarray(reads, dtype=float)
    if reads.ndim != 2 or reads.shape[0] != len(completion_s):
        raise DataValidationError(
            f"exposure: reads must be (items, bins) with {len(completion_s)} items, "
            f"got shape {reads.shape}"
        )
    n_items, n_bins = reads.shape
    if n_items == 0 or n_bins == 0:
        return 0.0
    cum = np.concatenate([np.zeros((n_items, 1)), np.cumsum(reads, axis=1)], axis=1)
    position = np.clip(np.asarray(completion_s, dtype=float) / bin_s, 0, n_bins)
    whole = np.minimum(np.floor(position).astype(int), n_bins)
    frac = position - whole
    rows = np.arange(n_items)
    partial = np.where(whole < n_bins, reads[rows, np.minimum(whole, n_bins - 1)] * frac, 0.0)
    return float((cum[rows, whole] + partial).sum())


def smith_order(
    names: Sequence[str], weight: NDArray[np.float64], cost_s: NDArray[np.float64]
) -> NDArray[np.intp]:
    """Order by ``weight / cost`` descending (no ageing), ties by name."""
    n = len(names)
    return order_link(list(names), weight, cost_s, np.zeros(n), max_wait_s=math.inf, clusters=None)


def alphabetical_order(names: Sequence[str]) -> NDArray[np.intp]:
    """rsync's order: by name."""
    return np.asarray(sorted(range(len(names)), key=lambda i: names[i]), dtype=int)


def ascending_order(names: Sequence[str], key: NDArray[np.float64]) -> NDArray[np.intp]:
    """Order by ``key`` ascending (oldest change first, smallest first), ties by name."""
    key = np.asarray(key, dtype=float)
    return np.asarray(sorted(range(len(names)), key=lambda i: (key[i], names[i])), dtype=int)


def captured(alphabetical: float, policy: float, oracle: float) -> float:
    """Share of the possible reduction of exposure a policy achieves (NaN if none possible)."""
    gap = alphabetical - oracle
    if gap <= 0:
        return math.nan
    return (alphabetical - policy) / gap
