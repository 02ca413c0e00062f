"""The replicast-load pyfunc: round trip through models:/replicast-load@champion, validation,
and the numpy fast path, on a real SQLite MLflow store under tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from forecasting.settings import Settings
from models.baselines import SeasonalNaive
from models.mlflow_load import LoadForecastModel, TargetModel
from models.mlflow_registry import LOAD_MODEL, Registry

URI = f"models:/{LOAD_MODEL}@champion"
QUANTILES = [0.05, 0.5, 0.95]


def _history(n_hours: int = 24 * 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-05-01", periods=n_hours, freq="1h", tz="UTC")
    daily = np.sin(np.arange(n_hours) * 2 * np.pi / 24)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "series_id": sid,
                    "ts": ts,
                    "y": level * (1 + 0.3 * daily) + rng.normal(0, 1, n_hours),
                }
            )
            for sid, level in (("orders/us-east", 100.0), ("orders/cn-north", 40.0))
        ],
        ignore_index=True,
    )


def _python_model(history: pd.DataFrame) -> LoadForecastModel:
    return LoadForecastModel(
        {
            "qps_total": TargetModel("seasonal_naive_day", SeasonalNaive(24).fit(history)),
            "cpu_util": TargetModel("seasonal_naive_week", SeasonalNaive(168).fit(history)),
        },
        horizon=24,
        quantiles=QUANTILES,
        min_history=48,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Registry, pd.DataFrame]:
    """One SQLite store with a two-target load model registered as champion (module-wide)."""
    registry = Registry.connect(Settings(data_dir=tmp_path_factory.mktemp("registry") / "var"))
    history = _history()
    model = _python_model(history)
    example = (
        history.loc[history["series_id"] == "orders/us-east"].tail(72).assign(target="qps_total")
    )
    with registry.run():
        gate = registry.register_with_gate(
            name=LOAD_MODEL, python_model=model, input_example=example, score=1.0, score_name="mase"
        )
    assert gate.alias == "champion"
    return registry, history


@pytest.fixture(scope="module")
def loaded(store: tuple[Registry, pd.DataFrame]) -> mlflow.pyfunc.PyFuncModel:
    """The registered champion, loaded as pyfunc through the registry."""
    return store[0].load_champion(LOAD_MODEL).pyfunc


@pytest.fixture
def registered(store: tuple[Registry, pd.DataFrame]) -> pd.DataFrame:
    """The history the registered champion was fitted on."""
    return store[1]


def test_predict_from_plain_history_through_the_registry(registered, loaded) -> None:
    out = loaded.predict(registered.assign(target="qps_total"))
    assert list(out.columns) == ["target", "series_id", "ts", "step", "q0.05", "q0.5", "q0.95"]
    assert len(out) == 2 * 24
    assert set(out["series_id"]) == {"orders/us-east", "orders/cn-north"}
    us = out.loc[out["series_id"] == "orders/us-east"].sort_values("step")
    assert us["step"].tolist() == list(range(1, 25))
    assert us["ts"].iloc[0] == registered["ts"].max() + pd.Timedelta("1h")
    assert (us["q0.05"] <= us["q0.5"]).all() and (us["q0.5"] <= us["q0.95"]).all()
    # the median follows the daily shape of the history (seasonal naive repeats the last day)
    last_day = registered.loc[registered["series_id"] == "orders/us-east", "y"].tail(24)
    assert np.corrcoef(us["q0.5"], last_day)[0, 1] > 0.9


def test_target_from_params_and_horizon_quantile_params(registered, loaded) -> None:
    naive_ts = registered.assign(ts=registered["ts"].dt.tz_localize(None))
    out = loaded.predict(naive_ts, params={"target": "cpu_util", "horizon": 6, "quantiles": [0.5]})
    assert list(out.columns) == ["target", "series_id", "ts", "step", "q0.5"]
    assert set(out["target"]) == {"cpu_util"} and out["step"].max() == 6


@pytest.mark.parametrize(
    ("frame_change", "params", "match"),
    [
        (lambda f: f.assign(target="nope"), None, "target 'nope' unknown"),
        (lambda f: f, None, "no target given"),
        (lambda f: f.assign(target="qps_total"), {"horizon": 99}, "horizon: 99 is outside 1..24"),
        (lambda f: f.assign(target="qps_total"), {"quantiles": [0.42]}, "quantiles.*not trained"),
        (lambda f: f.assign(target="qps_total").tail(10), None, "fewer than 48"),
    ],
)
def test_bad_input_is_invalid_parameter_value(
    registered, loaded, frame_change, params, match
) -> None:
    with pytest.raises(MlflowException, match=match) as info:
        loaded.predict(frame_change(registered), params=params)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_missing_column_is_rejected(registered, loaded) -> None:
    with pytest.raises(MlflowException, match="y"):
        loaded.predict(registered.drop(columns=["y"]).assign(target="qps_total"))


def test_forecast_arrays_matches_predict(registered, loaded) -> None:
    one = registered.loc[registered["series_id"] == "orders/us-east"]
    frame = loaded.predict(one.assign(target="qps_total"))
    fast = loaded.unwrap_python_model().forecast_arrays(
        "qps_total", "orders/us-east", one["ts"].iloc[-1], one["y"].to_numpy(), horizon=24
    )
    assert set(fast) == {"ts", "step", "q0.05", "q0.5", "q0.95"}
    np.testing.assert_allclose(fast["q0.5"], frame["q0.5"].to_numpy())
    assert fast["step"].tolist() == list(range(1, 25))
    assert pd.Timestamp(fast["ts"][0]) == one["ts"].iloc[-1].tz_localize(None) + pd.Timedelta("1h")
    with pytest.raises(MlflowException, match="at least 48"):
        loaded.unwrap_python_model().forecast_arrays(
            "qps_total", "orders/us-east", one["ts"].iloc[-1], np.ones(5)
        )


def test_fresh_process_loads_the_champion(
    registered: pd.DataFrame, store: tuple[Registry, pd.DataFrame], loaded, tmp_path
) -> None:
    history_path = tmp_path / "history.parquet"
    registered.assign(target="qps_total").to_parquet(history_path)
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        f"out = mlflow.pyfunc.load_model({URI!r}).predict(pd.read_parquet(sys.argv[1]))\n"
        "print(json.dumps({'rows': len(out), 'cols': list(out.columns),"
        " 'median': out['q0.5'].tolist()}))\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": store[0].tracking_uri}  # what a user does
    done = subprocess.run(
        [sys.executable, "-c", script, str(history_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    here = loaded.predict(registered.assign(target="qps_total"))
    assert result["rows"] == len(here) == 48
    assert result["cols"] == list(here.columns)
    np.testing.assert_allclose(result["median"], here["q0.5"].to_numpy())


def test_lightgbm_fast_path_equals_its_predict() -> None:
    from models.lightgbm_quantile import LightGBMQuantile

    history = _history(n_hours=24 * 21, seed=3)
    forecaster = LightGBMQuantile(n_estimators=30, timezones={"cn-north": "Asia/Shanghai"})
    wrapper = LoadForecastModel(
        {"qps_total": TargetModel("lightgbm", forecaster.fit(history))},
        horizon=24,
        quantiles=[0.05, 0.5, 0.9, 0.99],
    )
    for sid in ("orders/us-east", "orders/cn-north"):
        one = history.loc[history["series_id"] == sid]
        reference = forecaster.predict(one, 24, wrapper.quantiles)
        fast = wrapper.forecast_arrays("qps_total", sid, one["ts"].iloc[-1], one["y"].to_numpy())
        for q in ("q0.05", "q0.5", "q0.9", "q0.99"):
            np.testing.assert_array_equal(fast[q], reference[q].to_numpy())
        assert (pd.DatetimeIndex(fast["ts"]).tz_localize("UTC") == reference["ts"]).all()
    short = wrapper.forecast_arrays(
        "qps_total",
        "orders/us-east",
        one["ts"].iloc[-1],
        one["y"].to_numpy(),
        horizon=6,
        quantiles=[0.5],
    )
    assert set(short) == {"ts", "step", "q0.5"} and short["q0.5"].size == 6


def test_lightgbm_fast_path_equals_the_pyfunc_predict(tmp_path) -> None:
    """The serving fast path and ``mlflow.pyfunc`` ``predict`` give the very same quantiles."""
    from models.lightgbm_quantile import LightGBMQuantile

    history = _history(n_hours=24 * 21, seed=5)
    forecaster = LightGBMQuantile(n_estimators=30, timezones={"cn-north": "Asia/Shanghai"})
    wrapper = LoadForecastModel(
        {"qps_total": TargetModel("lightgbm", forecaster.fit(history))},
        horizon=24,
        quantiles=QUANTILES,
    )
    mlflow.pyfunc.save_model(tmp_path / "model", python_model=wrapper)
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    recent = history.groupby("series_id").tail(24 * 9)
    gappy = recent.drop(recent.index[[30, 31, 200]])  # missing steps: NaN in the arrays
    frame = loaded.predict(gappy.assign(target="qps_total"))
    for sid in ("orders/us-east", "orders/cn-north"):
        one = recent.loc[recent["series_id"] == sid]
        values = one["y"].to_numpy(copy=True)
        values[~one.index.isin(gappy.index)] = np.nan
        fast = loaded.unwrap_python_model().forecast_arrays(
            "qps_total", sid, one["ts"].iloc[-1], values
        )
        expected = frame.loc[frame["series_id"] == sid].sort_values("step")
        for q in ("q0.05", "q0.5", "q0.95"):
            np.testing.assert_array_equal(fast[q], expected[q].to_numpy())
        assert (pd.DatetimeIndex(fast["ts"]).tz_localize("UTC") == expected["ts"]).all()


class _ArrayOnly(SeasonalNaive):
    """A seasonal naive whose array fast path is recognisable."""

    def forecast_arrays(self, series_id, last, values, horizon, quantiles):
        steps = np.arange(1, horizon + 1, dtype=np.int64)
        out = {"ts": last + np.timedelta64(3600, "s") * steps, "step": steps}
        return out | {f"q{q:g}": np.full(horizon, 7.0) for q in quantiles}


def test_fast_path_dispatches_on_the_estimator_capability() -> None:
    history = _history()
    wrapper = LoadForecastModel(
        {"qps_total": TargetModel("custom", _ArrayOnly(24).fit(history))},
        horizon=24,
        quantiles=QUANTILES,
    )
    one = history.loc[history["series_id"] == "orders/us-east"]
    fast = wrapper.forecast_arrays("qps_total", "orders/us-east", one["ts"].iloc[-1], one["y"])
    assert (fast["q0.5"] == 7.0).all() and fast["step"].tolist() == list(range(1, 25))
