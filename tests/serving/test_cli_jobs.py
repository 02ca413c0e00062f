"""`replicast schedule --list` and `replicast run JOB` through the real typer app."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from croniter import croniter
from typer.testing import CliRunner

from forecasting.lake import Lake
from forecasting.settings import get_settings
from pipelines.job_runs import JOB_RUNS, JobRun, record_run
from pipelines.schedule import job_lock, lock_path
from serving.cli import app
from serving.cli.jobs import EXIT_LOCKED
from tests.conftest import SAMPLE_DIR

WIDE = {"COLUMNS": "200"}


def _write_toml(tmp_path: Path, text: str) -> None:
    (tmp_path / "replicast.toml").write_text(text, encoding="utf-8")
    get_settings.cache_clear()


def test_schedule_list_shows_the_configured_jobs_next_times_and_last_run(tmp_path: Path):
    _write_toml(tmp_path, '[schedule]\ningest = "*/30 * * * *"\nplan = "0 6 * * *"\n')
    lake = Lake(get_settings().lake_dir)
    record_run(
        lake, JobRun("plan", "r1", "failed", datetime(2026, 1, 5, 6, 0, tzinfo=UTC), 1.0, "boom")
    )

    result = CliRunner().invoke(app, ["schedule", "--list", "--count", "2"], env=WIDE)

    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert set(lines) >= {"ingest", "plan"}
    assert "train" not in lines  # only what the settings schedule
    assert "*/30 * * * *" in lines["ingest"] and "0 6 * * *" in lines["plan"]
    first_six = croniter("0 6 * * *", datetime.now(UTC)).get_next(datetime)
    assert f"{first_six:%m-%d} 06:00" in lines["plan"]
    assert "failed 01-05 06:00" in lines["plan"]
    assert lines["ingest"].rstrip().endswith("-")  # never ran


def test_schedule_list_refuses_an_unknown_job_or_a_bad_cron(tmp_path: Path):
    _write_toml(tmp_path, '[schedule]\nbogus = "* * * * *"\n')
    result = CliRunner().invoke(app, ["schedule", "--list"], env=WIDE)
    assert result.exit_code == 3
    assert "schedule.bogus: no such job" in result.output

    _write_toml(tmp_path, '[schedule]\ntrain = "0 25 * * *"\n')
    result = CliRunner().invoke(app, ["schedule", "--list"], env=WIDE)
    assert result.exit_code == 3
    assert "schedule.train: invalid cron expression '0 25 * * *'" in " ".join(result.output.split())


def test_run_an_unknown_job_names_the_known_ones():
    result = CliRunner().invoke(app, ["run", "nope"], env=WIDE)
    assert result.exit_code == 6
    assert "unknown job 'nope'" in result.output and "ingest" in result.output


def test_run_skips_and_says_so_when_the_lock_is_held(tmp_path: Path):
    settings = get_settings()
    with job_lock(lock_path(settings.data_dir, "ingest")) as held:
        assert held
        result = CliRunner().invoke(app, ["run", "ingest"], env=WIDE)
    assert result.exit_code == EXIT_LOCKED, result.output
    assert "ingest skipped" in result.output
    lake = Lake(settings.lake_dir)
    assert list(lake.read(JOB_RUNS)["state"]) == ["skipped_locked"]
    assert lake.read("node_metrics").empty  # nothing was ingested


def test_run_ingest_now_loads_the_configured_inputs(tmp_path: Path):
    rows = pd.read_parquet(SAMPLE_DIR / "node_metrics.parquet").head(50)
    rows.to_csv(tmp_path / "nodes.csv", index=False)
    _write_toml(tmp_path, f'ingest_sources = ["{tmp_path / "nodes.csv"}"]\n')

    result = CliRunner().invoke(app, ["run", "ingest"], env=WIDE)

    assert result.exit_code == 0, result.output
    assert "ingest ok" in result.output
    lake = Lake(get_settings().lake_dir)
    assert len(lake.read("node_metrics")) == len(rows)
    runs = lake.read(JOB_RUNS)
    assert list(runs["state"]) == ["ok"] and '"rows_good": 50' in runs["detail"].iloc[0]


def test_a_file_system_error_in_a_job_is_one_line(tmp_path: Path) -> None:
    """Issue 11: an OSError making the job's lock or lake was a traceback; now one line, exit 1."""
    data_dir = Path(get_settings().data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "locks").write_text("not a directory")

    result = CliRunner().invoke(app, ["run", "ingest"], env=WIDE)

    assert result.exit_code == 1, result.output
    assert f"error: {data_dir / 'locks'}: File exists" in result.output
    assert "Traceback" not in result.output
