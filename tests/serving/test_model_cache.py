"""Champion refresh: atomic swap under load; a registry outage keeps serving, reported degraded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from serving.http.app import create_app
from tests.serving.conftest import TOKEN, Registry
from tests.serving.live import live_server, ready, wait_until

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY = {"target": "qps_total", "series_ids": ["orders/us-east"], "horizon": 4}


@pytest.fixture
def served(registry: Registry) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(registry.settings, configure_logs=False)
    with live_server(app) as url:
        wait_until(lambda: ready(url), timeout=60)
        yield app, url


def _version(base: str) -> str:
    response = httpx.post(f"{base}/v1/forecast", json=BODY)
    assert response.status_code == 200, response.text
    return response.json()["model_version"]


def test_registry_outage_keeps_serving_and_reports_degraded(
    served: tuple[FastAPI, str], registry: Registry, tmp_path: Path
) -> None:
    app, base = served
    before = _version(base)
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a sqlite database" * 100)
    cache = app.state.model_cache
    cache.settings = registry.settings.model_copy(
        update={"mlflow_tracking_uri": f"sqlite:///{broken}"}
    )
    try:
        reload = httpx.post(f"{base}/admin/reload", headers=AUTH, timeout=60)
        assert reload.status_code == 503
        assert f"still serving version {before}" in reload.json()["detail"]
        readiness = httpx.get(f"{base}/readyz")
        assert readiness.status_code == 200  # a model still serves: the fleet stays up
        body = readiness.json()
        assert body["ready"] is True
        assert body["degraded"].startswith("registry unreachable since ")
        assert f"still serving replicast-load version {before}" in body["degraded"]
        assert body["registry_up"] is False
        assert body["model_version"] == before
        assert _version(base) == before  # still serving the last model
        metrics = httpx.get(f"{base}/metrics").text
        assert "replicast_registry_up 0.0" in metrics
        assert 'replicast_model_refreshes_total{outcome="failed"}' in metrics
        since = _gauge(metrics, "replicast_registry_unreachable_since_seconds")
        assert 0 < since <= time.time()
    finally:
        cache.settings = registry.settings
    back = httpx.post(f"{base}/admin/reload", headers=AUTH, timeout=60)
    assert back.status_code == 200, back.text
    assert back.json()["outcome"] == "unchanged"
    recovered = httpx.get(f"{base}/readyz")
    assert recovered.status_code == 200 and recovered.json()["degraded"] is None
    metrics = httpx.get(f"{base}/metrics").text
    assert _gauge(metrics, "replicast_registry_unreachable_since_seconds") == 0
    assert "replicast_registry_up 1.0" in metrics


def _gauge(metrics: str, name: str) -> float:
    """The value of an unlabelled metric in the text exposition."""
    for line in metrics.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_new_champion_swaps_under_load(served: tuple[FastAPI, str], registry: Registry) -> None:
    app, base = served
    before = _version(base)
    seen: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client() as client:
            while not stop.is_set():
                r = client.post(f"{base}/v1/forecast", json=BODY)
                version = r.json().get("model_version") if r.status_code == 200 else None
                seen.append((r.status_code, version))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        new = registry.register_better()
        reload = httpx.post(f"{base}/admin/reload", headers=AUTH, timeout=120)
        assert reload.status_code == 200, reload.text
        assert reload.json() == {"outcome": "swapped", "version": new, "previous_version": before}
        wait_until(lambda: any(v == new for _, v in seen[-5:]), timeout=30)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert seen
    assert all(code == 200 for code, _ in seen), {c for c, _ in seen}
    assert {v for _, v in seen} <= {before, new}
    assert _version(base) == new
    metrics = httpx.get(f"{base}/metrics").text
    assert f'replicast_model_loaded{{model="replicast-load",version="{new}"}} 1.0' in metrics
    assert f'version="{before}"' not in metrics


def test_model_output_is_made_serialisable() -> None:
    """Fast paths may return column views of a 2-D table; orjson needs contiguous arrays."""
    import numpy as np
    import orjson

    from serving.http.services.model_cache import _serialisable

    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = _serialisable(
        {
            "ts": np.array(["2026-01-01T00:00", "2026-01-01T01:00"] * 2, dtype="datetime64[s]"),
            "step": [1, 2, 3, 4],
            "q0.5": table[:, 1],
        }
    )
    assert out["q0.5"].flags.c_contiguous and out["q0.5"].dtype == np.float64
    assert out["ts"].dtype == np.dtype("datetime64[ns]")
    text = orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC)
    assert orjson.loads(text)["q0.5"] == [1.0, 4.0, 7.0, 10.0]


def test_new_lake_data_refreshes_the_cached_history(registry: Registry, tmp_path: Path) -> None:
    """Same champion, newer node_metrics: the next refresh forecasts from the new last hour."""
    import pandas as pd

    from forecasting.lake import Lake
    from pipelines.simulate import simulate_fleet
    from serving.http.metrics import ServiceMetrics
    from serving.http.services.model_cache import ModelCache

    settings = registry.settings.model_copy(update={"data_dir": tmp_path / "var"})
    sim = simulate_fleet(settings.fleet, start="2026-10-01", days=12, seed=7, nodes_per_region=1)
    lake = Lake(settings.lake_dir)
    cut = pd.Timestamp("2026-10-11T00:00:00Z")
    lake.write("node_metrics", sim.node_metrics[sim.node_metrics["ts"] < cut])
    cache = ModelCache(settings, ServiceMetrics())
    assert cache.refresh().outcome == "swapped"
    first = cache.require()
    before = first.known_forecast("qps_total", "orders/us-east", 3, None)["ts"][0]
    assert cache.refresh().outcome == "unchanged"
    assert cache.require() is first  # nothing new: same object, memo kept

    lake.write("node_metrics", sim.node_metrics[sim.node_metrics["ts"] >= cut])
    result = cache.refresh()
    assert (result.outcome, result.version) == ("unchanged", first.version)
    after = cache.require().known_forecast("qps_total", "orders/us-east", 3, None)["ts"][0]
    assert after - before == np.timedelta64(2 * 24 * 3600, "s")
