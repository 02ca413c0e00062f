"""Champion choice: the model with the best mean MASE; ties go to the lower pinball loss."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from forecasting.errors import DataValidationError


@dataclass(frozen=True)
class ChampionChoice:
    """The chosen model and the figures it won with."""

    model: str
    mase: float
    pinball: float
    reason: str


def choose_champion(
    summary: pd.DataFrame,
    *,
    mase_col: str = "mase_mean",
    pinball_col: str = "pinball_mean",
    rel_tol: float = 1e-9,
) -> ChampionChoice:
    """Pick the champion from a per-model summary (``BacktestResult.summary()``).

    The lowest ``mase_col`` wins. Models whose MASE is equal to the best within
    ``rel_tol`` tie; among them the lowest ``pinball_col`` wins, then the name
    (alphabetical) so the choice is deterministic. Models with a NaN MASE
    never win.

    Args:
        summary: one row per model; the model name is the index or a ``model`` column.
        mase_col: column holding the mean MASE.
        pinball_col: column holding the mean pinball loss.
        rel_tol: relative tolerance under which two MASE values tie.

    Raises:
        DataValidationError: no model has a finite MASE, or a column is missing.
    """
    frame = summary.set_index("model") if "model" in summary.columns else summary
    missing = [c for c in (mase_col, pinball_col) if c not in frame.columns]
    if missing:
        raise DataValidationError(f"champion summary lacks column(s) {missing}")
    scored = frame.loc[frame[mase_col].notna(), [mase_col, pinball_col]]
    if scored.empty:
        raise DataValidationError(
            f"no model has a finite {mase_col}; models: {list(map(str, frame.index))}"
        )
    best = float(scored[mase_col].min())
    tied = scored.loc[
        [math.isclose(float(v), best, rel_tol=rel_tol, abs_tol=0.0) for v in scored[mase_col]]
    ]
    ranked = sorted(
        tied.itertuples(),
        key=lambda r: (_nan_last(getattr(r, pinball_col)), str(r.Index)),
    )
    winner = ranked[0]
    if len(tied) > 1:
        reason = f"{mase_col} tie among {sorted(map(str, tied.index))}; lowest {pinball_col}"
    else:
        reason = f"lowest {mase_col}"
    return ChampionChoice(
        model=str(winner.Index),
        mase=float(getattr(winner, mase_col)),
        pinball=float(getattr(winner, pinball_col)),
        reason=reason,
    )


def _nan_last(value: float) -> float:
    return math.inf if value is None or math.isnan(float(value)) else float(value)
