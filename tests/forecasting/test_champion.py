"""Champion choice: best mean MASE, ties broken by pinball loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.champion import choose_champion
from forecasting.errors import DataValidationError


def _summary(rows: dict[str, tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {"mase_mean": [v[0] for v in rows.values()], "pinball_mean": [v[1] for v in rows.values()]},
        index=pd.Index(list(rows), name="model"),
    )


def test_lowest_mase_wins_even_with_worse_pinball() -> None:
    choice = choose_champion(_summary({"a": (0.9, 50.0), "b": (0.8, 99.0), "c": (1.2, 1.0)}))
    assert choice.model == "b"
    assert choice.mase == pytest.approx(0.8)


def test_mase_tie_goes_to_lower_pinball() -> None:
    choice = choose_champion(_summary({"a": (0.8, 5.0), "b": (0.8, 3.0), "c": (0.9, 1.0)}))
    assert choice.model == "b"
    assert "tie" in choice.reason


def test_full_tie_is_deterministic_by_name() -> None:
    s = _summary({"zeta": (0.8, 3.0), "alpha": (0.8, 3.0)})
    assert choose_champion(s).model == "alpha"
    assert choose_champion(s.iloc[::-1]).model == "alpha"


def test_nan_mase_never_wins_and_model_column_accepted() -> None:
    frame = _summary({"a": (np.nan, 0.0), "b": (2.0, 9.0)}).reset_index()
    assert choose_champion(frame).model == "b"


def test_no_finite_mase_is_an_error() -> None:
    with pytest.raises(DataValidationError, match="finite"):
        choose_champion(_summary({"a": (np.nan, 1.0)}))
