"""The global LightGBM model: scale-free, calibrated, non-crossing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.lightgbm_quantile import LightGBMQuantile
from tests.models.synthetic import panel


def test_scale_free_global_model_and_coverage() -> None:
    data = panel(n_series=4, days=21, seed=3)
    cut = data.ts.max() - pd.Timedelta(hours=24)
    train, test = data[data.ts <= cut], data[data.ts > cut]
    model = LightGBMQuantile(n_estimators=80, max_rows=30_000).fit(train)
    out = model.predict(train, 24, [0.05, 0.5, 0.95])
    merged = out.merge(test, on=["series_id", "ts"])
    rel_err = (merged["q0.5"] - merged.y).abs() / merged.y.abs()
    assert rel_err.median() < 0.1  # learned the daily cycle on every scale
    inside = ((merged.y >= merged["q0.05"]) & (merged.y <= merged["q0.95"])).mean()
    assert 0.75 <= inside <= 1.0
    assert (merged["q0.05"] <= merged["q0.5"]).all() and (merged["q0.5"] <= merged["q0.95"]).all()


def test_scaling_a_series_scales_its_forecast() -> None:
    data = panel(n_series=3, days=16, seed=4)
    model = LightGBMQuantile(n_estimators=30, max_rows=20_000).fit(data)
    base = model.predict(data, 24, [0.5]).set_index(["series_id", "step"])["q0.5"]
    bigger = data.assign(y=data.y * 1000)
    scaled = model.predict(bigger, 24, [0.5]).set_index(["series_id", "step"])["q0.5"]
    assert np.allclose(scaled, base * 1000, rtol=1e-6)


def test_unseen_series_and_longer_horizon() -> None:
    data = panel(n_series=2, days=14, seed=5)
    model = LightGBMQuantile(n_estimators=20, max_rows=10_000).fit(data)
    other = panel(n_series=1, days=10, seed=6).assign(series_id="x/new")
    out = model.predict(other, 30, [0.1, 0.5, 0.9])
    assert len(out) == 30 and out["q0.5"].notna().all()
