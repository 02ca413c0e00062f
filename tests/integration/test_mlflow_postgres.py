"""MLflow with a PostgreSQL backend store: train -> register -> load champion -> forecast."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from forecasting.lake import Lake
from forecasting.settings import get_settings
from models.mlflow_registry import LOAD_MODEL, Registry
from pipelines.forecast import forecast
from pipelines.ingest import ingest_frame
from pipelines.simulate import simulate_fleet
from pipelines.train import train
from tests.integration.servers import PgPair

pytestmark = pytest.mark.integration


@pytest.fixture
def tracking_uri(pg_pair: PgPair) -> Iterator[str]:
    """A throw-away database on the test primary, dropped afterwards."""
    name = f"mlflow_{uuid.uuid4().hex[:8]}"
    with pg_pair.primary.connect() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{pg_pair.primary.port}/{name}"
    finally:
        with pg_pair.primary.connect() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_train_register_load_champion_and_forecast_on_postgres(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICAST_MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("REPLICAST_FORECAST__HORIZON", "12")
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.tracking_uri == tracking_uri
    lake = Lake(settings.lake_dir)
    fleet = simulate_fleet(
        settings.fleet, start="2025-01-01", days=6, seed=0, nodes_per_region=1,
        segments_per_cluster=2,
    )  # fmt: skip
    ingest_frame(fleet.node_metrics, dataset="node_metrics", source="simulated", lake=lake)

    report = train(
        settings, lake=lake, models=["seasonal_naive_day"], folds=1, targets=["qps_total"]
    )
    assert report.gate.alias == "champion"  # the first version of an empty registry

    loaded = Registry.from_settings(settings).load_champion(LOAD_MODEL)
    assert loaded.version == report.gate.version
    written = forecast(settings, lake=lake, loaded=loaded)
    assert written.rows > 0 and written.model_version == loaded.version

    # the registry really lives in PostgreSQL (not a stray SQLite file)
    engine = create_engine(tracking_uri)
    try:
        with engine.connect() as conn:
            versions = conn.execute(
                text("SELECT version FROM model_versions WHERE name = :n"), {"n": LOAD_MODEL}
            ).scalars()
            assert str(report.gate.version) in {str(v) for v in versions}
    finally:
        engine.dispose()
    assert not (settings.data_dir / "mlflow.db").exists()
