"""MLflow with a PostgreSQL backend store: train -> register -> load champion -> forecast;
an unreachable store fails within seconds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from forecasting.errors import ModelNotFoundError
from forecasting.lake import Lake
from forecasting.settings import get_settings
from models.artifact_manifest import MANIFEST_TAG
from models.mlflow_registry import LOAD_MODEL, PROBE_TIMEOUT_S, Registry
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
    assert "python_model.pkl" in loaded.tags[MANIFEST_TAG]  # verified before loading
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


def test_a_database_refusing_connections_fails_the_probe_within_seconds(
    pg_pair: PgPair, tmp_path
) -> None:
    """MLflow alone retries opening the store for ~100 s; the probe answers in seconds."""
    name = f"mlflow_{uuid.uuid4().hex[:8]}"
    with pg_pair.primary.connect() as admin:
        admin.execute(f"CREATE DATABASE {name} ALLOW_CONNECTIONS false")
    try:
        uri = f"postgresql+psycopg://postgres:Pr0be-pw@127.0.0.1:{pg_pair.primary.port}/{name}"
        registry = Registry(uri, tmp_path / "artifacts")
        started = time.monotonic()
        for call in (lambda: registry.champion_version(LOAD_MODEL), registry.experiment_id):
            with pytest.raises(ModelNotFoundError, match="not currently accepting") as info:
                call()
            assert "Pr0be-pw" not in str(info.value)
        assert time.monotonic() - started < 4 * PROBE_TIMEOUT_S
    finally:
        with pg_pair.primary.connect() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
