"""Every catalog model honours the Forecaster protocol and the sklearn contract."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.errors import NotFittedError
from forecasting.forecaster import Forecaster, quantile_columns
from forecasting.settings import ForecastConfig
from models.catalog import build
from tests.models.synthetic import panel

FAST = ["seasonal_naive_day", "seasonal_naive_week", "lightgbm", "ets", "ensemble"]
MODELS = [*FAST, pytest.param("prophet", marks=pytest.mark.slow)]
QUANTILES = [0.05, 0.5, 0.9, 0.95]


@pytest.fixture(scope="module")
def history():
    return panel(n_series=3, days=16)


@pytest.mark.parametrize("name", MODELS)
def test_fit_predict_contract(name: str, history) -> None:
    model = build(name, ForecastConfig())
    assert isinstance(model, Forecaster)
    with pytest.raises(NotFittedError):
        model.predict(history, 24, QUANTILES)
    assert model.fit(history) is model
    out = model.predict(history, 24, QUANTILES)
    cols = quantile_columns(QUANTILES)
    assert list(out.columns) == ["series_id", "ts", "step", *cols]
    assert len(out) == 3 * 24
    assert out[cols].notna().all().all()
    values = out[cols].to_numpy()
    assert (np.diff(values, axis=1) >= 0).all(), "quantiles cross"
    last = history.groupby("series_id").ts.max()
    first = out[out.step == 1].set_index("series_id").ts
    assert ((first - last).dt.total_seconds() == 3600).all()


@pytest.mark.parametrize("name", FAST)
def test_median_tracks_scale(name: str, history) -> None:
    model = build(name, ForecastConfig()).fit(history)
    out = model.predict(history, 24, [0.5])
    means = out.groupby("series_id")["q0.5"].mean()
    truth = history.groupby("series_id").y.mean()
    assert np.allclose(means / truth, 1.0, atol=0.2)
