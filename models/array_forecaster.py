"""The array fast path an estimator may offer: one series as NumPy arrays in, arrays out.

The pyfunc wrapper (:mod:`models.mlflow_load`) calls it when the fitted
estimator has it (the serving hot path) and falls back to the DataFrame
``predict`` otherwise. An estimator implementing it must give the same numbers
as its ``predict`` on the same history: both run the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ArrayForecaster(Protocol):
    """A fitted estimator that forecasts one series from arrays, without DataFrames."""

    def forecast_arrays(
        self,
        series_id: str,
        last: np.datetime64,
        values: np.ndarray,
        horizon: int,
        quantiles: Sequence[float],
    ) -> dict[str, np.ndarray]:
        """Forecast ``horizon`` steps after ``last`` from ``values`` (oldest first).

        Args:
            series_id: the series key (``"<cluster>/<region>"``).
            last: timestamp of ``values[-1]`` (UTC, naive ``datetime64[ns]``).
            values: one value per step ending at ``last``; NaN marks a missing step.
            horizon: steps ahead.
            quantiles: ascending quantile levels.

        Returns:
            ``{"ts": datetime64[ns] array, "step": int64 array, "q<level>": float64
            array per level}``, each of length ``horizon``.
        """
        ...
