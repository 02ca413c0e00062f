"""Backtests of arbitrary series files: gaps, non-hourly frequencies, the champion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import DataValidationError
from pipelines.series_backtest import CHAMPION, choose_per_series, run_series_backtest
from pipelines.series_files import discover, infer_spacing, load_series, read_series, regularize

MODELS = ["seasonal_naive_day", "seasonal_naive_week"]


def _write(path, freq: str, days: int, seed: int, gap: bool = False, jitter: bool = False):
    rng = np.random.default_rng(seed)
    ts = pd.date_range(
        "2024-01-01", periods=int(pd.Timedelta(days=days) / pd.Timedelta(freq)), freq=freq
    )
    if jitter:
        ts = ts + pd.to_timedelta(rng.integers(-20, 20, ts.size), unit="s")
    hours = (ts - ts[0]) / pd.Timedelta(hours=1)
    value = 50 + 10 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 1, ts.size)
    frame = pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": value})
    if gap:
        frame = frame.drop(frame.index[len(frame) // 2 : len(frame) // 2 + len(frame) // 20])
    frame.to_csv(path, index=False)


@pytest.fixture
def series_dir(tmp_path):
    d = tmp_path / "series"
    (d / "sub").mkdir(parents=True)
    _write(d / "five_min.csv", "5min", 12, 0, gap=True, jitter=True)
    _write(d / "hourly.csv", "1h", 12, 1)
    _write(d / "sub" / "half_hour.csv", "30min", 12, 2, gap=True)
    return d


def test_files_are_resampled_to_hourly_means_and_gaps_kept(series_dir) -> None:
    files = discover([series_dir])
    assert [name for name, _ in files] == ["five_min", "hourly", "sub/half_hour"]
    loaded = {s.name: s for s in load_series(files, timestamp_col="timestamp", value_col="value")}
    five = loaded["five_min"]
    assert five.raw_freq == pd.Timedelta("5min") and five.freq == pd.Timedelta("1h")
    assert five.values.isna().sum() > 0  # the gap is visible as missing hours
    raw = read_series(series_dir / "five_min.csv", timestamp_col="timestamp", value_col="value")
    first_hour = raw[raw.index < five.values.index[0] + pd.Timedelta(hours=1)]
    assert five.values.iloc[0] == pytest.approx(first_hour.mean())


def test_daily_series_keeps_its_frequency(tmp_path) -> None:
    _write(tmp_path / "daily.csv", "1D", 200, 3)
    s = regularize(
        "d", read_series(tmp_path / "daily.csv", timestamp_col="timestamp", value_col="value")
    )
    assert s.freq == pd.Timedelta(days=1)
    assert infer_spacing(pd.DatetimeIndex(s.values.index)) == pd.Timedelta(days=1)


def test_missing_column_names_file_and_column(series_dir) -> None:
    with pytest.raises(DataValidationError, match=r"hourly\.csv.*'cpu'"):
        read_series(series_dir / "hourly.csv", timestamp_col="timestamp", value_col="cpu")
    # a list of candidates picks the first column present
    assert (
        read_series(
            series_dir / "hourly.csv", timestamp_col="timestamp", value_col="cpu,value"
        ).size
        > 0
    )


def test_backtest_with_gaps_scores_every_model_and_the_champion(series_dir) -> None:
    loaded = load_series(discover([series_dir]), timestamp_col="timestamp", value_col="value")
    report = run_series_backtest(
        loaded, models=MODELS, horizon=24, folds=2, quantiles=[0.05, 0.5, 0.95]
    )
    doc = report.to_json()
    assert set(doc["series"]) == {"five_min", "hourly", "sub/half_hour"}
    for entry in doc["series"].values():
        assert set(entry) == {*MODELS, CHAMPION}
        assert set(entry["seasonal_naive_day"]) == {"mase", "pinball", "coverage_90", "fit_s"}
        assert all(m in MODELS for m in entry[CHAMPION]["chosen"])
    assert {"mase_mean", "mase_median"} <= set(doc["summary"]["seasonal_naive_day"])


def test_champion_uses_only_the_training_part(series_dir) -> None:
    loaded = load_series(discover([series_dir]), timestamp_col="timestamp", value_col="value")
    report = run_series_backtest(
        loaded, models=MODELS, horizon=24, folds=2, quantiles=[0.5], inner_folds=1
    )
    inner, scores = report.inner, report.scores
    for fold in (0, 1):
        outer_origin = scores.loc[scores.fold == fold].groupby("series_id").origin.min()
        inner_origin = inner.loc[inner.outer_fold == fold].groupby("series_id").origin.max()
        # inner validation windows end where the outer training part ends
        assert (inner_origin + pd.Timedelta(hours=24) <= outer_origin).all()


def test_choose_per_series_breaks_ties_on_pinball() -> None:
    scores = pd.DataFrame(
        {
            "series_id": ["a", "a", "b", "b"],
            "model": ["m1", "m2", "m1", "m2"],
            "mase": [1.0, 1.0, 0.5, 0.9],
            "pinball": [3.0, 2.0, 9.0, 1.0],
        }
    )
    assert choose_per_series(scores) == {"a": "m2", "b": "m1"}


def test_run_scope_picks_one_model_for_all_series(series_dir) -> None:
    loaded = load_series(discover([series_dir]), timestamp_col="timestamp", value_col="value")
    report = run_series_backtest(
        loaded, models=MODELS, horizon=24, folds=2, quantiles=[0.5], champion_scope="run"
    )
    champ = report.scores[report.scores.model == CHAMPION]
    assert (champ.groupby("fold").chosen.nunique() == 1).all()
    # the champion's score is the chosen model's own outer score (no extra fitting)
    for row in champ.itertuples():
        own = report.scores[
            (report.scores.model == row.chosen)
            & (report.scores.fold == row.fold)
            & (report.scores.series_id == row.series_id)
        ]
        assert own.mase.iloc[0] == row.mase
