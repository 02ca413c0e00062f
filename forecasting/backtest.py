"""Rolling-origin backtests of any :class:`~forecasting.forecaster.Forecaster`.

Folds are the last ``folds`` windows of ``horizon`` steps of each series: fold
``k`` (0 = oldest) cuts series ``s`` of ``n_s`` rows at position
``n_s - (folds - k) * horizon``. The model is fitted on the rows before the cut
(the training part, one frame for all series so global models learn across
them), predicts ``horizon`` steps from the end of that part, and is scored on
the next ``horizon`` rows. Nothing at or after the cut is shown to the model.

The frame must be regular per series (one row per step; a missing interval is a
row with ``y`` = NaN), which is what the load pipeline and
``pipelines.series_backtest`` deliver. Forecasts are matched to actuals by
``(series_id, step)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from forecasting import metrics
from forecasting.errors import DataValidationError
from forecasting.forecaster import SERIES, STEP, TS, Forecaster, Y, quantile_column

logger = logging.getLogger(__name__)

REQUIRED_QUANTILES = (metrics.COVERAGE_LOWER, 0.5, metrics.COVERAGE_UPPER)
ModelFactory = Callable[[], Forecaster]
ProgressHook = Callable[[str, int], None]

SCORE_COLUMNS = [
    "model",
    "fold",
    SERIES,
    "origin",
    "n_obs",
    "mase",
    "pinball",
    "pinball_scaled",
    "coverage_90",
    "fit_s",
]


@dataclass(frozen=True)
class BacktestResult:
    """Scores and forecasts of a rolling-origin backtest.

    Attributes:
        scores: one row per (model, fold, series): ``model, fold, series_id,
            origin, n_obs, mase, pinball, pinball_scaled, coverage_90, fit_s`` and
            one ``cov_q<q>`` column per quantile (one-sided coverage).
            ``fit_s`` is the fold's fit + predict seconds shared equally among
            the series fitted together.
        forecasts: ``model, fold, origin, series_id, ts, step, y`` and the
            quantile columns, for plots.
        quantiles: the quantile levels forecast.
    """

    scores: pd.DataFrame
    forecasts: pd.DataFrame
    quantiles: tuple[float, ...]

    def per_series(self) -> pd.DataFrame:
        """Means over folds per (model, series): mase, pinball, coverage_90, fit_s."""
        return _per_series(self.scores)

    def summary(self) -> pd.DataFrame:
        """One row per model (index ``model``), best MASE first.

        Columns: ``mase_mean``, ``mase_median`` (over series of their fold
        means), ``pinball_mean``, ``pinball_scaled_mean``, ``coverage_90``
        (pooled over all scored points), ``fit_s`` (total seconds) and the
        pooled one-sided coverage ``cov_q<q>`` of each quantile.
        """
        return summarize(self.scores)


def summarize(scores: pd.DataFrame) -> pd.DataFrame:
    """Summarise a ``BacktestResult.scores`` frame per model (see ``summary``)."""
    if scores.empty:
        return pd.DataFrame(
            columns=["mase_mean", "mase_median", "pinball_mean", "coverage_90", "fit_s"]
        ).rename_axis("model")
    per_series = _per_series(scores)
    grouped = per_series.groupby("model")
    out = pd.DataFrame(
        {
            "mase_mean": grouped["mase"].mean(),
            "mase_median": grouped["mase"].median(),
            "pinball_mean": grouped["pinball"].mean(),
            "pinball_scaled_mean": grouped["pinball_scaled"].mean(),
        }
    )
    cov_cols = ["coverage_90", *[c for c in scores.columns if c.startswith("cov_q")]]
    weights = scores["n_obs"].astype(float)
    for col in cov_cols:
        valid = scores[col].notna()
        num = (scores[col].where(valid, 0.0) * weights).groupby(scores["model"]).sum()
        den = weights.where(valid, 0.0).groupby(scores["model"]).sum()
        out[col] = num / den.replace(0.0, np.nan)
    out["fit_s"] = scores.groupby("model")["fit_s"].sum()
    return out.sort_values(["mase_mean", "pinball_mean"])


def _per_series(scores: pd.DataFrame) -> pd.DataFrame:
    cols = ["mase", "pinball", "pinball_scaled", "coverage_90", "fit_s"]
    return scores.groupby(["model", SERIES], sort=True)[cols].mean().reset_index()


def fold_cuts(frame: pd.DataFrame, horizon: int, folds: int) -> pd.DataFrame:
    """Cut positions of each series: one row per (series, fold).

    Args:
        frame: long frame ``series_id, ts, y`` (regular per series).
        horizon: steps per test window.
        folds: number of windows, the last ``folds * horizon`` rows of each series.

    Returns:
        ``series_id, fold, cut, origin``: ``cut`` is the position of the first
        test row, ``origin`` the timestamp of the last training row. Series too
        short to keep ``2 * horizon`` training rows in a fold skip that fold.
    """
    rows = []
    for series_id, ts in frame.groupby(SERIES, sort=True)[TS]:
        stamps = np.sort(ts.to_numpy())
        n = stamps.size
        for k in range(folds):
            cut = n - (folds - k) * horizon
            if cut < 2 * horizon:
                logger.warning(
                    "series %s: %d rows are too few for fold %d (needs %d); skipped",
                    series_id,
                    n,
                    k,
                    (folds - k + 2) * horizon,
                )
                continue
            rows.append((series_id, k, cut, stamps[cut - 1]))
    return pd.DataFrame(rows, columns=[SERIES, "fold", "cut", "origin"])


def split_fold(
    frame: pd.DataFrame, cuts: pd.DataFrame, fold: int, horizon: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training part and the test window of one fold.

    Returns:
        ``(train, test)``: ``train`` holds each series' rows before its cut,
        ``test`` the next ``horizon`` rows with an added ``step`` column (1..).
    """
    fold_cuts_ = cuts.loc[cuts["fold"] == fold, [SERIES, "cut"]]
    data = frame.sort_values([SERIES, TS], kind="stable")
    data = data.loc[data[SERIES].isin(fold_cuts_[SERIES])]
    pos = data.groupby(SERIES, sort=False).cumcount().to_numpy()
    cut = data[SERIES].map(fold_cuts_.set_index(SERIES)["cut"]).to_numpy()
    train = data.loc[pos < cut, [SERIES, TS, Y]].reset_index(drop=True)
    in_test = (pos >= cut) & (pos < cut + horizon)
    test = data.loc[in_test, [SERIES, TS, Y]].assign(**{STEP: (pos - cut + 1)[in_test]})
    return train, test.reset_index(drop=True)


def _check_frame(frame: pd.DataFrame) -> None:
    missing = [c for c in (SERIES, TS, Y) if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"backtest frame lacks column(s) {missing}; expected long columns series_id, ts, y"
        )
    dupes = frame.duplicated([SERIES, TS])
    if dupes.any():
        bad = frame.loc[dupes, SERIES].unique()[:5].tolist()
        raise DataValidationError(
            f"backtest frame has {int(dupes.sum())} duplicated (series_id, ts) rows, "
            f"e.g. in series {bad}; aggregate or deduplicate first"
        )


def backtest(
    frame: pd.DataFrame,
    factories: Mapping[str, ModelFactory],
    *,
    horizon: int,
    folds: int,
    quantiles: Sequence[float],
    season_length: int,
    progress: ProgressHook | None = None,
) -> BacktestResult:
    """Rolling-origin backtest of each model factory over all series of ``frame``.

    Args:
        frame: long, regular frame ``series_id, ts, y`` (NaN ``y`` = missing).
        factories: model name -> callable returning a fresh unfitted model.
        horizon: steps per test window.
        folds: number of test windows (the last ``folds * horizon`` steps).
        quantiles: levels to forecast; 0.05, 0.5 and 0.95 are always added
            (MASE uses the median, ``coverage_90`` the 0.05..0.95 interval).
        season_length: season of the MASE scale (24 for hourly data).
        progress: called with ``(model name, fold)`` after each fit.

    Returns:
        A :class:`BacktestResult`.

    Raises:
        DataValidationError: missing columns or duplicated timestamps.
    """
    _check_frame(frame)
    levels = tuple(sorted({*map(float, quantiles), *REQUIRED_QUANTILES}))
    cuts = fold_cuts(frame, horizon, folds)
    score_rows: list[dict[str, Any]] = []
    forecast_parts: list[pd.DataFrame] = []
    for fold in sorted(cuts["fold"].unique()):
        train, test = split_fold(frame, cuts, int(fold), horizon)
        origins = cuts.loc[cuts["fold"] == fold].set_index(SERIES)["origin"]
        train_values = {sid: g[Y].to_numpy(float) for sid, g in train.groupby(SERIES)}
        for name, factory in factories.items():
            started = time.perf_counter()
            model = factory().fit(train)
            pred = model.predict(train, horizon, levels)
            elapsed = time.perf_counter() - started
            joined = test.merge(pred.drop(columns=[TS]), on=[SERIES, STEP], how="left")
            share = elapsed / max(len(train_values), 1)
            for sid, part in joined.groupby(SERIES, sort=True):
                score_rows.append(
                    _score(
                        name,
                        int(fold),
                        sid,
                        origins[sid],
                        part,
                        train_values[sid],
                        levels,
                        season_length,
                        share,
                    )
                )
            forecast_parts.append(
                joined.assign(model=name, fold=int(fold), origin=joined[SERIES].map(origins))
            )
            if progress is not None:
                progress(name, int(fold))
    scores = pd.DataFrame(score_rows)
    if scores.empty:
        scores = pd.DataFrame(columns=SCORE_COLUMNS)
    forecasts = pd.concat(forecast_parts, ignore_index=True) if forecast_parts else pd.DataFrame()
    return BacktestResult(scores=scores, forecasts=forecasts, quantiles=levels)


def _score(
    model: str,
    fold: int,
    series_id: Hashable,
    origin: pd.Timestamp,
    part: pd.DataFrame,
    train: NDArray[np.float64],
    levels: Sequence[float],
    season_length: int,
    fit_s: float,
) -> dict[str, Any]:
    actual = part[Y].to_numpy(float)
    qf = {q: part[quantile_column(q)].to_numpy(float) for q in levels}
    scale = metrics.seasonal_naive_scale(train, season_length)
    pinball = metrics.pinball_loss(actual, qf)
    row: dict[str, Any] = {
        "model": model,
        "fold": fold,
        SERIES: series_id,
        "origin": origin,
        "n_obs": int(np.isfinite(actual).sum()),
        "mase": metrics.mase(actual, qf[0.5], train, season_length),
        "pinball": pinball,
        "pinball_scaled": pinball / scale if np.isfinite(scale) else float("nan"),
        "coverage_90": metrics.coverage_90(actual, qf),
        "fit_s": fit_s,
    }
    for q in levels:
        row[f"cov_{quantile_column(q)}"] = metrics.quantile_coverage(actual, qf[q])
    return row
