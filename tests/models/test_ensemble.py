"""The median ensemble."""

from __future__ import annotations

import pandas as pd

from models.baselines import SeasonalNaive
from models.ensemble import Ensemble, truncate
from tests.models.synthetic import panel


def test_truncate_drops_newest_rows_per_series() -> None:
    data = panel(n_series=2, days=5)
    out = truncate(data, 10)
    assert (out.groupby("series_id").size() == 5 * 24 - 10).all()
    assert (out.groupby("series_id").ts.max() == data.ts.max() - pd.Timedelta(hours=10)).all()


def test_median_of_members_and_calibrated_interval() -> None:
    data = panel(n_series=3, days=21, seed=7)
    members = {"day": SeasonalNaive(24), "week": SeasonalNaive(168), "day2": SeasonalNaive(24)}
    ens = Ensemble(members=members).fit(data)
    out = ens.predict(data, 24, [0.05, 0.5, 0.95])
    day = SeasonalNaive(24).fit(data).predict(data, 24, [0.5])
    # two of three members agree: the median is their forecast (up to the calibration offset)
    diff = out["q0.5"].to_numpy() - day["q0.5"].to_numpy()
    spread = (out["q0.95"] - out["q0.05"]).to_numpy()
    assert (abs(diff) < 0.25 * spread).all()
    assert (out["q0.05"] < out["q0.95"]).all()
