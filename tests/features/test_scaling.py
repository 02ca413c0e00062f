"""Per-series scale normalisation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.scaling import denormalise, normalise, origin_scales


def test_normalised_series_are_scale_free_and_invertible() -> None:
    rng = np.random.default_rng(0)
    ts = pd.date_range("2024-01-01", periods=24 * 10, freq="1h", tz="UTC")
    base = 10 + np.sin(np.arange(ts.size) * 2 * np.pi / 24) + rng.normal(0, 0.1, ts.size)
    frame = pd.concat(
        [
            pd.DataFrame({"series_id": "small", "ts": ts, "y": base}),
            pd.DataFrame({"series_id": "big", "ts": ts, "y": base * 1e6}),
        ]
    )
    scaled, scales = normalise(frame)
    small = scaled[scaled.series_id == "small"].y.to_numpy()
    big = scaled[scaled.series_id == "big"].y.to_numpy()
    assert np.allclose(small, big)
    back = denormalise(scaled.rename(columns={"y": "v"}), scales, ["v"])
    assert np.allclose(
        back.sort_values(["series_id", "ts"]).v, frame.sort_values(["series_id", "ts"]).y
    )


def test_flat_series_has_a_positive_spread() -> None:
    level, spread = origin_scales(np.full(100, 5.0))
    assert (spread > 0).all() and level[-1] == 5.0
