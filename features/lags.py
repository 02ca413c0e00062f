"""Past values by position: ``take`` reads ``y`` at given indices, NaN outside the series."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def take(y: NDArray[np.float64], index: NDArray[np.intp]) -> NDArray[np.float64]:
    """``y[index]`` with NaN where ``index`` falls outside ``0..len(y)-1``."""
    idx = np.asarray(index)
    inside = (idx >= 0) & (idx < y.size)
    out = np.full(idx.shape, np.nan)
    out[inside] = y[idx[inside]]
    return out
