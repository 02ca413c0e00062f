"""Rolling-origin backtest: fold boundaries, no peeking, tidy scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import backtest, fold_cuts, split_fold
from forecasting.errors import DataValidationError
from forecasting.forecaster import quantile_column


def _frame(n: int = 24 * 10, series: Sequence[str] = ("c/a", "c/b")) -> pd.DataFrame:
    ts = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    parts = []
    for i, sid in enumerate(series):
        y = 10 + i + np.sin(np.arange(n) * 2 * np.pi / 24)
        parts.append(pd.DataFrame({"series_id": sid, "ts": ts, "y": y}))
    return pd.concat(parts, ignore_index=True)


class Spy:
    """Records what it was fitted on; forecasts the last value flat (a real, tiny model)."""

    seen: list[pd.DataFrame] = []

    def fit(self, history: pd.DataFrame) -> Self:
        Spy.seen.append(history.copy())
        return self

    def predict(self, history: pd.DataFrame, horizon: int, quantiles: Sequence[float]):
        rows = []
        for sid, g in history.groupby("series_id"):
            last = g.sort_values("ts").iloc[-1]
            for h in range(1, horizon + 1):
                row = {"series_id": sid, "ts": last.ts + pd.Timedelta(hours=h), "step": h}
                for q in quantiles:
                    row[quantile_column(q)] = last.y + (q - 0.5)
                rows.append(row)
        return pd.DataFrame(rows)


def test_fold_cuts_are_the_last_windows() -> None:
    frame = _frame(n=100)
    cuts = fold_cuts(frame, horizon=10, folds=3)
    assert sorted(cuts.loc[cuts.series_id == "c/a", "cut"]) == [70, 80, 90]
    ts = pd.date_range("2024-01-01", periods=100, freq="1h", tz="UTC")
    assert cuts.loc[(cuts.series_id == "c/a") & (cuts.fold == 0), "origin"].iloc[0] == ts[69]


def test_split_fold_never_shows_the_test_window() -> None:
    frame = _frame(n=100)
    cuts = fold_cuts(frame, horizon=10, folds=3)
    train, test = split_fold(frame, cuts, fold=1, horizon=10)
    for sid in ("c/a", "c/b"):
        assert (
            train.loc[train.series_id == sid, "ts"].max()
            < test.loc[test.series_id == sid, "ts"].min()
        )
        assert len(train[train.series_id == sid]) == 80
        assert test.loc[test.series_id == sid, "step"].tolist() == list(range(1, 11))


def test_backtest_fits_only_on_data_before_each_origin() -> None:
    Spy.seen = []
    frame = _frame()
    result = backtest(frame, {"spy": Spy}, horizon=24, folds=3, quantiles=[0.5], season_length=24)
    assert len(Spy.seen) == 3
    ends = sorted(seen.ts.max() for seen in Spy.seen)
    assert ends == sorted(result.scores.origin.unique())
    last = frame.ts.max()
    assert ends[-1] == last - pd.Timedelta(hours=24)
    assert set(result.scores.fold) == {0, 1, 2}
    assert len(result.scores) == 3 * 2  # folds x series
    # required quantiles were added and one-sided coverage reported for each
    assert {0.05, 0.5, 0.95} <= set(result.quantiles)
    assert {"cov_q0.05", "cov_q0.95", "coverage_90", "mase", "pinball", "fit_s"} <= set(
        result.scores.columns
    )


def test_backtest_scores_a_perfect_model_as_zero_mase() -> None:
    frame = _frame()

    class Oracle(Spy):
        def predict(self, history, horizon, quantiles):
            out = super().predict(history, horizon, quantiles)
            truth = frame.set_index(["series_id", "ts"])["y"]
            for q in quantiles:
                keys = list(zip(out.series_id, out.ts, strict=True))
                out[quantile_column(q)] = truth.loc[keys].to_numpy()
            return out

    result = backtest(
        frame,
        {"oracle": Oracle, "flat": Spy},
        horizon=24,
        folds=2,
        quantiles=[0.5],
        season_length=24,
    )
    summary = result.summary()
    assert summary.loc["oracle", "mase_mean"] == pytest.approx(0.0)
    assert summary.loc["oracle", "coverage_90"] == pytest.approx(1.0)
    assert summary.loc["flat", "mase_mean"] > 0.1
    assert summary.index[0] == "oracle"
    assert set(result.forecasts.model) == {"oracle", "flat"}


def test_short_series_skip_folds_and_duplicates_are_rejected() -> None:
    frame = pd.concat([_frame(n=240, series=["long"]), _frame(n=60, series=["short"])])
    cuts = fold_cuts(frame, horizon=24, folds=3)
    assert set(cuts.loc[cuts.series_id == "short", "fold"]) == set()
    assert len(cuts[cuts.series_id == "long"]) == 3
    with pytest.raises(DataValidationError, match="duplicated"):
        backtest(
            pd.concat([frame, frame]),
            {"spy": Spy},
            horizon=24,
            folds=1,
            quantiles=[0.5],
            season_length=24,
        )
