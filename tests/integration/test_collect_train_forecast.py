"""The whole loop on real data: collect a live primary + replica, train, forecast."""

from __future__ import annotations

import threading

import psycopg
import pytest

from forecasting.lake import Lake
from forecasting.settings import get_settings
from models.mlflow_registry import LOAD_MODEL, Registry
from pipelines.collect import Collector
from pipelines.forecast import forecast
from pipelines.train import train
from tests.integration.conftest import APP_DB, run_events_workload
from tests.integration.servers import PgPair

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_collect_then_train_then_forecast_on_live_servers(
    pg_pair: PgPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    # seconds of data: forecast at 1 s buckets, 3 steps ahead, as the README's smoke test
    for key, value in {"FREQ": "1s", "HORIZON": "3", "FOLDS": "1", "MIN_HISTORY": "6"}.items():
        monkeypatch.setenv(f"REPLICAST_FORECAST__{key}", value)
    get_settings.cache_clear()
    settings = get_settings()
    lake = Lake(settings.lake_dir)
    uris = [
        pg_pair.primary.dsn(APP_DB, cluster="orders", region="us-east"),
        pg_pair.replica.dsn(APP_DB, cluster="orders", region="eu-west"),
    ]
    stop = threading.Event()

    def workload() -> None:
        with psycopg.connect(pg_pair.primary.dsn(APP_DB), autocommit=True) as conn:
            while not stop.is_set():
                run_events_workload(conn, rounds=5)

    load = threading.Thread(target=workload, daemon=True)
    load.start()
    try:
        report = Collector(uris, settings=settings, lake=lake, interval_s=0.5).run(
            stop=threading.Event(), duration_s=14
        )
    finally:
        stop.set()
        load.join(timeout=10)
    assert not report.errors
    nodes = lake.read("node_metrics")
    assert set(nodes["role"]) == {"primary", "replica"}

    trained = train(
        settings,
        lake=lake,
        models=["lightgbm", "seasonal_naive_day"],
        folds=1,
        targets=["qps_total"],
        workers=1,
    )
    assert set(trained.targets["qps_total"].summary.index) == {"lightgbm", "seasonal_naive_day"}
    loaded = Registry.from_settings(settings).load_champion(LOAD_MODEL)
    assert loaded.version == trained.gate.version
    written = forecast(settings, lake=lake, loaded=loaded)
    forecasts = lake.read("forecasts")
    assert written.rows == len(forecasts) > 0
    assert set(forecasts["series_id"]) == {"orders/us-east", "orders/eu-west"}
    assert (forecasts["q0.5"] >= 0).all()
