"""`replicast serve` as a real process: serves, then drains and exits cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.serving.conftest import TOKEN, Registry
from tests.serving.live import free_port, wait_until

BODY = {"target": "qps_total", "series_ids": ["orders/us-east"], "horizon": 2}


def _start(registry: Registry, tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """``replicast serve ARGS`` on a free loopback port (output in tmp_path/serve.log)."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        REPLICAST_DATA_DIR=str(registry.settings.data_dir),
        REPLICAST_MLFLOW_TRACKING_URI=registry.settings.tracking_uri,
        REPLICAST_SERVE__API_TOKEN=TOKEN,
        REPLICAST_FLEET__CLUSTERS='[{"name": "orders", "primary_region": "us-east", '
        '"regions": ["us-east", "eu-west"]}]',
    )
    replicast = str(Path(sys.executable).parent / "replicast")
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [replicast, "serve", "--port", str(port), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            start_new_session=True,
        )
    return proc, f"http://127.0.0.1:{port}"


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_serve_answers_then_sigterm_finishes_in_flight_requests(
    registry: Registry, tmp_path: Path
) -> None:
    proc, base = _start(registry, tmp_path)
    statuses: list[int] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=base) as http:
            while not stop.is_set():
                try:
                    statuses.append(http.post("/v1/forecast", json=BODY).status_code)
                except httpx.ConnectError:
                    return  # the listener is closed: the server is going away
                except httpx.HTTPError:
                    statuses.append(-1)  # a request lost in flight
                    return

    try:
        wait_until(lambda: _ready(base), timeout=90, every=0.2)
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: len(statuses) > 50, timeout=30)
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(30)
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        _stop(proc)
    output = (tmp_path / "serve.log").read_text()
    assert code in (0, -signal.SIGTERM), output[-3000:]
    assert "Application shutdown complete" in output
    assert "drained" in output
    assert statuses and set(statuses) == {200}, set(statuses)


def _forecast_requests(metrics_text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text.splitlines()
        if line.startswith("replicast_http_requests_total{")
        and 'route="/v1/forecast"' in line
        and 'status="200"' in line
    )


def test_metrics_of_several_workers_add_up_on_every_scrape(
    registry: Registry, tmp_path: Path
) -> None:
    proc, base = _start(registry, tmp_path, "--workers", "2")
    try:
        # readiness is per worker: wait until a run of probes (new connections) all pass
        wait_until(lambda: all(_ready(base) for _ in range(10)), timeout=120, every=0.2)
        sent = 40
        for _ in range(sent):  # a new connection each: the two workers share them
            assert httpx.post(f"{base}/v1/forecast", json=BODY, timeout=30).status_code == 200
        # each scrape lands on either worker, and each gives the total of both
        seen = {_forecast_requests(httpx.get(f"{base}/metrics").text) for _ in range(12)}
        assert seen == {float(sent)}, seen
    finally:
        _stop(proc)
