"""`replicast ingest --source postgresql://...`: a live snapshot lands in the lake."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from forecasting.lake import Lake
from forecasting.settings import Settings
from serving.cli import app
from tests.integration.conftest import APP_DB
from tests.integration.servers import PgPair, free_port

pytestmark = pytest.mark.integration


def _squeeze(text: str) -> str:
    return "".join(text.split())


def test_ingest_a_postgresql_snapshot(pg_pair: PgPair, settings: Settings) -> None:
    uri = pg_pair.primary.dsn(APP_DB, sample="0.5s")
    result = CliRunner().invoke(app, ["ingest", "--source", uri], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    nodes = Lake(settings.lake_dir).read("node_metrics")
    assert nodes["cluster"].tolist() == [APP_DB]
    assert _squeeze("0 quarantined") in _squeeze(result.output)


def test_unreachable_source_exits_non_zero_with_one_line(settings: Settings) -> None:
    uri = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/app"
    result = CliRunner().invoke(app, ["ingest", "--source", uri], env={"COLUMNS": "300"})
    assert result.exit_code == 7  # SourceError
    assert "Traceback" not in result.output
    assert "secret" not in result.output
    assert Lake(settings.lake_dir).datasets() == []
