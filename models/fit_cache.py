"""A small in-process memo of fitted models, keyed by class, parameters and training data.

Fitting is a pure function of the estimator's parameters and the history, so a
model fitted once can stand in for an identical one: the ensemble reuses the
LightGBM and ETS fits that a backtest has just made for the stand-alone models
on the same training part, instead of fitting them again. Only the newest
``MAX_ENTRIES`` fits are kept.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pandas as pd

from forecasting.forecaster import SERIES, TS, Y

MAX_ENTRIES = 6
_CACHE: OrderedDict[tuple, Any] = OrderedDict()


def fingerprint(history: pd.DataFrame) -> tuple[int, int]:
    """A content hash of the ``series_id, ts, y`` rows (row order matters)."""
    frame = history[[SERIES, TS, Y]]
    return len(frame), int(pd.util.hash_pandas_object(frame, index=False).sum())


def cache_key(model: Any, history: pd.DataFrame) -> tuple:
    """Key of ``model`` (class + ``__init__`` parameters) fitted on ``history``."""
    params = tuple(sorted((k, repr(v)) for k, v in vars(model).items() if not k.endswith("_")))
    return (type(model).__qualname__, params, fingerprint(history))


def remember(key: tuple, fitted: Any) -> None:
    """Store a fitted model under ``key`` (evicting the oldest beyond ``MAX_ENTRIES``)."""
    _CACHE[key] = fitted
    _CACHE.move_to_end(key)
    while len(_CACHE) > MAX_ENTRIES:
        _CACHE.popitem(last=False)


def recall(key: tuple) -> Any | None:
    """The fitted model stored under ``key``, or None."""
    return _CACHE.get(key)


def clear() -> None:
    """Forget every stored fit."""
    _CACHE.clear()


def adopt(model: Any, key: tuple) -> bool:
    """Copy the learned attributes (``*_``) of the fit stored under ``key`` into ``model``.

    Returns:
        True when there was such a fit (``model`` is now fitted), else False.
    """
    fitted = recall(key)
    if fitted is None:
        return False
    model.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
    return True
