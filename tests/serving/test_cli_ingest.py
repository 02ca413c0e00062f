"""`replicast ingest`: exit codes, messages and the summary, through the real CLI app."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from forecasting.lake import Lake
from forecasting.schemas import NODE_METRICS
from forecasting.settings import Settings
from pipelines import ingest
from serving.cli import app

HEADER = ",".join(NODE_METRICS.names)


def _line(minute: int, cpu: str = "0.5") -> str:
    return f"2026-01-01T00:{minute:02d}:00Z,orders,us-east,n1,primary,{cpu},10,1,1e9,0,5,1"


def _invoke(*args: str) -> tuple[int, str]:
    """Exit code and output without any whitespace (rich wraps and folds long lines)."""
    result = CliRunner().invoke(app, ["ingest", *args], env={"COLUMNS": "300"})
    assert "Traceback" not in result.output
    return result.exit_code, _squeeze(result.output)


def _squeeze(text: str) -> str:
    return "".join(text.split())


def test_quarantined_rows_still_exit_zero(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "node_metrics.csv"
    path.write_text("\n".join([HEADER, _line(0), _line(5, cpu="abc"), _line(10, cpu="3")]))
    code, output = _invoke("--source", str(path))
    assert code == 0, output
    assert _squeeze("node_metrics") in output
    assert _squeeze("row 2: cpu_util: 'abc' is not a number") in output
    assert _squeeze("1 row(s) written") in output and _squeeze("2 quarantined") in output
    assert len(Lake(settings.lake_dir).read("quarantine")) == 2


def test_refused_file_exits_non_zero_but_others_ingest(tmp_path: Path, settings: Settings) -> None:
    good = tmp_path / "node_metrics.csv"
    good.write_text("\n".join([HEADER, _line(0)]))
    bad = tmp_path / "node_metrics-broken.csv"
    bad.write_text("\n".join([HEADER.replace(",role", ""), "x"]))
    code, output = _invoke("-s", str(bad), "-s", str(good))
    assert code == 4
    assert _squeeze("error:") in output
    assert _squeeze("node_metrics-broken.csv") in output and "'role'" in output
    assert len(Lake(settings.lake_dir).read("node_metrics")) == 1


def test_corrupt_parquet_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "segment_access.parquet"
    path.write_bytes(np.random.default_rng(2).bytes(2048))
    code, output = _invoke("--source", str(path))
    assert code == 4
    assert _squeeze("segment_access.parquet: unreadable or corrupt Parquet") in output


def test_several_failures_are_summarised(tmp_path: Path) -> None:
    code, output = _invoke("-s", str(tmp_path / "a.csv"), "-s", str(tmp_path / "b*.parquet"))
    assert code == 4
    assert _squeeze("2 of 2 input(s) refused") in output


def test_missing_sample_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "SAMPLE_DIR", tmp_path / "nothing")
    code, output = _invoke()
    assert code == 4
    assert _squeeze("make simulate-sample") in output


def test_help_describes_sources() -> None:
    result = CliRunner().invoke(app, ["ingest", "--help"])
    assert result.exit_code == 0
    assert "postgresql://" in result.output and "quarantine" in result.output


def test_unknown_dataset_is_refused_up_front(tmp_path: Path) -> None:
    code, output = _invoke("--source", str(tmp_path / "x.csv"), "--dataset", "nodes")
    assert code == 4
    assert _squeeze("unknown dataset 'nodes'") in output
