"""`replicast backtest --series ... --json OUT`: exact JSON shape and errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from models.catalog import known_models
from serving.cli import app


def _csv(path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-01-01", periods=12 * 24 * 12, freq="5min")
    value = 5 + np.sin(np.arange(ts.size) * 2 * np.pi / 288) + rng.normal(0, 0.1, ts.size)
    pd.DataFrame({"timestamp": ts, "value": value}).to_csv(path, index=False)


def test_cli_writes_the_json_report(tmp_path) -> None:
    d = tmp_path / "s"
    d.mkdir()
    _csv(d / "a.csv", 0)
    _csv(d / "b.csv", 1)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--series",
            str(d),
            "--timestamp-col",
            "timestamp",
            "--value-col",
            "value",
            "--horizon",
            "24",
            "--folds",
            "2",
            "--models",
            "seasonal_naive_day",
            "--models",
            "seasonal_naive_week",
            "--json",
            str(out),
            "--progress",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert set(doc) >= {"series", "summary"}
    assert set(doc["series"]) == {"a", "b"}
    for model in ("seasonal_naive_day", "seasonal_naive_week", "champion"):
        entry = doc["series"]["a"][model]
        assert {"mase", "pinball", "coverage_90", "fit_s"} <= set(entry)
        assert isinstance(entry["mase"], float)
        assert set(doc["summary"][model]) >= {"mase_mean", "mase_median"}
    assert "MASE" in result.output


def test_cli_unknown_column_is_a_clear_error(tmp_path) -> None:
    _csv(tmp_path / "a.csv", 0)
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--series",
            str(tmp_path / "a.csv"),
            "--value-col",
            "cpu",
            "--models",
            "seasonal_naive_day",
        ],
    )
    assert result.exit_code == 4
    assert "cpu" in result.output and "Traceback" not in result.output


def test_help_lists_the_catalog_models() -> None:
    """--help names the models from the settings' ModelName; they must be the catalog's."""
    result = CliRunner().invoke(app, ["backtest", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    assert f"Known: {', '.join(known_models())}" in " ".join(result.output.split())
