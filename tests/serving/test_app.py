"""The app skeleton through a real uvicorn: health, metrics, request ids, auth."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from forecasting.errors import ConfigError
from forecasting.settings import Settings
from serving.http.app import create_app
from tests.serving.live import live_server

TOKEN = "s3cret-token"


def _settings(root: Path, **serve: object) -> Settings:
    """Settings on the shared empty registry (its MLflow tables already exist)."""
    return Settings(
        data_dir=root / "var",
        mlflow_tracking_uri=f"sqlite:///{root / 'var' / 'mlflow.db'}",
        serve={"refresh_seconds": 3600, **serve},
    )


def test_health_and_not_ready_without_a_champion(empty_registry: Path) -> None:
    app = create_app(_settings(empty_registry, api_token=TOKEN), configure_logs=False)
    with live_server(app) as base:
        health = httpx.get(f"{base}/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        assert "no champion" in ready.json()["reason"]
        forecast = httpx.post(f"{base}/v1/forecast", json={"series_ids": ["orders/us-east"]})
        assert forecast.status_code == 503
        assert forecast.headers["retry-after"]


def test_request_id_is_echoed_or_generated(empty_registry: Path) -> None:
    app = create_app(_settings(empty_registry), configure_logs=False)
    with live_server(app) as base:
        given = httpx.get(f"{base}/healthz", headers={"X-Request-ID": "abc-123"})
        assert given.headers["x-request-id"] == "abc-123"
        fresh = httpx.get(f"{base}/healthz", headers={"X-Request-ID": "bad id\twith tab"})
        assert fresh.headers["x-request-id"] not in ("", "bad id\twith tab")
        other = httpx.get(f"{base}/healthz")
        assert other.headers["x-request-id"] != fresh.headers["x-request-id"]


def test_metrics_count_requests_per_route_template(empty_registry: Path) -> None:
    app = create_app(_settings(empty_registry), configure_logs=False)
    with live_server(app) as base:
        for _ in range(3):
            httpx.get(f"{base}/healthz")
        httpx.get(f"{base}/no/such/route")
        text = httpx.get(f"{base}/metrics").text
    assert 'replicast_http_requests_total{method="GET",route="/healthz",status="200"} 3.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "replicast_http_request_duration_seconds_bucket" in text
    assert "replicast_registry_up" in text


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, False),
        ({"Authorization": "Bearer wrong"}, False),
        ({"Authorization": f"Basic {TOKEN}"}, False),
        ({"Authorization": f"Bearer {TOKEN}"}, True),
    ],
    ids=["missing", "wrong", "not-bearer", "right"],
)
def test_admin_reload_needs_the_token(empty_registry: Path, headers: dict, allowed: bool) -> None:
    app = create_app(_settings(empty_registry, api_token=TOKEN), configure_logs=False)
    with live_server(app) as base:
        response = httpx.post(f"{base}/admin/reload", headers=headers, timeout=60)
    if allowed:
        # authorised; the empty registry has no champion, so the reload itself is a 503
        assert response.status_code == 503
        assert "reload failed" in response.json()["detail"]
    else:
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_mutating_routes_refused_without_token_unless_dev(empty_registry: Path) -> None:
    closed = create_app(_settings(empty_registry), configure_logs=False)
    paths = closed.openapi()["paths"]
    assert "/admin/reload" not in paths
    assert "/v1/forecast" in paths
    dev = create_app(_settings(empty_registry, dev_mode=True), configure_logs=False)
    assert "/admin/reload" in dev.openapi()["paths"]


def test_whitespace_token_is_a_config_error(empty_registry: Path) -> None:
    with pytest.raises(ConfigError, match="api_token"):
        create_app(_settings(empty_registry, api_token="   "), configure_logs=False)
