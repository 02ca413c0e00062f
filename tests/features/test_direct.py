"""The direct design matrix uses nothing after the origin."""

from __future__ import annotations

import numpy as np

from features.direct import direct_design, feature_names
from features.scaling import origin_scales


def test_design_ignores_values_after_the_origin() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(100, 5, 400)
    hour = np.arange(500) % 24
    dow = (np.arange(500) // 24) % 7

    def design(values):
        level, spread = origin_scales(values)
        return direct_design(
            values,
            np.array([300]),
            np.arange(1, 25),
            level=level,
            spread=spread,
            hour=hour,
            dayofweek=dow,
        )

    X, target = design(y)
    changed = y.copy()
    changed[301:] = 1e6  # the future changes wildly
    X2, target2 = design(changed)
    assert np.allclose(X, X2, equal_nan=True)
    assert not np.allclose(target, target2)
    assert X.shape == (24, len(feature_names(24)))
    names = feature_names(24)
    # sday of step 1 is the value one day before the target
    level, spread = origin_scales(y)
    assert np.isclose(X[0, names.index("sday")], (y[301 - 24] - level[300]) / spread[300])
