"""`replicast simulate`: files written, options honoured, clashing options refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from forecasting.lake import read_parquet_verified
from forecasting.schemas import NODE_METRICS, SEGMENT_ACCESS
from forecasting.settings import Fleet
from pipelines.simulate import (
    MAX_ROWS,
    NODE_FILE,
    SEGMENT_FILE,
    iter_clusters,
    planned_rows,
    scale_fleet,
)
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


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--days", "1000000"),
        ("--days", "1e30"),
        ("--days", "0"),
        ("--nodes-per-region", "1000000000"),
        ("--segments-per-cluster", "1000000000"),
        ("--clusters", "1000000"),
        ("--seed", "-1"),
        ("--seed", str(2**32)),
        ("--start", "0001-01-01"),
        ("--start", "9999-12-31"),
    ],
)
def test_out_of_range_options_are_refused_at_once(
    app: typer.Typer, tmp_path: Path, option: str, value: str
) -> None:
    """Issue 11: these gave tracebacks, a 22 GiB allocation or hangs; now a usage error."""
    out = tmp_path / "fleet"
    result = CliRunner().invoke(app, ["simulate", "--out", str(out), option, value])
    assert result.exit_code == 2, result.output
    assert option in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_too_many_rows_are_refused_with_the_count(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    result = CliRunner().invoke(app, ["simulate", "--out", str(out), "--days", "3660"])
    assert result.exit_code == 3, result.output
    text = " ".join(result.output.split())
    assert "would generate" in text and f"{MAX_ROWS:,}" in text and "--days (3660)" in text
    assert not out.exists()  # refused before the directory is made


def test_planned_rows_bound_what_is_generated() -> None:
    fleet = scale_fleet(Fleet(), 2)
    parts = list(
        iter_clusters(
            fleet, start="2026-01-05", days=3, seed=1, nodes_per_region=2, segments_per_cluster=20
        )
    )
    generated = sum(len(p.node_metrics) + len(p.segment_access) for p in parts)
    planned = planned_rows(fleet, days=3, nodes_per_region=2, segments_per_cluster=20)
    assert generated <= planned <= 2 * generated


def test_out_that_is_a_file_is_a_clear_error(app: typer.Typer, tmp_path: Path) -> None:
    existing = tmp_path / "file"
    existing.write_text("x")
    for out in (existing, existing / "sub"):
        result = CliRunner().invoke(app, ["simulate", "--out", str(out), "--days", "1"])
        assert result.exit_code == 3, result.output
        assert "--out" in result.output and "Traceback" not in result.output
    assert existing.read_text() == "x"


def test_out_that_cannot_be_created_is_a_clear_error(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["simulate", "--out", "/proc/x", "--days", "1"])
    assert result.exit_code == 3, result.output
    assert "--out: cannot create directory /proc/x" in " ".join(result.output.split())
