"""The fit memo: identical (model, data) pairs share one fit; anything else does not."""

from __future__ import annotations

import copy
import pickle

import numpy as np

from models.baselines import SeasonalNaive
from models.ensemble import Ensemble
from models.ets import ETSForecaster
from models.fit_cache import FitCache
from tests.models.synthetic import panel


def test_identical_fit_is_adopted_and_different_data_is_not() -> None:
    cache = FitCache()
    data = panel(n_series=2, days=8)
    first = ETSForecaster(model="ANA", fit_cache=cache).fit(data)
    second = ETSForecaster(model="ANA")
    key = cache.key(second, data)
    assert key == cache.key(ETSForecaster(model="ANA", fit_cache=FitCache()), data)
    assert cache.adopt(second, key)
    a = first.predict(data, 24, [0.5])
    assert np.allclose(a["q0.5"], second.predict(data, 24, [0.5])["q0.5"])
    other = data.assign(y=data.y * 2)
    assert not cache.adopt(ETSForecaster(model="ANA"), cache.key(second, other))
    assert not cache.adopt(ETSForecaster(model="AAA"), cache.key(ETSForecaster(model="AAA"), data))


def test_no_cache_means_no_memo() -> None:
    cache = FitCache()
    data = panel(n_series=2, days=8)
    model = ETSForecaster(model="ANA").fit(data)
    assert cache.recall(cache.key(model, data)) is None


def test_refitting_an_object_does_not_corrupt_the_memo() -> None:
    cache = FitCache()
    data = panel(n_series=2, days=8)
    model = ETSForecaster(model="ANA", fit_cache=cache).fit(data)
    before = model.predict(data, 24, [0.5])["q0.5"].to_numpy()
    model.fit(data.assign(y=data.y * 3))  # same object, other data
    again = ETSForecaster(model="ANA", fit_cache=cache).fit(data)
    assert np.allclose(again.predict(data, 24, [0.5])["q0.5"], before)


def test_ensemble_members_reuse_stand_alone_fits() -> None:
    cache = FitCache()
    data = panel(n_series=2, days=10)
    ets = ETSForecaster(model="ANA", fit_cache=cache).fit(data)
    ens = Ensemble(
        members={"ets": ETSForecaster(model="ANA", fit_cache=cache), "sn": SeasonalNaive()},
        fit_once=("ets", "sn"),
        fit_cache=cache,
    ).fit(data)
    assert ens.fitted_members_["ets"].models_ is not None
    assert set(ens.fitted_members_["ets"].models_) == set(ets.models_)
    assert ens.members["ets"] is not ens.fitted_members_["ets"]  # the member itself stays unfitted
    assert ens.fitted_members_["ets"] is cache.recall(cache.key(ets, data))


def test_the_cache_is_shared_by_copies_and_left_behind_by_pickles() -> None:
    cache = FitCache(max_entries=2)
    data = panel(n_series=2, days=8)
    model = ETSForecaster(model="ANA", fit_cache=cache).fit(data)
    assert copy.deepcopy(model).fit_cache is cache
    restored = pickle.loads(pickle.dumps(model))
    assert restored.fit_cache is not cache and restored.fit_cache.max_entries == 2
    assert restored.fit_cache.recall(cache.key(model, data)) is None
    assert cache.recall(cache.key(model, data)) is not None


def test_only_the_newest_fits_are_kept() -> None:
    cache = FitCache(max_entries=2)
    for key in ("a", "b", "c"):
        cache.remember((key,), key)
    assert [cache.recall((k,)) for k in ("a", "b", "c")] == [None, "b", "c"]
