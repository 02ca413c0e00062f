"""Honest readiness under real faults: a lake partition deleted or corrupted (Parquet files
under tmp_path), a registry that stopped answering, a tampered champion. Every fault keeps
the last good model and history serving and says so; none answers 404 for a known series."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI

from forecasting.lake import Lake
from forecasting.settings import Settings
from serving.http.app import create_app
from tests.serving.conftest import TOKEN, Registry, make_settings
from tests.serving.live import free_port, live_server, ready, wait_until

AUTH = {"Authorization": f"Bearer {TOKEN}"}
KNOWN = {"target": "qps_total", "series_ids": ["orders/us-east"], "horizon": 4}


def _adhoc() -> dict:
    ts = pd.date_range("2026-11-01", periods=72, freq="1h", tz="UTC")
    y = (100 + 10 * np.sin(np.arange(72) * 2 * np.pi / 24)).tolist()
    return {
        "target": "cpu_util",
        "history": {"series_id": "mine", "ts": [t.isoformat() for t in ts], "y": y},
        "horizon": 3,
    }


@pytest.fixture
def own_settings(registry: Registry, tmp_path: Path) -> Settings:
    """The session registry's champion with a private copy of its lake under tmp_path."""
    settings = registry.settings.model_copy(update={"data_dir": tmp_path / "var"})
    shutil.copytree(registry.settings.lake_dir, settings.lake_dir)
    return settings


def _partitions(settings: Settings) -> list[Path]:
    return Lake(settings.lake_dir).partitions("node_metrics")


def _corrupt(path: Path) -> None:
    """Overwrite the second half of a Parquet file (its footer included) with garbage."""
    data = bytearray(path.read_bytes())
    half = len(data) // 2
    data[half:] = b"\xff" * (len(data) - half)
    path.write_bytes(bytes(data))


@pytest.fixture
def served(own_settings: Settings) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(own_settings, configure_logs=False)
    with live_server(app) as url:
        wait_until(lambda: ready(url), timeout=60)
        yield app, url


def _gauge(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def _reload(base: str) -> httpx.Response:
    return httpx.post(f"{base}/admin/reload", headers=AUTH, timeout=60)


@pytest.mark.parametrize("fault", ["deleted", "corrupt"])
def test_a_partition_lost_between_refreshes_keeps_the_last_history_and_says_so(
    served: tuple[FastAPI, str], own_settings: Settings, fault: str
) -> None:
    _, base = served
    before = httpx.post(f"{base}/v1/forecast", json=KNOWN)
    assert before.status_code == 200, before.text
    newest = _partitions(own_settings)[-1]
    if fault == "deleted":
        shutil.rmtree(newest.parent)
    else:
        _corrupt(newest)
    assert _reload(base).status_code == 200  # the registry answered: unchanged

    readiness = httpx.get(f"{base}/readyz")
    assert readiness.status_code == 200, readiness.text
    degraded = readiness.json()["degraded"]
    assert degraded.startswith("lake read failing since ")
    assert str(newest) in degraded
    assert ("vanished" if fault == "deleted" else "corrupt") in degraded
    assert "serving the series history read at" in degraded
    after = httpx.post(f"{base}/v1/forecast", json=KNOWN)
    assert after.status_code == 200, after.text  # the last good history still answers
    assert after.json() == before.json()
    assert _gauge(httpx.get(f"{base}/metrics").text, "replicast_lake_read_up") == 0


def test_a_corrupt_partition_at_first_load_is_503_naming_it(own_settings: Settings) -> None:
    newest = _partitions(own_settings)[-1]
    good = newest.read_bytes()
    _corrupt(newest)
    app = create_app(own_settings, configure_logs=False)
    with live_server(app) as base:
        wait_until(lambda: app.state.model_cache.current is not None, timeout=60)
        readiness = httpx.get(f"{base}/readyz")
        assert readiness.status_code == 503
        assert "known-series history unavailable" in readiness.json()["reason"]
        assert str(newest) in readiness.json()["reason"]
        known = httpx.post(f"{base}/v1/forecast", json=KNOWN)
        assert known.status_code == 503, known.text  # never a 404 for a known series
        assert known.json()["error"] == "LakeReadError"
        assert str(newest) in known.json()["detail"]
        assert httpx.post(f"{base}/v1/forecast", json=_adhoc()).status_code == 200

        newest.write_bytes(good)  # repaired: the next refresh reads it
        assert _reload(base).status_code == 200
        repaired = httpx.get(f"{base}/readyz")
        assert repaired.status_code == 200 and repaired.json()["degraded"] is None
        assert httpx.post(f"{base}/v1/forecast", json=KNOWN).status_code == 200


def test_registry_on_a_closed_port_keeps_serving_degraded_without_the_password(
    served: tuple[FastAPI, str], own_settings: Settings
) -> None:
    app, base = served
    version = httpx.post(f"{base}/v1/forecast", json=KNOWN).json()["model_version"]
    cache = app.state.model_cache
    cache.settings = own_settings.model_copy(
        update={
            "mlflow_tracking_uri": f"postgresql+psycopg://replicast:Pw-1s-S3cret@127.0.0.1:"
            f"{free_port()}/mlflow"
        }
    )
    try:
        failed = _reload(base)
        assert failed.status_code == 503
        readiness = httpx.get(f"{base}/readyz")
        assert readiness.status_code == 200
        body = readiness.json()
        assert body["degraded"].startswith("registry unreachable since ")
        assert "127.0.0.1" in body["degraded"] and body["registry_up"] is False
        assert httpx.post(f"{base}/v1/forecast", json=KNOWN).json()["model_version"] == version
        metrics = httpx.get(f"{base}/metrics").text
        assert _gauge(metrics, "replicast_registry_up") == 0
        assert _gauge(metrics, "replicast_registry_unreachable_since_seconds") > 0
        for text in (failed.text, readiness.text, metrics):
            assert "Pw-1s-S3cret" not in text
    finally:
        cache.settings = own_settings


@pytest.fixture
def own_registry(tmp_path: Path, blank_mlflow_db: Path, registry: Registry) -> Registry:
    """A registry of its own (its champion gets tampered with), sharing the session history."""
    root = tmp_path / "own"
    (root / "var").mkdir(parents=True)
    shutil.copyfile(blank_mlflow_db, root / "var" / "mlflow.db")
    settings = make_settings(root)
    shutil.copytree(registry.settings.lake_dir, settings.lake_dir)
    own = Registry(settings=settings, lake=Lake(settings.lake_dir), history=registry.history)
    own.register_better()
    return own


def test_a_tampered_champion_is_refused_and_the_previous_version_keeps_serving(
    own_registry: Registry,
) -> None:
    from models.mlflow_registry import LOAD_MODEL
    from models.mlflow_registry import Registry as MlflowRegistry

    app = create_app(own_registry.settings, configure_logs=False)
    with live_server(app) as base:
        wait_until(lambda: ready(base), timeout=60)
        first = httpx.post(f"{base}/v1/forecast", json=KNOWN).json()["model_version"]
        second = own_registry.register_better()
        client = MlflowRegistry.from_settings(own_registry.settings).client
        location = client.get_model_version_download_uri(LOAD_MODEL, second)
        pickled = Path(mlflow.artifacts.download_artifacts(artifact_uri=location))
        pickled = pickled / "python_model.pkl"
        data = bytearray(pickled.read_bytes())
        data[-10] ^= 0x01
        pickled.write_bytes(bytes(data))

        refused = _reload(base)
        assert refused.status_code == 503
        detail = refused.json()["detail"]
        assert f"{LOAD_MODEL} version {second}" in detail and "python_model.pkl" in detail
        assert f"still serving version {first}" in detail
        readiness = httpx.get(f"{base}/readyz")
        assert readiness.status_code == 200
        body = readiness.json()
        assert body["model_version"] == first and body["registry_up"] is True
        assert "champion refused" in body["degraded"] and "python_model.pkl" in body["degraded"]
        served_now = httpx.post(f"{base}/v1/forecast", json=KNOWN)
        assert served_now.status_code == 200 and served_now.json()["model_version"] == first
        metrics = httpx.get(f"{base}/metrics").text
        assert _gauge(metrics, "replicast_model_integrity_failures_total") == 1

        third = own_registry.register_better()  # an intact newer champion loads
        assert _reload(base).json()["version"] == third
        assert httpx.get(f"{base}/readyz").json()["degraded"] is None
