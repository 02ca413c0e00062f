"""Every model honours the Forecaster protocol and the sklearn contract."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from forecasting.errors import NotFittedError
from forecasting.forecaster import Forecaster, quantile_columns
from forecasting.settings import ForecastConfig
from models.baselines import SeasonalNaive
from models.catalog import build, known_models
from models.ensemble import Ensemble
from models.ets import ETSForecaster
from models.lightgbm_quantile import LightGBMQuantile
from models.prophet_model import ProphetForecaster
from tests.models.synthetic import panel


def _small_lightgbm() -> LightGBMQuantile:
    return LightGBMQuantile(n_estimators=30, max_rows=20_000)


def _ensemble() -> Ensemble:
    members = {"lgb": _small_lightgbm(), "ets": ETSForecaster(model="ANA"), "sn": SeasonalNaive()}
    return Ensemble(members=members, fit_once=("ets", "sn"))


# Same classes as the catalog builds, with small settings so the suite stays fast.
FACTORIES: dict[str, Callable[[], Forecaster]] = {
    "seasonal_naive_day": lambda: SeasonalNaive(24),
    "seasonal_naive_week": lambda: SeasonalNaive(168),
    "lightgbm": _small_lightgbm,
    "ets": lambda: ETSForecaster(model="ANA"),
    "ensemble": _ensemble,
    "prophet": lambda: ProphetForecaster(n_jobs=2),
}
MODELS = [n if n != "prophet" else pytest.param(n, marks=pytest.mark.slow) for n in FACTORIES]
QUANTILES = [0.05, 0.5, 0.9, 0.95]


@pytest.fixture(scope="module")
def history():
    return panel(n_series=3, days=12)


def test_catalog_builds_every_model_class() -> None:
    assert set(FACTORIES) == set(known_models())
    for name in known_models():
        built = build(name, ForecastConfig())
        assert type(built) is type(FACTORIES[name]())
        assert isinstance(built, Forecaster)


@pytest.mark.parametrize("name", MODELS)
def test_fit_predict_contract(name: str, history) -> None:
    model = FACTORIES[name]()
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
    means = out.groupby("series_id")["q0.5"].mean()
    truth = history.groupby("series_id").y.mean()
    assert np.allclose(means / truth, 1.0, atol=0.2)  # right level on every scale
