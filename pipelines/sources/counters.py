"""Counters: turn monotonically increasing counters into per-interval increases and rates.

Pure functions, no I/O. A counter that goes down between two samples was reset
(server restart, ``pg_stat_reset()``, a dropped and recreated table): the
increase over that interval is then the new value itself (it counted up from
zero since the reset), never a negative number. This is Prometheus's
``increase()`` rule without its extrapolation. A caller that knows a reset
happened even though the value went up (PostgreSQL's ``stats_reset`` moved)
passes ``reset=True``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np


def counter_increase(previous: float | None, current: float, *, reset: bool = False) -> float:
    """The increase of one counter between two samples, never negative.

    Args:
        previous: the earlier value; ``None`` when the counter did not exist then
            (it appeared during the interval, so all of ``current`` is new).
        current: the later value.
        reset: the counter is known to have been reset in between.

    Returns:
        ``current - previous``, or ``current`` after a reset; ``nan`` when either
        value is ``nan`` (a gap stays a gap).
    """
    if current is None or math.isnan(current):
        return math.nan
    if previous is None:
        return max(current, 0.0)
    if math.isnan(previous):
        return math.nan
    if reset or current < previous:
        return max(current, 0.0)
    return current - previous


def increases(
    previous: Mapping[str, float],
    current: Mapping[str, float],
    *,
    reset: bool = False,
) -> dict[str, float]:
    """Per-key increases of the counters in ``current`` (keys only in ``previous`` are dropped).

    Args:
        previous: counter name -> value at the earlier sample.
        current: counter name -> value at the later sample.
        reset: every counter is known to have been reset in between.
    """
    return {
        key: counter_increase(previous.get(key), value, reset=reset)
        for key, value in current.items()
    }


def rates(
    previous: Mapping[str, float],
    current: Mapping[str, float],
    seconds: float,
    *,
    reset: bool = False,
) -> dict[str, float]:
    """Per-second rates of the counters between two samples ``seconds`` apart.

    Raises:
        ValueError: ``seconds`` is not positive (two samples of the same instant).
    """
    if not seconds > 0:
        raise ValueError(f"rates need samples at different times, got an interval of {seconds} s")
    return {key: inc / seconds for key, inc in increases(previous, current, reset=reset).items()}


def series_increases(values: np.ndarray) -> np.ndarray:
    """Increases between consecutive samples of one counter series.

    Args:
        values: the counter sampled at regular steps; ``nan`` marks a missing sample.

    Returns:
        An array of the same length: element ``i`` is the increase from sample
        ``i - 1`` to ``i``; element 0 and every element next to a gap is ``nan``
        (gaps are kept as gaps, not interpolated). A drop is a reset: the increase
        is the new value.
    """
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, np.nan)
    if values.size < 2:
        return out
    prev, cur = values[:-1], values[1:]
    diff = cur - prev
    out[1:] = np.where(diff < 0, np.maximum(cur, 0.0), diff)
    return out
