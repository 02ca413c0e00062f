"""The ``Forecaster`` protocol every load model implements, and its frame contract.

History is a *long* frame: one row per (series, timestamp) with columns
``series_id`` (str), ``ts`` (UTC, regular at the model's ``freq``) and ``y``
(float; NaN marks a missing interval). A forecast is a long frame with
``series_id``, ``ts`` (target time), ``step`` (1..horizon) and one column per
quantile named by :func:`quantile_column` (``q0.5``, ``q0.9``, ...), which never
cross (q_a <= q_b for a < b).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, Self, runtime_checkable

import pandas as pd

SERIES = "series_id"
TS = "ts"
Y = "y"
STEP = "step"


def quantile_column(q: float) -> str:
    """``0.9 -> "q0.9"``, ``0.05 -> "q0.05"``."""
    return f"q{q:g}"


def quantile_columns(quantiles: Sequence[float]) -> list[str]:
    return [quantile_column(q) for q in sorted(quantiles)]


@runtime_checkable
class Forecaster(Protocol):
    """A model that learns from many series and forecasts quantiles ``horizon`` steps ahead."""

    def fit(self, history: pd.DataFrame) -> Self:
        """Learn from a long history frame (``series_id, ts, y``); returns ``self``."""
        ...

    def predict(
        self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]
    ) -> pd.DataFrame:
        """Forecast each series of ``history`` from its last timestamp on.

        Returns ``series_id, ts, step`` and one column per quantile.
        """
        ...
