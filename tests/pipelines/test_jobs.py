"""The job table: real ingest inputs, refusals, lazy pipeline imports."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from forecasting.errors import ConfigError, DataValidationError, UnknownKeyError
from forecasting.lake import Lake
from forecasting.settings import Settings
from pipelines.job_runs import JOB_RUNS
from pipelines.jobs import JOBS, get_job, ingest_job
from pipelines.schedule import run_job
from tests.conftest import SAMPLE_DIR


def _nodes_csv(path: Path, rows: int) -> pd.DataFrame:
    frame = pd.read_parquet(SAMPLE_DIR / "node_metrics.parquet").head(rows)
    frame.to_csv(path, index=False)
    return frame


def test_the_table_has_the_scheduled_jobs(settings: Settings):
    assert set(settings.schedule) <= set(JOBS)
    assert get_job("train") is JOBS["train"]
    with pytest.raises(UnknownKeyError, match="unknown job 'nope'; known jobs: forecast, ingest"):
        get_job("nope")


def test_a_refused_input_fails_the_job_but_the_good_inputs_are_ingested(
    settings: Settings, lake: Lake, tmp_path: Path
):
    good = _nodes_csv(tmp_path / "good.csv", 30)
    missing = tmp_path / "missing.csv"
    settings = settings.model_copy(
        update={"ingest_sources": [str(missing), str(tmp_path / "good.csv")]}
    )

    run = run_job("ingest", settings)

    assert run.state == "failed"
    assert isinstance(run.error, DataValidationError)
    assert "1 of 2 input(s) refused" in run.detail and "missing.csv" in run.detail
    assert len(lake.read("node_metrics")) == len(good)
    assert list(lake.read(JOB_RUNS)["state"]) == ["failed"]


def test_no_ingest_sources_is_a_config_error(settings: Settings):
    with pytest.raises(ConfigError, match="ingest_sources is empty"):
        ingest_job(settings.model_copy(update={"ingest_sources": []}))


def test_a_missing_pipeline_is_an_error_when_its_job_runs_not_before(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(sys.modules, "pipelines.plan", None)  # as if the module were absent
    run = run_job("plan", settings)
    assert run.state == "failed"
    assert isinstance(run.error, ImportError)
    assert "pipelines.plan" in run.detail


def test_a_scheduled_forecast_is_one_job_runs_row(settings: Settings, lake: Lake):
    run = run_job("forecast", settings)  # nothing ingested or trained: it fails

    assert run.state == "failed"
    assert list(lake.read(JOB_RUNS)["job"]) == ["forecast"]  # the scheduler's row only
