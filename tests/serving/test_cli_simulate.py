"""`replicast simulate`: files written, options honoured, clashing options refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from forecasting.lake import read_parquet_verified
from forecasting.schemas import NODE_METRICS, SEGMENT_ACCESS
from pipelines.simulate import NODE_FILE, SEGMENT_FILE
from serving.cli import app as replicast


@pytest.fixture
def app() -> typer.Typer:
    return replicast


def test_simulate_writes_both_datasets_with_extra_clusters(
    app: typer.Typer, tmp_path: Path
) -> None:
    out = tmp_path / "fleet"
    args = ["simulate", "--out", str(out), "--days", "2", "--clusters", "5"]
    result = CliRunner().invoke(
        app, [*args, "--nodes-per-region", "1", "--segments-per-cluster", "6", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    nodes = read_parquet_verified(out / NODE_FILE)
    segments = read_parquet_verified(out / SEGMENT_FILE)
    assert list(nodes.columns) == NODE_METRICS.names
    assert list(segments.columns) == SEGMENT_ACCESS.names
    assert sorted(nodes["cluster"].unique()) == ["c003", "c004", "events", "orders", "users"]
    assert nodes.groupby(["cluster", "region"])["node"].nunique().max() == 1
    assert nodes["ts"].max() - nodes["ts"].min() < pd.Timedelta(days=2)
    assert "simulated fleet" in result.output
    assert not list(out.glob(".*tmp"))  # atomic writes leave no temp files


def test_sample_refuses_other_generation_options(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--sample", "--days", "3", "--out", str(tmp_path)]
    )
    assert result.exit_code == 3
    assert "--days" in result.output
    assert not (tmp_path / NODE_FILE).exists()


def test_bad_cluster_count_is_a_clear_error(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--clusters", "0"])
    assert result.exit_code == 3
    assert "--clusters" in result.output
