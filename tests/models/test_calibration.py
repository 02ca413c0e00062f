"""Conformal calibration: stated coverage is real coverage on exchangeable data."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.errors import NotFittedError
from models.calibration import ConformalCalibrator


def test_coverage_matches_level_on_synthetic_residuals() -> None:
    rng = np.random.default_rng(1)
    steps = rng.integers(1, 25, 4000)
    noise = rng.standard_t(df=3, size=4000) * (1 + steps / 12)  # heavier further out
    cal = ConformalCalibrator().fit(noise, steps, horizon=24)
    new_steps = rng.integers(1, 25, 20000)
    new = rng.standard_t(df=3, size=20000) * (1 + new_steps / 12)
    off = cal.offsets(new_steps, [0.05, 0.5, 0.95])
    inside = (new >= off[:, 0]) & (new <= off[:, 2])
    assert inside.mean() == pytest.approx(0.90, abs=0.02)
    assert (new <= off[:, 1]).mean() == pytest.approx(0.5, abs=0.02)
    # later steps get wider intervals
    early, late = cal.offsets(np.array([1, 24]), [0.05, 0.95])
    assert late[1] - late[0] > early[1] - early[0]


def test_small_buckets_fall_back_to_pooled_residuals() -> None:
    cal = ConformalCalibrator(min_per_bucket=50).fit(np.arange(10.0), np.ones(10), horizon=24)
    assert np.allclose(cal.offsets(np.array([1]), [0.5]), cal.offsets(np.array([24]), [0.5]))


def test_offsets_before_fit_raise() -> None:
    with pytest.raises(NotFittedError):
        ConformalCalibrator().offsets(np.array([1]), [0.5])
