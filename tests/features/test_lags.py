"""take: values by position, NaN outside the series."""

from __future__ import annotations

import numpy as np

from features.lags import take


def test_take_reads_inside_and_is_nan_outside() -> None:
    out = take(np.arange(3.0) * 10, np.array([-1, 0, 2, 3]))
    assert np.isnan(out[[0, 3]]).all()
    assert out[1] == 0.0 and out[2] == 20.0


def test_take_keeps_the_shape_of_the_index() -> None:
    assert take(np.arange(5.0), np.array([[0, 1], [4, 5]])).shape == (2, 2)
