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


def _backtest(tmp_path, *extra: str):
    _csv(tmp_path / "a.csv", 0)
    args = ["backtest", "--series", str(tmp_path / "a.csv"), "--models", "seasonal_naive_day"]
    return CliRunner().invoke(app, [*args, *extra])


def test_huge_folds_are_refused_by_the_option(tmp_path) -> None:
    """Issue 11: --folds 99999999999999999999 hung; the option's range refuses it at once."""
    result = _backtest(tmp_path, "--folds", "99999999999999999999")
    assert result.exit_code == 2
    assert "--folds" in result.output and "Traceback" not in result.output


def test_huge_horizon_is_refused_by_the_option(tmp_path) -> None:
    result = _backtest(tmp_path, "--horizon", "10000000")
    assert result.exit_code == 2
    assert "--horizon" in result.output


def test_folds_that_do_not_fit_the_series_are_a_clear_error(tmp_path) -> None:
    """12 days of 5-minute samples = 288 hourly steps: 1000 folds of 24 cannot fit."""
    result = _backtest(tmp_path, "--folds", "1000", "--horizon", "24")
    assert result.exit_code == 3, result.output
    out = " ".join(result.output.split())
    assert "folds x horizon do not fit" in out and "288" in out
    assert "Traceback" not in result.output
