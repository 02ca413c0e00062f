"""A small memo of fitted models, keyed by class, parameters and training data.

Fitting is a pure function of the estimator's parameters and the history, so a
model fitted once can stand in for an identical one: the ensemble reuses the
LightGBM and ETS fits that a backtest has just made for the stand-alone models
on the same training part, instead of fitting them again.

A :class:`FitCache` is owned by its caller (a backtest or a training job) and
handed to the estimators it builds (their ``fit_cache`` argument; None = no
memo). Only the newest ``max_entries`` fits are kept. The memo travels by
reference only: ``copy.deepcopy`` returns the same cache, and pickling it (a
fitted model sent to a worker or logged to MLflow) gives an empty one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Self

import pandas as pd

from forecasting.forecaster import SERIES, TS, Y

MAX_ENTRIES = 6


def fingerprint(history: pd.DataFrame) -> tuple[int, int]:
    """A content hash of the ``series_id, ts, y`` rows (row order matters)."""
    frame = history[[SERIES, TS, Y]]
    return len(frame), int(pd.util.hash_pandas_object(frame, index=False).sum())


class FitCache:
    """The newest ``max_entries`` fitted models, by (class, parameters, training data)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._fits: OrderedDict[tuple, Any] = OrderedDict()

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self  # shared by a model and its copies, never copied with them

    def __reduce__(self) -> tuple[type[FitCache], tuple[int]]:
        return (type(self), (self.max_entries,))  # the fits stay in this process

    @staticmethod
    def key(model: Any, history: pd.DataFrame) -> tuple:
        """Key of ``model`` (class, parameters but ``fit_cache``) fitted on ``history``."""
        params = tuple(
            sorted(
                (k, repr(v))
                for k, v in vars(model).items()
                if not k.endswith("_") and k != "fit_cache"
            )
        )
        return (type(model).__qualname__, params, fingerprint(history))

    def remember(self, key: tuple, fitted: Any) -> None:
        """Store a fitted model under ``key`` (evicting the oldest beyond ``max_entries``)."""
        self._fits[key] = fitted
        self._fits.move_to_end(key)
        while len(self._fits) > self.max_entries:
            self._fits.popitem(last=False)

    def recall(self, key: tuple) -> Any | None:
        """The fitted model stored under ``key``, or None."""
        return self._fits.get(key)

    def clear(self) -> None:
        """Forget every stored fit."""
        self._fits.clear()

    def adopt(self, model: Any, key: tuple) -> bool:
        """Copy the learned attributes (``*_``) of the fit stored under ``key`` into ``model``.

        Returns:
            True when there was such a fit (``model`` is now fitted), else False.
        """
        fitted = self.recall(key)
        if fitted is None:
            return False
        model.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
        return True
