"""Sync runs over HTTP through a real uvicorn and the real executor, between named endpoints.

Requests name endpoints of the settings (``sync.endpoints``); every hostile body
(a path, a host, ``..``, an absolute glob, ``delete`` on a target that does not
allow it...) is a 4xx with the reason, and nothing on disk changes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from forecasting.settings import Settings
from serving.http.app import create_app
from tests.serving.conftest import TOKEN, make_settings
from tests.serving.live import live_server, wait_until

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def with_endpoints(settings: Settings, endpoints: dict[str, dict[str, object]]) -> Settings:
    """``settings`` plus ``sync.endpoints``, validated as a settings file would be."""
    return Settings(**{**settings.model_dump(), "sync": {"endpoints": endpoints}})


def tree_digest(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under ``root``: (mode, mtime ns, sha256 of a file's bytes)."""
    out: dict[str, tuple[int, int, str]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(dirpath, name)
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            out[str(path.relative_to(root))] = (st.st_mode, st.st_mtime_ns, digest)
    return out


def _segments(root: Path, segments: int, size: int) -> Path:
    for i in range(segments):
        seg = root / f"seg{i:02d}"
        seg.mkdir(parents=True, exist_ok=True)
        (seg / "data.bin").write_bytes(os.urandom(size))
    return root


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sync-endpoints")
    _segments(root / "primary", segments=3, size=50_000)
    _segments(root / "bulk", segments=4, size=400_000)
    for name in ("replica", "mirror", "slow"):
        (root / name).mkdir()
    (root / "replica" / "keep.txt").write_text("a file only the target has\n")
    return root


@pytest.fixture(scope="module")
def base(empty_registry: Path, roots: Path) -> Iterator[str]:
    settings = with_endpoints(
        make_settings(empty_registry),
        {
            "primary": {"path": str(roots / "primary")},
            "bulk": {"path": str(roots / "bulk")},
            "replica": {"path": str(roots / "replica"), "role": "target", "link": "eu-west"},
            "mirror": {"path": str(roots / "mirror"), "role": "target", "allow_delete": True},
            "slow": {"path": str(roots / "slow"), "role": "both"},
            "remote": {"path": "replica-eu.invalid:/srv/db/segments", "role": "target"},
        },
    )
    app = create_app(settings, configure_logs=False)
    with live_server(app) as url:
        yield url


def _state(base: str, run_id: str) -> dict:
    response = httpx.get(f"{base}/v1/sync/runs/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _finished(base: str, run_id: str) -> bool:
    return _state(base, run_id)["state"] not in ("queued", "running", "cancelling")


def _run(base: str, body: dict) -> dict:
    response = httpx.post(f"{base}/v1/sync/runs", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    assert response.headers["location"] == f"/v1/sync/runs/{run_id}"
    wait_until(lambda: _finished(base, run_id), timeout=60)
    return _state(base, run_id)


def test_run_between_endpoints_copies_everything(base: str, roots: Path) -> None:
    state = _run(base, {"source": "primary", "target": "replica", "order": "alpha"})
    assert state["state"] == "finished", state
    assert (state["source"], state["target"]) == ("primary", "replica")
    assert state["result"]["segments_copied"] == 3
    assert state["result"]["bytes_written"] == 150_000
    for seg in ("seg00", "seg01", "seg02"):
        copied = (roots / "replica" / seg / "data.bin").read_bytes()
        assert copied == (roots / "primary" / seg / "data.bin").read_bytes()
    assert (roots / "replica" / "keep.txt").exists()  # no delete without allow_delete
    metrics = httpx.get(f"{base}/metrics").text
    assert 'replicast_sync_runs_total{state="finished"}' in metrics
    assert 'replicast_sync_bytes_total{kind="written"} 150000.0' in metrics


def test_segment_glob_narrows_the_run(base: str, roots: Path) -> None:
    state = _run(
        base,
        {"source": "primary", "target": "slow", "segment_pattern": "seg0[1]", "order": "alpha"},
    )
    assert state["state"] == "finished", state
    assert state["segment_pattern"] == "seg0[1]"
    assert sorted(p.name for p in (roots / "slow").iterdir()) == ["seg01"]


def test_delete_on_an_allow_delete_target_removes_extraneous_files(base: str, roots: Path) -> None:
    stray = roots / "mirror" / "seg00" / "stale.bin"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"gone soon")
    state = _run(base, {"source": "primary", "target": "mirror", "delete": True})
    assert state["state"] == "finished", state
    assert not stray.exists()
    assert (roots / "mirror" / "seg00" / "data.bin").read_bytes() == (
        roots / "primary" / "seg00" / "data.bin"
    ).read_bytes()


def test_second_run_on_same_target_is_409_then_cancel(base: str) -> None:
    body = {"source": "bulk", "target": "mirror", "bwlimit": 100_000, "order": "alpha"}
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
            f"{base}/v1/sync/runs", json={"source": "primary", "target": "mirror"}, headers=headers
        )
    else:
        response = httpx.delete(f"{base}/v1/sync/runs/abc123", headers=headers)
    assert response.status_code == 401


OK = {"source": "primary", "target": "mirror"}
HOSTILE = [
    pytest.param({**OK, "target": "nowhere"}, "nowhere", id="unknown-target"),
    pytest.param({**OK, "source": "nosuch"}, "known endpoints", id="unknown-source"),
    pytest.param({**OK, "source": "/etc"}, "not an endpoint name", id="raw-source-path"),
    pytest.param({**OK, "target": "{roots}/mirror"}, "not an endpoint name", id="raw-target"),
    pytest.param({**OK, "target": "localhost:/tmp/x"}, "not an endpoint name", id="host-path"),
    pytest.param({**OK, "target": "evil@attacker:/"}, "not an endpoint name", id="user-host"),
    pytest.param({**OK, "target": "-oProxyCommand=x"}, "not an endpoint name", id="ssh-option"),
    pytest.param({**OK, "target": "../mirror"}, "not an endpoint name", id="dotdot-name"),
    pytest.param({**OK, "target": "mirror\u0000"}, "not an endpoint name", id="nul-name"),
    pytest.param({**OK, "segment_pattern": "../replica"}, "'..'", id="dotdot-glob"),
    pytest.param({**OK, "segment_pattern": "seg00/../../x"}, "'..'", id="inner-dotdot"),
    pytest.param({**OK, "segment_pattern": "/etc/*"}, "absolute", id="absolute-glob"),
    pytest.param({**OK, "segment_pattern": "{roots}/bulk/*"}, "absolute", id="absolute-root"),
    pytest.param({**OK, "segment_pattern": "~root/*"}, "absolute", id="home-glob"),
    pytest.param({**OK, "segment_pattern": "seg\u000000"}, "control", id="nul-glob"),
    pytest.param({**OK, "segment_pattern": "..\\x"}, "backslash", id="backslash-glob"),
    pytest.param({**OK, "segment_pattern": "."}, "'.' components", id="dot-glob"),
    pytest.param({**OK, "segment_pattern": "./"}, "'.' components", id="dot-slash-glob"),
    pytest.param({**OK, "segment_pattern": "seg//x"}, "empty", id="empty-component"),
    pytest.param({**OK, "segment_pattern": "a**b"}, "'**' inside", id="inner-starstar"),
    pytest.param({**OK, "replica": "mars"}, "unknown region 'mars'", id="unknown-replica"),
    pytest.param({**OK, "target": "replica", "delete": True}, "allow_delete", id="delete"),
    pytest.param(
        {**OK, "target": "remote", "transport": "rsync", "delete": True},
        "allow_delete",
        id="delete-remote",
    ),
    pytest.param({**OK, "target": "remote"}, "rsync", id="remote-by-delta"),
    pytest.param({**OK, "source": "replica"}, "role", id="target-as-source"),
    pytest.param({**OK, "target": "primary"}, "role", id="source-as-target"),
    pytest.param({**OK, "source": "slow", "target": "slow"}, "same endpoint", id="same"),
    pytest.param({**OK, "target": "replica", "replica": "cn-north"}, "replica", id="link"),
    pytest.param({**OK, "rsh": "sh -c 'rm -rf /'"}, "rsh", id="rsh"),
    pytest.param({**OK, "state_dir": "/"}, "state_dir", id="state-dir"),
    pytest.param({**OK, "budget_bytes": 0}, "budget_bytes", id="budget"),
    pytest.param({**OK, "transport": "ftp"}, "transport", id="transport"),
]


@pytest.mark.parametrize(("body", "reason"), HOSTILE)
def test_hostile_requests_are_4xx_and_touch_nothing(
    base: str, roots: Path, body: dict, reason: str
) -> None:
    filled = {k: v.format(roots=roots) if isinstance(v, str) else v for k, v in body.items()}
    before = tree_digest(roots)
    response = httpx.post(f"{base}/v1/sync/runs", json=filled, headers=AUTH)
    assert response.status_code == 422, response.text
    assert reason in response.text
    assert "Traceback" not in response.text
    assert tree_digest(roots) == before


def test_unknown_endpoint_answer_lists_the_known_names(base: str) -> None:
    response = httpx.post(f"{base}/v1/sync/runs", json={**OK, "target": "nope"}, headers=AUTH)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("target: unknown sync endpoint 'nope'")
    for name in ("primary", "replica", "mirror", "remote"):
        assert repr(name) in detail


def test_unknown_run_is_404(base: str) -> None:
    assert httpx.get(f"{base}/v1/sync/runs/0123abcd").status_code == 404
    assert httpx.delete(f"{base}/v1/sync/runs/0123abcd", headers=AUTH).status_code == 404


def test_a_host_path_target_is_reached_only_as_configured(empty_registry: Path) -> None:
    """The executor gets the endpoint's host:path, rsync, and the endpoint's link as replica."""
    from serving.http.metrics import ServiceMetrics
    from serving.http.schemas import SyncRunRequest
    from serving.http.services.sync_runs import SyncRunManager

    source = empty_registry / "outbox"
    source.mkdir(exist_ok=True)
    settings = with_endpoints(
        make_settings(empty_registry),
        {
            "outbox": {"path": str(source)},
            "eu": {"path": "sync@replica-eu:/srv/db/segments", "role": "target", "link": "eu-west"},
        },
    )
    manager = SyncRunManager(settings, ServiceMetrics())
    body = SyncRunRequest(source="outbox", target="eu", transport="rsync", segment_pattern="o-*")
    request, key = manager.plan(body)
    assert (request.source, request.target, key) == (
        source.resolve(),
        "sync@replica-eu:/srv/db/segments",
        "sync@replica-eu:/srv/db/segments",
    )
    assert (request.transport, request.replica, request.delete, request.rsh) == (
        "rsync",
        "eu-west",
        False,
        None,
    )
    assert request.segment_pattern == "o-*"


def test_with_no_endpoints_every_run_is_refused_with_the_way_out(empty_registry: Path) -> None:
    from forecasting.errors import DataValidationError
    from serving.http.metrics import ServiceMetrics
    from serving.http.schemas import SyncRunRequest
    from serving.http.services.sync_runs import SyncRunManager

    manager = SyncRunManager(make_settings(empty_registry), ServiceMetrics())
    with pytest.raises(DataValidationError, match=r"known endpoints: none: configure"):
        manager.plan(SyncRunRequest(source="a", target="b"))
