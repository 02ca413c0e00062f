"""End to end on a tiny simulated fleet under tmp_path:
simulate -> files -> ingest -> `replicast train` -> `replicast forecast` -> `replicast report`
-> the champion predicts from a plain history frame through models:/replicast-load@champion."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from forecasting.lake import Lake
from forecasting.schemas import FORECASTS
from forecasting.settings import Settings
from pipelines.ingest import ingest_paths
from pipelines.load_series import read_series
from pipelines.simulate import scale_fleet, simulate_fleet
from serving.cli import app

FAST_MODELS = ["seasonal_naive_day", "seasonal_naive_week"]


@pytest.mark.slow
def test_simulate_ingest_train_forecast_and_load_champion(
    settings: Settings, lake: Lake, tmp_path: Path
) -> None:
    fleet = scale_fleet(settings.fleet, 1)
    sim = simulate_fleet(
        fleet, start="2026-04-01", days=14, seed=7, nodes_per_region=2, segments_per_cluster=4
    )
    files = tmp_path / "in"
    files.mkdir()
    sim.node_metrics.to_parquet(files / "node_metrics.parquet")
    sim.segment_access.to_parquet(files / "segment_access.parquet")
    reports = ingest_paths([files / "*.parquet"], lake=lake)
    assert sum(r.rows_good for r in reports) == len(sim.node_metrics) + len(sim.segment_access)

    runner = CliRunner()
    args = ["train", "--folds", "2", *(a for m in FAST_MODELS for a in ("--models", m))]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "replicast-load v1 as champion" in " ".join(result.output.split())
    for target in settings.forecast.targets:
        assert target in result.output

    result = runner.invoke(app, ["forecast"])
    assert result.exit_code == 0, result.output

    # the forecasts dataset: contract columns, every series and target, 24 steps from the origin
    forecasts = lake.read("forecasts")
    quantile_cols = [f"q{q:g}" for q in settings.forecast.quantiles]
    assert set(FORECASTS.names + quantile_cols) <= set(forecasts.columns)
    n_series = len(fleet.clusters[0].regions)
    assert len(forecasts) == len(settings.forecast.targets) * n_series * 24
    assert set(forecasts["target"]) == set(settings.forecast.targets)
    assert (forecasts["ts"] == forecasts["origin"] + pd.to_timedelta(forecasts["step"], "h")).all()
    assert set(forecasts["model"]) <= set(FAST_MODELS)
    assert set(forecasts["model_version"]) == {"1"}
    assert (forecasts[quantile_cols].diff(axis=1).iloc[:, 1:] >= -1e-9).all().all()

    # job_runs recorded both jobs
    jobs = lake.read("job_runs")
    assert {"train", "forecast"} <= set(jobs["job"])
    assert set(jobs["state"]) == {"ok"}

    # the MLflow run: metrics per target/model, data window, code version, one plot per target
    mlflow.set_tracking_uri(settings.tracking_uri)
    run_id = MlflowClient().get_model_version("replicast-load", "1").run_id
    run = MlflowClient().get_run(run_id)
    assert "qps_total.seasonal_naive_day.mase" in run.data.metrics
    assert {"data_start", "data_end", "code_version"} <= set(run.data.params)
    plots = {a.path for a in MlflowClient().list_artifacts(run_id, "plots")}
    assert {f"plots/forecast_vs_actual_{t}.png" for t in settings.forecast.targets} == plots

    result = runner.invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    assert "champion" in result.output

    # a plain history DataFrame, straight through the registry alias
    history = read_series(lake, ["qps_total"])["qps_total"]
    model = mlflow.pyfunc.load_model("models:/replicast-load@champion")
    out = model.predict(history[["series_id", "ts", "y"]], params={"target": "qps_total"})
    assert len(out) == n_series * 24
    assert set(out["series_id"]) == set(history["series_id"])


def test_too_short_history_fails_before_any_backtest(settings: Settings, lake: Lake) -> None:
    fleet = scale_fleet(settings.fleet, 1)
    sim = simulate_fleet(fleet, start="2026-04-01", days=1, seed=7, nodes_per_region=1)
    lake.write("node_metrics", sim.node_metrics)
    result = CliRunner().invoke(app, ["train", "--models", "seasonal_naive_day"])
    assert result.exit_code != 0
    message = " ".join(result.output.split())
    assert "training needs at least" in message
    assert "Traceback" not in result.output
    assert (
        not (settings.data_dir / "mlflow.db").exists()
        or not MlflowClient(settings.tracking_uri).search_registered_models()
    )


@pytest.mark.slow
def test_train_on_a_local_dask_cluster_gives_the_same_champions(
    settings: Settings, lake: Lake
) -> None:
    from pipelines.train import train

    sim = simulate_fleet(
        scale_fleet(settings.fleet, 1), start="2026-04-01", days=10, seed=3,
        nodes_per_region=2, segments_per_cluster=2,
    )  # fmt: skip
    lake.write("node_metrics", sim.node_metrics)
    kwargs = {"models": FAST_MODELS, "folds": 2, "targets": ["qps_total", "cpu_util"]}

    here = train(settings, lake=lake, workers=1, **kwargs)
    stages: list[str] = []
    spread = train(
        settings, lake=lake, dask="local", progress=lambda s, d, t: stages.append(s), **kwargs
    )

    for target in kwargs["targets"]:
        assert spread.targets[target].champion == here.targets[target].champion
    assert spread.score == pytest.approx(here.score)
    assert any("targets done on Dask (local)" in s for s in stages)
    assert spread.gate.version == "2"


@pytest.mark.slow
def test_train_on_local_processes_gives_the_same_champions_and_every_tick(
    settings: Settings, lake: Lake
) -> None:
    from pipelines.train import train

    sim = simulate_fleet(
        scale_fleet(settings.fleet, 1), start="2026-04-01", days=10, seed=3,
        nodes_per_region=2, segments_per_cluster=2,
    )  # fmt: skip
    lake.write("node_metrics", sim.node_metrics)
    kwargs = {"models": FAST_MODELS, "folds": 2, "targets": ["qps_total", "cpu_util"]}

    runs = {}
    for workers in (1, 2):
        ticks: list[tuple[str, int, int]] = []
        report = train(
            settings,
            lake=lake,
            workers=workers,
            progress=lambda *t, ticks=ticks: ticks.append(t),
            **kwargs,
        )
        runs[workers] = (report, ticks)

    (here, here_ticks), (spread, spread_ticks) = runs[1], runs[2]
    for target in kwargs["targets"]:
        assert spread.targets[target].champion == here.targets[target].champion
    assert spread.score == pytest.approx(here.score)
    # every fold and refit of the workers reaches the parent's progress, in any order
    assert sorted(s for s, _, _ in spread_ticks) == sorted(s for s, _, _ in here_ticks)
    assert any("qps_total: seasonal_naive_day fold 2/2" in s for s, _, _ in spread_ticks)
    assert spread_ticks[-1][1] == spread_ticks[-1][2]  # done == total at the end
