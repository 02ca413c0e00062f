"""No password is ever echoed: a real PostgreSQL MLflow store whose URI carries a password,
``replicast train``/``report``/``forecast``/``serve`` as real processes, every route hit while
the store answers and while it does not; the password never appears in a response body,
a log line (the processes' output, caplog) or a ``job_runs`` row."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from forecasting.lake import Lake
from forecasting.settings import Settings, get_settings
from pipelines.ingest import ingest_frame
from pipelines.load_series import read_series
from pipelines.simulate import simulate_fleet
from tests.integration.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The machine's PostgreSQL (trust auth as ``postgres``); a throw-away server otherwise.
MACHINE_PG = os.environ.get("REPLICAST_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TOKEN = "secrets-test-token-0123456789"
REPLICAST = str(Path(sys.executable).parent / "replicast")


@dataclass(frozen=True)
class Store:
    """A role with a password, its database, and the MLflow URI carrying the password."""

    password: str
    uri: str
    closed_uri: str  # same credentials, a port nobody listens on
    admin_dsn: str
    database: str


def _admin_dsn(request: pytest.FixtureRequest) -> str:
    try:
        with psycopg.connect(MACHINE_PG, connect_timeout=3):
            return MACHINE_PG
    except psycopg.Error:
        from tests.integration.servers import PgPair

        pair: PgPair = request.getfixturevalue("pg_pair")  # skips, or fails in CI
        return pair.primary.dsn()


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    dsn = _admin_dsn(request)
    suffix = uuid.uuid4().hex[:8]
    role, db, password = f"rc_secret_{suffix}", f"rc_mlflow_{suffix}", f"Pw-{suffix}-s3cr3t"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        admin.execute(f"CREATE DATABASE {db} OWNER {role}")
    host = psycopg.conninfo.conninfo_to_dict(dsn)
    where = f"{host.get('host', '127.0.0.1')}:{host.get('port', 5432)}"
    try:
        yield Store(
            password=password,
            uri=f"postgresql+psycopg://{role}:{password}@{where}/{db}",
            closed_uri=f"postgresql+psycopg://{role}:{password}@127.0.0.1:{free_port()}/{db}",
            admin_dsn=dsn,
            database=db,
        )
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def _env(tmp_path: Path, uri: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        REPLICAST_DATA_DIR=str(tmp_path / "var"),
        REPLICAST_MLFLOW_TRACKING_URI=uri,
        REPLICAST_FORECAST__HORIZON="12",
        REPLICAST_SERVE__API_TOKEN=TOKEN,
        REPLICAST_SERVE__REFRESH_SECONDS="1",
    )
    return env


def _cli(tmp_path: Path, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REPLICAST, *args],
        env=_env(tmp_path, uri),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


class Service:
    """``replicast serve`` on a free port, its output in a file."""

    def __init__(self, tmp_path: Path, uri: str, name: str) -> None:
        self.log = tmp_path / f"{name}.log"
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [REPLICAST, "serve", "--port", str(port), "--log-level", "DEBUG"],
                env=_env(tmp_path, uri),
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait(self, check, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"service not as expected: {self.log.read_text()[-3000:]}")

    def stop(self) -> str:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.log.read_text()


def _hit_every_route(base: str, series_id: str) -> list[httpx.Response]:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    known = {"target": "qps_total", "series_ids": [series_id], "horizon": 4}
    calls = [
        ("GET", "/healthz", None, {}),
        ("GET", "/readyz", None, {}),
        ("GET", "/metrics", None, {}),
        ("GET", "/openapi.json", None, {}),
        ("POST", "/v1/forecast", known, {}),
        ("POST", "/v1/forecast", {"target": "qps_total", "series_ids": ["nope/mars"]}, {}),
        ("POST", "/v1/forecast", {"target": "qps_total", "horizon": "many"}, {}),
        ("POST", "/v1/forecast", b"{not json", {}),
        ("GET", "/v1/priorities", None, {}),
        ("GET", "/v1/sizing", None, {}),
        ("GET", "/v1/no-such-route", None, {}),
        ("DELETE", "/healthz", None, {}),
        ("POST", "/admin/reload", None, {}),
        ("POST", "/admin/reload", None, auth),
        ("GET", "/v1/sync/runs/does-not-exist", None, auth),
        ("POST", "/v1/sync/runs", {"bad": "body"}, auth),
    ]
    out = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for method, path, body, headers in calls:
            if isinstance(body, bytes):
                kwargs = {
                    "content": body,
                    "headers": {**headers, "content-type": "application/json"},
                }
            else:
                kwargs = (
                    {"json": body, "headers": headers} if body is not None else {"headers": headers}
                )
            out.append(client.request(method, path, **kwargs))
    return out


def _in_process(settings: Settings, store: Store, series_id: str) -> list[str]:
    """The app in this process (its records reach caplog): store up, then on a closed port."""
    from serving.http.app import create_app
    from tests.serving.live import live_server, wait_until

    app = create_app(settings, configure_logs=False)
    with live_server(app) as base:
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, timeout=60)
        texts = [r.text for r in _hit_every_route(base, series_id)]
        app.state.model_cache.settings = settings.model_copy(
            update={"mlflow_tracking_uri": store.closed_uri}
        )
        texts.append(app.state.model_cache.refresh().detail)
        responses = _hit_every_route(base, series_id)
        assert responses[1].json()["degraded"].startswith("registry unreachable since ")
        texts += [r.text for r in responses]
    return texts


def _job_runs(tmp_path: Path) -> str:
    lake = Lake(tmp_path / "var" / "lake")
    frame = lake.read("job_runs")
    assert not frame.empty
    return frame.astype(str).to_csv()


def test_no_password_in_any_body_log_or_job_run(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = store.password
    monkeypatch.setenv("REPLICAST_MLFLOW_TRACKING_URI", store.uri)
    get_settings.cache_clear()
    settings = get_settings()
    lake = Lake(settings.lake_dir)
    fleet = simulate_fleet(
        settings.fleet, start="2025-01-01", days=9, seed=0, nodes_per_region=1,
        segments_per_cluster=2,
    )  # fmt: skip
    ingest_frame(fleet.node_metrics, dataset="node_metrics", source="simulated", lake=lake)
    series_id = sorted(read_series(lake, ["qps_total"])["qps_total"]["series_id"].unique())[0]
    texts: list[str] = []  # everything a user, a log reader or the lake could see

    trained = _cli(
        tmp_path, store.uri, "train", "--models", "seasonal_naive_day", "--folds", "1",
        "--no-decisions",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "registered replicast-load v1 as champion" in trained.stdout
    assert "***" in trained.stdout  # the store is named, its password masked
    texts += [trained.stdout, trained.stderr]
    for args in (("report",), ("forecast",)):
        done = _cli(tmp_path, store.uri, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        texts += [done.stdout, done.stderr]

    service = Service(tmp_path, store.uri, "serve")
    try:
        service.wait(lambda: httpx.get(f"{service.base}/readyz", timeout=5).status_code == 200)
        up = _hit_every_route(service.base, series_id)
        assert up[4].status_code == 200, up[4].text
        texts += [r.text for r in up]

        # the store stops answering (the same URI): refuse connections to its database
        with psycopg.connect(store.admin_dsn, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {store.database} ALLOW_CONNECTIONS false")
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (store.database,),
            )
        try:
            service.wait(
                lambda: (
                    httpx.get(f"{service.base}/readyz", timeout=10).json()["registry_up"] is False
                )
            )
            down = _hit_every_route(service.base, series_id)
            readiness = down[1]
            assert readiness.status_code == 200, readiness.text
            assert readiness.json()["degraded"].startswith("registry unreachable since ")
            assert down[4].status_code == 200  # the loaded model still serves
            assert down[13].status_code == 503  # the authorised reload says why it failed
            texts += [r.text for r in down]
        finally:
            with psycopg.connect(store.admin_dsn, autocommit=True) as conn:
                conn.execute(f"ALTER DATABASE {store.database} ALLOW_CONNECTIONS true")
    finally:
        texts.append(service.stop())

    texts += _in_process(settings, store, series_id)

    # a store on a closed port from the start: nothing loads, every command fails cleanly
    closed = Service(tmp_path, store.closed_uri, "serve-closed")
    try:
        closed.wait(lambda: "unreachable" in httpx.get(f"{closed.base}/readyz").json()["reason"])
        unreachable = _hit_every_route(closed.base, series_id)
        assert unreachable[1].status_code == 503
        assert unreachable[4].status_code == 503
        texts += [r.text for r in unreachable]
    finally:
        texts.append(closed.stop())
    for args in (("report",), ("forecast",), ("train", "--models", "seasonal_naive_day")):
        failed = _cli(tmp_path, store.closed_uri, *args)
        assert failed.returncode != 0
        assert "127.0.0.1" in failed.stdout + failed.stderr  # the store is named...
        texts += [failed.stdout, failed.stderr]

    rows = _job_runs(tmp_path)
    assert "failed" in rows and "ok" in rows
    texts.append(rows)
    texts += [caplog.text, *(r.getMessage() for r in caplog.records)]
    leaks = [text for text in texts if secret in text]
    assert not leaks, f"{len(leaks)} texts carry the password, e.g. {leaks[0][:2000]}"
    get_settings.cache_clear()
