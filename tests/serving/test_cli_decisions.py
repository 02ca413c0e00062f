from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from serving.cli import app
from tests.pipelines.test_decision_backtests import write_series, write_trace

runner = CliRunner()


def test_backtest_sizing_json_shape(tmp_path: Path) -> None:
    series = tmp_path / "series"
    series.mkdir()
    write_series(series / "a.csv", seed=0)
    write_series(series / "b.csv", seed=1)
    out = tmp_path / "sizing.json"
    result = runner.invoke(
        app,
        [
            "backtest-sizing",
            "--series",
            str(series),
            "--timestamp-col",
            "timestamp",
            "--value-col",
            "value",
            "--node-capacity",
            "auto",
            "--target-util",
            "0.7",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data["series"]) == {"a.csv", "b.csv"}
    for policy in ("static", "vpa", "replicast", "oracle"):
        assert set(data["overall"][policy]) == {"node_hours", "violation_rate", "slack"}
        assert set(data["series"]["a.csv"][policy]) == {"node_hours", "violation_rate", "slack"}


def test_backtest_sizing_bad_capacity_and_column_are_clear_errors(tmp_path: Path) -> None:
    path = write_series(tmp_path / "a.csv")
    result = runner.invoke(
        app,
        [
            "backtest-sizing",
            "--series",
            str(path),
            "--node-capacity",
            "-3",
            "--json",
            str(tmp_path / "o.json"),
        ],
    )
    assert result.exit_code != 0
    assert "node-capacity" in result.output and "Traceback" not in result.output
    result = runner.invoke(
        app,
        [
            "backtest-sizing",
            "--series",
            str(path),
            "--value-col",
            "cpu",
            "--json",
            str(tmp_path / "o.json"),
        ],
    )
    assert result.exit_code == 4
    assert "cpu" in result.output


def test_backtest_priority_json_shape(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "t.csv")
    out = tmp_path / "priority.json"
    result = runner.invoke(
        app,
        [
            "backtest-priority",
            "--trace",
            str(trace),
            "--key-col",
            "segment",
            "--time-col",
            "ts",
            "--window",
            "300",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    for policy in ("alphabetical", "last_window", "replicast", "oracle"):
        assert set(data["policies"][policy]) == {"exposure", "captured"}
    assert data["policies"]["oracle"]["captured"] == 1
    assert data["window"] == "300 rows"


def test_plan_prints_tables_and_writes_json(tmp_path: Path, settings, lake) -> None:
    from pipelines.simulate import simulate_fleet

    fleet = simulate_fleet(
        settings.fleet,
        start="2026-03-02",
        days=10,
        seed=5,
        nodes_per_region=1,
        segments_per_cluster=8,
    )
    lake.write("segment_access", fleet.segment_access)
    lake.write("node_metrics", fleet.node_metrics)
    out = tmp_path / "plan.json"
    result = runner.invoke(app, ["plan", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "sizing plan" in result.output and "priority queue" in result.output
    data = json.loads(out.read_text())
    assert set(data) == {"priority", "sizing"}
    assert set(data["priority"]) == {
        "alphabetical",
        "oldest_change",
        "smallest",
        "last_window",
        "model",
        "oracle",
    }
    for row in data["priority"].values():
        assert set(row) == {"exposure", "captured"}
    assert data["priority"]["oracle"]["captured"] == 1
    assert set(data["sizing"]) == {"static", "vpa", "replicast", "oracle"}
    for row in data["sizing"].values():
        assert set(row) == {"node_hours", "violation_rate", "slack"}
    assert data["sizing"]["oracle"]["violation_rate"] == 0
    assert len(lake.read("sizing_plans")) > 0


def test_plan_on_an_empty_lake_is_a_clear_error() -> None:
    result = runner.invoke(app, ["plan"])
    assert result.exit_code == 4
    assert "ingest" in result.output
