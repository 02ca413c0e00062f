"""The hot-segment estimator: LightGBM predicting next-window reads and bytes changed.

Follows the scikit-learn contract: ``__init__`` only stores its arguments, ``fit``
validates and learns (state ends in ``_``), ``predict`` checks it was fitted.
Both targets are heavy-tailed, so each LightGBM model learns ``log1p(target)``
with an L2 loss (good for ranking across orders of magnitude) and ``predict``
returns ``expm1`` of it, clipped at 0. Input is the feature frame of
:func:`features.segment_features.segment_features`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.dummy import DummyRegressor

from features.segment_features import build_panel, segment_features
from forecasting.errors import DataValidationError, NotFittedError

TARGETS = ("reads", "bytes_changed")


class HotSegmentModel(RegressorMixin, BaseEstimator):
    """Two LightGBM regressors over segment features: next-window reads and bytes changed.

    Args:
        n_estimators: boosting rounds per target.
        learning_rate: LightGBM learning rate.
        num_leaves: LightGBM leaves per tree.
        min_child_samples: minimum rows per leaf.
        objective: ``"log_l2"`` (L2 on log1p of the target: ranks across orders of
            magnitude) or ``"poisson"`` (mean-unbiased counts).
        seed: random seed.
    """

    def __init__(
        self,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        objective: str = "poisson",
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.objective = objective
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: pd.DataFrame | np.ndarray) -> Self:  # noqa: N803
        """Learn from features ``X`` and targets ``y`` (columns reads, bytes_changed)."""
        if len(X) == 0:
            raise DataValidationError("hot-segment model: no training rows (empty history)")
        targets = np.asarray(y, dtype=float)
        if targets.ndim == 1:
            targets = targets[:, None]
        if len(targets) != len(X):
            raise DataValidationError(
                f"hot-segment model: {len(X)} feature rows but {len(targets)} target rows"
            )
        if np.any(targets < 0) or np.isnan(targets).any():
            raise DataValidationError("hot-segment model: targets must be >= 0 and not NaN")
        if self.objective not in ("log_l2", "poisson"):
            raise DataValidationError(
                f"hot-segment model: objective must be 'log_l2' or 'poisson', "
                f"got {self.objective!r}"
            )
        self.feature_names_ = [str(c) for c in X.columns]
        self.models_ = []
        for j in range(targets.shape[1]):
            model = lgb.LGBMRegressor(
                objective="regression" if self.objective == "log_l2" else "poisson",
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                num_leaves=self.num_leaves,
                min_child_samples=self.min_child_samples,
                subsample=0.8,
                subsample_freq=1,
                colsample_bytree=0.9,
                random_state=self.seed,
                n_jobs=1,
                verbose=-1,
            )
            target = targets[:, j]
            if not target.any():  # LightGBM's Poisson refuses all-zero labels
                self.models_.append(
                    DummyRegressor(strategy="constant", constant=0.0).fit(
                        X.to_numpy(dtype=float), target
                    )
                )
                continue
            model.fit(
                X.to_numpy(dtype=float),
                np.log1p(target) if self.objective == "log_l2" else target,
            )
            self.models_.append(model)
        self.n_outputs_ = targets.shape[1]
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """Predicted next-window values, shape ``(rows, outputs)`` (reads first)."""
        if not hasattr(self, "models_"):
            raise NotFittedError("HotSegmentModel: call fit before predict")
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise DataValidationError(f"hot-segment model: feature column(s) missing: {missing}")
        matrix = X[self.feature_names_].to_numpy(dtype=float)
        if len(matrix) == 0:
            return np.zeros((0, self.n_outputs_))
        out = np.column_stack([m.predict(matrix) for m in self.models_])
        if self.objective == "log_l2":
            out = np.expm1(out)  # a constant 0 stays 0
        return np.maximum(out, 0.0)


def predict_next_window(
    model: HotSegmentModel,
    history: pd.DataFrame,
    *,
    window: str = "1h",
    timezones: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Predict, per cluster and segment, reads and bytes changed of the window after the data.

    Args:
        model: a fitted :class:`HotSegmentModel`.
        history: recent ``segment_access`` rows (``cluster, segment, ts, reads`` and
            optionally ``writes, bytes_changed, size_bytes``); a week or more gives the
            seasonal lags.
        window: the window length the model was trained on.
        timezones: cluster -> IANA timezone for the calendar features (default UTC).

    Returns:
        ``ts`` (start of the predicted window), ``cluster``, ``segment``, ``pred_reads``,
        ``pred_bytes_changed``.
    """
    if "cluster" not in history.columns:
        raise DataValidationError("hot-segment scoring: history needs a 'cluster' column")
    if history.empty:
        raise DataValidationError("hot-segment scoring: empty history")
    parts = []
    for cluster, rows in history.groupby("cluster", sort=True):
        panel = build_panel(rows, window=window)
        tz = (timezones or {}).get(str(cluster))
        feats = segment_features(panel, [panel.n_windows - 1], timezone=tz)
        pred = model.predict(feats)
        parts.append(
            pd.DataFrame(
                {
                    "ts": feats["ts"].to_numpy(),
                    "cluster": str(cluster),
                    "segment": feats["segment"].to_numpy(),
                    "pred_reads": pred[:, 0],
                    "pred_bytes_changed": pred[:, 1] if pred.shape[1] > 1 else np.nan,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)
