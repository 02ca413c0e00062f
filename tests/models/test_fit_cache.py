"""The fit memo: identical (model, data) pairs share one fit; anything else does not."""

from __future__ import annotations

import numpy as np

from models import fit_cache
from models.baselines import SeasonalNaive
from models.ensemble import Ensemble
from models.ets import ETSForecaster
from tests.models.synthetic import panel


def test_identical_fit_is_adopted_and_different_data_is_not() -> None:
    fit_cache.clear()
    data = panel(n_series=2, days=8)
    first = ETSForecaster(model="ANA").fit(data)
    second = ETSForecaster(model="ANA")
    key = fit_cache.cache_key(second, data)
    assert fit_cache.adopt(second, key)
    a = first.predict(data, 24, [0.5])
    assert np.allclose(a["q0.5"], second.predict(data, 24, [0.5])["q0.5"])
    other = data.assign(y=data.y * 2)
    assert not fit_cache.adopt(ETSForecaster(model="ANA"), fit_cache.cache_key(second, other))
    assert not fit_cache.adopt(
        ETSForecaster(model="AAA"), fit_cache.cache_key(ETSForecaster(model="AAA"), data)
    )


def test_refitting_an_object_does_not_corrupt_the_memo() -> None:
    fit_cache.clear()
    data = panel(n_series=2, days=8)
    model = ETSForecaster(model="ANA").fit(data)
    before = model.predict(data, 24, [0.5])["q0.5"].to_numpy()
    model.fit(data.assign(y=data.y * 3))  # same object, other data
    again = ETSForecaster(model="ANA").fit(data)
    assert np.allclose(again.predict(data, 24, [0.5])["q0.5"], before)


def test_ensemble_members_reuse_stand_alone_fits() -> None:
    fit_cache.clear()
    data = panel(n_series=2, days=10)
    ets = ETSForecaster(model="ANA").fit(data)
    ens = Ensemble(
        members={"ets": ETSForecaster(model="ANA"), "sn": SeasonalNaive()}, fit_once=("ets", "sn")
    ).fit(data)
    assert ens.fitted_members_["ets"].models_ is not None
    assert set(ens.fitted_members_["ets"].models_) == set(ets.models_)
    assert ens.members["ets"] is not ens.fitted_members_["ets"]  # the member itself stays unfitted
