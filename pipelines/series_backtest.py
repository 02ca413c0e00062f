"""Backtest every model on arbitrary series files, plus replicast's own per-series choice.

Series (see :mod:`pipelines.series_files`) are grouped by their regular
frequency; each group is backtested together, so global models (LightGBM,
the ensemble) learn across all series of the run.

The ``champion`` entry is what replicast itself would pick for each series,
without peeking: for each outer fold, the candidate models are backtested on
the *training part only* (its last ``inner_folds`` windows); the model with the
lowest inner mean MASE (ties: pinball loss) is chosen, and the chosen model's
forecast from the outer fold (fitted on the whole training part) is scored on
the test window.

``champion_scope="run"`` (the default) makes that choice once per fold for all
series of the run, exactly as ``replicast train`` chooses one champion per
target (:func:`forecasting.champion.choose_champion`); ``"series"`` chooses per
series. On the 30 real series of ``../shared/data`` the per-series choice from
one inner day is noisy and lost to the run-wide choice (mean MASE 0.957 vs
0.852), so it is not the default.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from forecasting.backtest import BacktestResult, ProgressHook, backtest, fold_cuts, split_fold
from forecasting.champion import choose_champion
from forecasting.errors import ConfigError
from forecasting.forecaster import SERIES
from forecasting.settings import ForecastConfig, ModelName
from models.catalog import factory
from models.fit_cache import FitCache
from pipelines.series_files import RegularSeries, freq_alias, season_for, to_long

logger = logging.getLogger(__name__)

CHAMPION = "champion"
ChampionScope = Literal["run", "series"]
METRICS = ("mase", "pinball", "coverage_90", "fit_s")


@dataclass
class SeriesBacktestReport:
    """Outcome of :func:`run_series_backtest`.

    Attributes:
        scores: outer scores of every model and of ``champion`` (one row per
            model, fold and series; see ``BacktestResult.scores``); champion rows
            name the chosen model in ``chosen``.
        inner: inner-validation scores (``outer_fold`` column added).
        freqs: series name -> frequency alias used.
    """

    scores: pd.DataFrame
    inner: pd.DataFrame
    freqs: dict[str, str] = field(default_factory=dict)

    def per_series(self) -> pd.DataFrame:
        """Fold means per (model, series)."""
        cols = list(METRICS)
        return self.scores.groupby(["model", SERIES])[cols].mean().reset_index()

    def summary(self) -> pd.DataFrame:
        """Per model: mase_mean, mase_median, pinball_mean, coverage_90 and fit_s."""
        per = self.per_series()
        g = per.groupby("model")
        out = pd.DataFrame(
            {
                "mase_mean": g["mase"].mean(),
                "mase_median": g["mase"].median(),
                "pinball_mean": g["pinball"].mean(),
                "fit_s": self.scores.groupby("model")["fit_s"].sum(),
            }
        )
        weights = self.scores["n_obs"].astype(float)
        valid = self.scores["coverage_90"].notna()
        num = (
            (self.scores["coverage_90"].where(valid, 0.0) * weights)
            .groupby(self.scores["model"])
            .sum()
        )
        den = weights.where(valid, 0.0).groupby(self.scores["model"]).sum()
        out["coverage_90"] = num / den.replace(0.0, np.nan)
        return out.sort_values("mase_mean")

    def to_json(self) -> dict:
        """The JSON document of ``replicast backtest --json``."""
        per = self.per_series()
        series: dict[str, dict[str, dict]] = {}
        for row in per.itertuples(index=False):
            entry = {m: _num(getattr(row, m)) for m in METRICS}
            series.setdefault(row.series_id, {})[row.model] = entry
        chosen = self.scores.loc[self.scores["model"] == CHAMPION]
        for sid, part in chosen.groupby(SERIES):
            series[sid][CHAMPION]["chosen"] = part.sort_values("fold")["chosen"].tolist()
        summary = {
            model: {
                "mase_mean": _num(row.mase_mean),
                "mase_median": _num(row.mase_median),
                "pinball_mean": _num(row.pinball_mean),
                "coverage_90": _num(row.coverage_90),
                "fit_s": _num(row.fit_s),
            }
            for model, row in self.summary().iterrows()
        }
        return {"series": series, "summary": summary, "freqs": self.freqs}


def _num(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _factories(models: Sequence[ModelName], config: ForecastConfig) -> dict[str, Callable]:
    fits = FitCache()  # one memo per run: the ensemble reuses the stand-alone fits
    return {name: factory(name, config, fit_cache=fits) for name in models}


def choose_for_run(inner_scores: pd.DataFrame) -> str:
    """One model for all series: the lowest mean (over series) inner MASE; ties: pinball."""
    per = inner_scores.groupby(["model", SERIES])[["mase", "pinball"]].mean()
    summary = (
        per.groupby("model").mean().rename(columns={"mase": "mase_mean", "pinball": "pinball_mean"})
    )
    return choose_champion(summary).model


def choose_per_series(inner_scores: pd.DataFrame) -> dict[str, str]:
    """Per series, the model with the lowest inner MASE (ties: pinball, then name)."""
    per = inner_scores.groupby([SERIES, "model"])[["mase", "pinball"]].mean().reset_index()
    out = {}
    for sid, part in per.groupby(SERIES):
        summary = part.set_index("model").rename(
            columns={"mase": "mase_mean", "pinball": "pinball_mean"}
        )
        try:
            out[str(sid)] = choose_champion(summary).model
        except ValueError:
            continue
    return out


def check_windows_fit(series: Sequence[RegularSeries], *, horizon: int, folds: int) -> None:
    """Refuse ``folds`` x ``horizon`` that no series can hold, before any work.

    Raises:
        ConfigError: ``horizon`` or ``folds`` is below 1, or the longest series is
            shorter than ``(folds + 2) * horizon`` steps (the test windows plus the
            ``2 * horizon`` training steps the first fold needs).
    """
    if horizon < 1 or folds < 1:
        raise ConfigError(f"horizon ({horizon}) and folds ({folds}) must be at least 1")
    longest = max((len(s.values) for s in series), default=0)
    needed = (folds + 2) * horizon
    if needed > longest:
        raise ConfigError(
            f"folds x horizon do not fit: {folds} folds of {horizon} steps need "
            f"(folds + 2) x horizon = {needed} steps, the longest series has {longest}; "
            f"use at most {max(longest // horizon - 2, 0)} folds of this horizon"
        )


def run_series_backtest(
    series: Sequence[RegularSeries],
    *,
    models: Sequence[ModelName],
    horizon: int,
    folds: int,
    quantiles: Sequence[float],
    candidates: Sequence[ModelName] | None = None,
    inner_folds: int = 1,
    champion_scope: ChampionScope = "run",
    seed: int = 0,
    progress: ProgressHook | None = None,
) -> SeriesBacktestReport:
    """Backtest ``models`` on every series and add replicast's ``champion`` choice.

    Args:
        series: regular series (``pipelines.series_files.load_series``).
        models: catalog model names to score.
        horizon: steps per test window.
        folds: outer folds (the last ``folds * horizon`` steps of each series).
        quantiles: levels to forecast (0.05, 0.5, 0.95 are always added).
        candidates: models the champion is chosen from (default: ``models``).
        inner_folds: windows of the training part used to choose the champion.
        champion_scope: ``"run"`` (one choice per fold for all series) or ``"series"``.
        seed: model seed.
        progress: called after each model fit (outer and inner).

    Raises:
        ConfigError: ``folds`` windows of ``horizon`` steps (plus ``2 * horizon``
            training steps) do not fit in the longest series.
    """
    check_windows_fit(series, horizon=horizon, folds=folds)
    candidates = [m for m in (candidates or models) if m in models]
    groups: dict[pd.Timedelta, list[RegularSeries]] = {}
    for s in series:
        groups.setdefault(s.freq, []).append(s)
    score_parts, inner_parts = [], []
    freqs = {}
    for freq, members in groups.items():
        alias = freq_alias(freq)
        freqs.update({s.name: alias for s in members})
        season = season_for(freq)
        config = ForecastConfig(
            freq=alias, horizon=horizon, quantiles=list(quantiles), folds=folds, seed=seed
        )
        frame = to_long(members)
        outer = backtest(
            frame,
            _factories(models, config),
            horizon=horizon,
            folds=folds,
            quantiles=quantiles,
            season_length=season,
            progress=progress,
        )
        score_parts.append(outer.scores.assign(chosen=None))
        if candidates:
            champion, inner = _champion_scores(
                frame,
                outer,
                candidates,
                config,
                horizon,
                folds,
                inner_folds,
                season,
                champion_scope,
                progress,
            )
            score_parts.append(champion)
            inner_parts.append(inner)
    scores = pd.concat(score_parts, ignore_index=True) if score_parts else pd.DataFrame()
    inner = pd.concat(inner_parts, ignore_index=True) if inner_parts else pd.DataFrame()
    return SeriesBacktestReport(scores=scores, inner=inner, freqs=freqs)


def _champion_scores(
    frame: pd.DataFrame,
    outer: BacktestResult,
    candidates: Sequence[ModelName],
    config: ForecastConfig,
    horizon: int,
    folds: int,
    inner_folds: int,
    season: int,
    scope: ChampionScope,
    progress: ProgressHook | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    cuts = fold_cuts(frame, horizon, folds)
    rows, inner_parts = [], []
    for fold in sorted(outer.scores["fold"].unique()):
        train, _ = split_fold(frame, cuts, int(fold), horizon)
        started = time.perf_counter()
        inner = backtest(
            train,
            _factories(candidates, config),
            horizon=horizon,
            folds=inner_folds,
            quantiles=config.quantiles,
            season_length=season,
            progress=progress,
        )
        inner_s = (time.perf_counter() - started) / max(train[SERIES].nunique(), 1)
        inner_parts.append(inner.scores.assign(outer_fold=int(fold)))
        fallback = choose_for_run(inner.scores) if not inner.scores.empty else candidates[0]
        choice = choose_per_series(inner.scores) if scope == "series" else {}
        fold_scores = outer.scores.loc[outer.scores["fold"] == fold]
        for sid, part in fold_scores.groupby(SERIES):
            chosen = choice.get(str(sid), fallback)
            row = part.loc[part["model"] == chosen]
            if row.empty:
                continue
            rows.append(
                row.assign(model=CHAMPION, chosen=chosen, fit_s=row["fit_s"].to_numpy() + inner_s)
            )
    champion = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    inner_all = pd.concat(inner_parts, ignore_index=True) if inner_parts else pd.DataFrame()
    return champion, inner_all
