"""Split-conformal quantiles from held-out residuals.

Residuals ``actual - point`` (in the model's scale-free units) measured on data
the model did not train on are grouped by horizon step bucket; the forecast
quantile ``q`` is the point forecast plus the empirical ``q``-quantile of its
bucket's residuals. With exchangeable residuals, the interval between two such
quantiles covers the stated share of future values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np

from models.fitted import check_fitted


class ConformalCalibrator:
    """Empirical residual quantiles per horizon-step bucket.

    Args:
        n_buckets: groups of consecutive horizon steps sharing one residual pool.
        min_per_bucket: a bucket with fewer residuals uses the pooled residuals.
    """

    def __init__(self, n_buckets: int = 4, min_per_bucket: int = 50) -> None:
        self.n_buckets = n_buckets
        self.min_per_bucket = min_per_bucket

    def fit(self, residuals: np.ndarray, steps: np.ndarray, horizon: int) -> Self:
        """Store the finite residuals of each bucket; returns ``self``."""
        residuals = np.asarray(residuals, dtype=float)
        steps = np.asarray(steps)
        keep = np.isfinite(residuals)
        residuals, steps = residuals[keep], steps[keep]
        if residuals.size == 0:
            residuals, steps = np.zeros(1), np.ones(1, dtype=int)
        self.horizon_ = int(max(horizon, 1))
        self.pooled_ = np.sort(residuals)
        buckets = self._bucket(steps)
        self.buckets_: list[np.ndarray] = []
        for b in range(self.n_buckets):
            part = np.sort(residuals[buckets == b])
            self.buckets_.append(part if part.size >= self.min_per_bucket else self.pooled_)
        return self

    def _bucket(self, steps: np.ndarray) -> np.ndarray:
        clipped = np.clip(np.asarray(steps), 1, self.horizon_)
        return np.minimum((clipped - 1) * self.n_buckets // self.horizon_, self.n_buckets - 1)

    def offsets(self, steps: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
        """Residual quantiles ``(len(steps), len(quantiles))`` to add to the point forecasts.

        Steps beyond the fitted horizon use the last bucket.
        """
        check_fitted(self, "buckets_")
        levels = np.asarray(list(quantiles), dtype=float)
        table = np.stack([_quantiles(b, levels) for b in self.buckets_])
        return table[self._bucket(np.asarray(steps))]


def _quantiles(sorted_residuals: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Finite-sample conformal quantiles: levels pushed outward by ``1/(n+1)``."""
    n = sorted_residuals.size
    adjusted = np.where(
        levels >= 0.5,
        np.minimum(levels * (n + 1) / n, 1.0),
        np.maximum(1.0 - (1.0 - levels) * (n + 1) / n, 0.0),
    )
    return np.quantile(sorted_residuals, adjusted)
