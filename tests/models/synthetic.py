"""Seeded synthetic panels for model tests (daily + weekly seasonality, noise, gaps)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def panel(
    n_series: int = 3,
    days: int = 21,
    seed: int = 0,
    scales: tuple[float, ...] = (1.0, 50.0, 2000.0),
    gap: bool = True,
) -> pd.DataFrame:
    """Hourly series ``"c/r<i>"`` with daily/weekly cycles at very different scales."""
    rng = np.random.default_rng(seed)
    n = days * 24
    ts = pd.date_range("2024-03-04", periods=n, freq="1h", tz="UTC")
    t = np.arange(n)
    parts = []
    for i in range(n_series):
        scale = scales[i % len(scales)]
        daily = np.sin(2 * np.pi * (t + 3 * i) / 24)
        weekly = 0.3 * (ts.dayofweek.to_numpy() >= 5)
        y = scale * (10 + 3 * daily - weekly * 3 + rng.normal(0, 0.5, n))
        if gap and i == 0:
            y[n // 2 : n // 2 + 5] = np.nan
        parts.append(pd.DataFrame({"series_id": f"c/r{i}", "ts": ts, "y": y}))
    return pd.concat(parts, ignore_index=True)
