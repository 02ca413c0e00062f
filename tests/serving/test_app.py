"""The app skeleton through a real uvicorn: health, metrics, request ids, auth.

Mutating routes (sync runs, admin reload) are mounted only with a token or in dev
mode: without, real requests to them are 404/405 and start nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import serving.http.app as app_module
from forecasting.errors import ConfigError, ModelNotFoundError
from forecasting.settings import Settings
from serving.http.app import create_app
from tests.serving.live import live_server, wait_until
from tests.serving.test_sync import with_endpoints

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


class CountingLoader:
    """A champion loader that counts its calls and never finds one (an empty registry)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, settings: Settings) -> Any:
        self.calls += 1
        raise ModelNotFoundError("no champion in this test")


RUN = {"source": "primary", "target": "replica", "order": "alpha"}


@pytest.fixture
def fresh(tmp_path: Path, blank_mlflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir of its own (so "nothing started" can be read off it) and sync endpoints."""
    (tmp_path / "var").mkdir()
    shutil.copyfile(blank_mlflow_db, tmp_path / "var" / "mlflow.db")
    (tmp_path / "places" / "primary" / "seg00").mkdir(parents=True)
    (tmp_path / "places" / "primary" / "seg00" / "data.bin").write_bytes(b"x" * 1000)
    (tmp_path / "places" / "replica").mkdir()
    # the first champion load is the only one: no retry while a test runs
    monkeypatch.setattr(app_module, "FIRST_LOAD_RETRY_S", 3600.0)
    return tmp_path


def _fresh_settings(root: Path, **serve: object) -> Settings:
    return with_endpoints(
        _settings(root, **serve),
        {
            "primary": {"path": str(root / "places" / "primary")},
            "replica": {"path": str(root / "places" / "replica"), "role": "target"},
        },
    )


def _nothing_started(root: Path) -> bool:
    """No run store (the first run creates it) and an untouched target."""
    return not (root / "var" / "state").exists() and not any(
        (root / "places" / "replica").iterdir()
    )


def _started(loader: CountingLoader) -> Callable[[], bool]:
    return lambda: loader.calls == 1  # the startup load has run


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": f"Bearer {TOKEN}"}, {"Authorization": "Bearer anything"}],
    ids=["no-auth", "a-token", "any-token"],
)
def test_without_a_token_mutating_routes_are_not_mounted(fresh: Path, headers: dict) -> None:
    loader = CountingLoader()
    app = create_app(_fresh_settings(fresh), configure_logs=False, loader=loader, probe=None)
    with live_server(app) as base:
        wait_until(_started(loader))
        answers = [
            httpx.post(f"{base}/v1/sync/runs", json=RUN, headers=headers),
            httpx.delete(f"{base}/v1/sync/runs/0123abcd", headers=headers),
            httpx.get(f"{base}/v1/sync/runs/0123abcd", headers=headers),
            httpx.post(f"{base}/admin/reload", headers=headers),
        ]
        assert httpx.post(f"{base}/v1/forecast", json={"series_ids": ["a/b"]}).status_code == 503
    for answer in answers:
        assert answer.status_code in (404, 405), (answer.request.url, answer.text)
        assert answer.json()["detail"] in ("Not Found", "Method Not Allowed"), answer.text
    assert loader.calls == 1  # no reload ran
    assert _nothing_started(fresh)


def test_with_a_token_mutating_routes_exist_and_need_it(fresh: Path) -> None:
    loader = CountingLoader()
    settings = _fresh_settings(fresh, api_token=TOKEN)
    app = create_app(settings, configure_logs=False, loader=loader, probe=None)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with live_server(app) as base:
        wait_until(_started(loader))
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = httpx.post(f"{base}/v1/sync/runs", json=RUN, headers=headers)
            assert refused.status_code == 401, refused.text
            assert httpx.post(f"{base}/admin/reload", headers=headers).status_code == 401
            cancel = httpx.delete(f"{base}/v1/sync/runs/0123abcd", headers=headers)
            assert cancel.status_code == 401
        assert loader.calls == 1
        assert _nothing_started(fresh)

        bad = httpx.post(f"{base}/v1/sync/runs", json={**RUN, "target": "nope"}, headers=auth)
        assert bad.status_code == 422, bad.text
        assert _nothing_started(fresh)
        started = httpx.post(f"{base}/v1/sync/runs", json=RUN, headers=auth)
        assert started.status_code == 202, started.text
        url = f"{base}/v1/sync/runs/{started.json()['run_id']}"
        wait_until(lambda: httpx.get(url).json()["state"] == "finished", timeout=30)
        reload = httpx.post(f"{base}/admin/reload", headers=auth, timeout=60)
        assert reload.status_code == 503  # reached: the registry has no champion
        assert "reload failed" in reload.json()["detail"]
    assert loader.calls == 2
    copied = fresh / "places" / "replica" / "seg00" / "data.bin"
    assert copied.read_bytes() == b"x" * 1000


def test_dev_mode_mounts_mutating_routes_without_a_token(fresh: Path) -> None:
    loader = CountingLoader()
    settings = _fresh_settings(fresh, dev_mode=True)
    app = create_app(settings, configure_logs=False, loader=loader, probe=None)
    with live_server(app) as base:
        wait_until(_started(loader))
        assert httpx.post(f"{base}/admin/reload", timeout=60).status_code == 503
        started = httpx.post(f"{base}/v1/sync/runs", json=RUN)
        assert started.status_code == 202, started.text
        url = f"{base}/v1/sync/runs/{started.json()['run_id']}"
        wait_until(lambda: httpx.get(url).json()["state"] == "finished", timeout=30)
    assert loader.calls == 2


def test_whitespace_token_is_a_config_error(empty_registry: Path) -> None:
    with pytest.raises(ConfigError, match="api_token"):
        create_app(_settings(empty_registry, api_token="   "), configure_logs=False)
