from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from forecasting.errors import DataValidationError, NotFittedError
from models.hot_segments import HotSegmentModel


def _data(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"reads_1": rng.exponential(100, n), "noise": rng.normal(size=n)})
    reads = x["reads_1"].to_numpy() * 2 + rng.exponential(1, n)
    changed = x["reads_1"].to_numpy() * 10
    return x, np.column_stack([reads, changed])


def test_learns_a_monotone_signal_and_ranks_well() -> None:
    x, y = _data()
    model = HotSegmentModel(n_estimators=60).fit(x, y)
    pred = model.predict(x)
    assert pred.shape == (len(x), 2)
    assert (pred >= 0).all()
    rank_corr = pd.Series(pred[:, 0]).corr(pd.Series(y[:, 0]), method="spearman")
    assert rank_corr > 0.9


def test_all_zero_target_predicts_zero() -> None:
    x, y = _data(80)
    y[:, 1] = 0.0  # nothing changed in the whole history
    pred = HotSegmentModel(n_estimators=10).fit(x, y).predict(x)
    assert (pred[:, 1] == 0).all()
    assert pred[:, 0].std() > 0


def test_sklearn_contract() -> None:
    model = HotSegmentModel(n_estimators=7, num_leaves=5)
    assert clone(model).get_params()["n_estimators"] == 7
    with pytest.raises(NotFittedError):
        model.predict(pd.DataFrame({"reads_1": [1.0]}))


def test_bad_inputs() -> None:
    x, y = _data(50)
    with pytest.raises(DataValidationError, match="empty"):
        HotSegmentModel().fit(x.iloc[:0], y[:0])
    with pytest.raises(DataValidationError, match=">= 0"):
        HotSegmentModel().fit(x, -y)
    model = HotSegmentModel(n_estimators=5).fit(x, y)
    with pytest.raises(DataValidationError, match="noise"):
        model.predict(x.drop(columns="noise"))
