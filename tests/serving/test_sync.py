"""Sync runs over HTTP through a real uvicorn and the real executor on temp directories."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving.http.app import create_app
from tests.serving.conftest import TOKEN, Registry
from tests.serving.live import live_server, wait_until

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sync-roots")


@pytest.fixture(scope="module")
def base(registry: Registry, roots: Path) -> Iterator[str]:
    serve = registry.settings.serve.model_copy(update={"sync_roots": [roots]})
    settings = registry.settings.model_copy(update={"serve": serve})
    app = create_app(settings, configure_logs=False)
    with live_server(app) as url:
        yield url


def _source(root: Path, segments: int, size: int) -> Path:
    src = root / "src"
    for i in range(segments):
        seg = src / f"seg{i:02d}"
        seg.mkdir(parents=True, exist_ok=True)
        (seg / "data.bin").write_bytes(os.urandom(size))
    return src


def _state(base: str, run_id: str) -> dict:
    response = httpx.get(f"{base}/v1/sync/runs/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _finished(base: str, run_id: str) -> bool:
    return _state(base, run_id)["state"] not in ("queued", "running", "cancelling")


def test_run_copies_everything_and_reports_bytes(base: str, roots: Path) -> None:
    src = _source(roots / "happy", segments=3, size=50_000)
    dst = roots / "happy" / "dst"
    response = httpx.post(
        f"{base}/v1/sync/runs",
        json={"source": str(src), "target": str(dst), "order": "alpha"},
        headers=AUTH,
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    assert response.headers["location"] == f"/v1/sync/runs/{run_id}"
    wait_until(lambda: _finished(base, run_id), timeout=60)
    state = _state(base, run_id)
    assert state["state"] == "finished", state
    assert state["result"]["segments_copied"] == 3
    assert state["result"]["bytes_written"] == 150_000
    for seg in ("seg00", "seg01", "seg02"):
        assert (dst / seg / "data.bin").read_bytes() == (src / seg / "data.bin").read_bytes()
    metrics = httpx.get(f"{base}/metrics").text
    assert 'replicast_sync_runs_total{state="finished"}' in metrics
    assert 'replicast_sync_bytes_total{kind="written"} 150000.0' in metrics


def test_second_run_on_same_target_is_409_then_cancel(base: str, roots: Path) -> None:
    src = _source(roots / "slow", segments=4, size=400_000)
    dst = roots / "slow" / "dst"
    body = {"source": str(src), "target": str(dst), "bwlimit": 100_000, "order": "alpha"}
    first = httpx.post(f"{base}/v1/sync/runs", json=body, headers=AUTH)
    assert first.status_code == 202, first.text
    run_id = first.json()["run_id"]
    second = httpx.post(f"{base}/v1/sync/runs", json=body, headers=AUTH)
    assert second.status_code == 409
    assert run_id in second.json()["detail"]
    cancel = httpx.delete(f"{base}/v1/sync/runs/{run_id}", headers=AUTH)
    assert cancel.status_code == 202
    assert cancel.json()["state"] in ("cancelling", "cancelled")
    wait_until(lambda: _finished(base, run_id), timeout=60)
    assert _state(base, run_id)["state"] == "cancelled"
    # the target is free again
    third = httpx.post(f"{base}/v1/sync/runs", json={**body, "dry_run": True}, headers=AUTH)
    assert third.status_code == 202, third.text
    wait_until(lambda: _finished(base, third.json()["run_id"]), timeout=60)


@pytest.mark.parametrize(
    ("method", "headers"),
    [("post", {}), ("post", {"Authorization": "Bearer nope"}), ("delete", {})],
)
def test_mutating_sync_routes_need_the_token(base: str, method: str, headers: dict) -> None:
    if method == "post":
        response = httpx.post(
            f"{base}/v1/sync/runs", json={"source": "/x", "target": "/y"}, headers=headers
        )
    else:
        response = httpx.delete(f"{base}/v1/sync/runs/abc123", headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "/etc", "target": "{roots}/t"}, "source"),
        ({"source": "{roots}", "target": "/tmp/elsewhere"}, "target"),
        ({"source": "{roots}", "target": "{roots}/inside"}, "overlaps"),
        ({"source": "{roots}/missing", "target": "{roots}/t"}, "not a directory"),
        ({"source": "{roots}", "target": "{roots}/t", "budget_bytes": 0}, "budget_bytes"),
        ({"source": "{roots}", "target": "{roots}/t", "transport": "ftp"}, "transport"),
    ],
)
def test_bad_sync_requests_are_422(base: str, roots: Path, body: dict, field: str) -> None:
    filled = {k: v.format(roots=roots) if isinstance(v, str) else v for k, v in body.items()}
    response = httpx.post(f"{base}/v1/sync/runs", json=filled, headers=AUTH)
    assert response.status_code == 422, response.text
    assert field in response.text


def test_unknown_run_is_404(base: str) -> None:
    assert httpx.get(f"{base}/v1/sync/runs/0123abcd").status_code == 404
    assert httpx.delete(f"{base}/v1/sync/runs/0123abcd", headers=AUTH).status_code == 404
