"""`replicast serve` as a real process: serves, then drains and exits cleanly on SIGTERM.

With ``--workers 2``: metrics add up over the workers, and sync runs are one store
for all of them (any worker answers for any run; one run per target).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import TOKEN, Registry
from tests.serving.live import free_port, wait_until

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY = {"target": "qps_total", "series_ids": ["orders/us-east"], "horizon": 2}


def _start(registry: Registry, tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """``replicast serve ARGS`` on the registry's settings (output in tmp_path/serve.log)."""
    return _serve(
        tmp_path,
        {
            "REPLICAST_DATA_DIR": str(registry.settings.data_dir),
            "REPLICAST_MLFLOW_TRACKING_URI": registry.settings.tracking_uri,
        },
        *args,
    )


def _serve(
    tmp_path: Path, settings_env: dict[str, str], *args: str
) -> tuple[subprocess.Popen, str]:
    """``replicast serve ARGS`` on a free loopback port (output in tmp_path/serve.log)."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        REPLICAST_SERVE__API_TOKEN=TOKEN,
        REPLICAST_FLEET__CLUSTERS='[{"name": "orders", "primary_region": "us-east", '
        '"regions": ["us-east", "eu-west"]}]',
        **settings_env,
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


def _sync_server(tmp_path: Path, blank_mlflow_db: Path) -> tuple[subprocess.Popen, str, Path]:
    """``serve --workers 2`` with sync endpoints ``bulk``/``small`` -> ``mirror``/``copy``.

    Returns the server, its URL and the endpoints' parent directory.
    """
    places = tmp_path / "places"
    for name, segments, size in (("bulk", 4, 400_000), ("small", 1, 1_000)):
        for i in range(segments):
            (places / name / f"seg{i:02d}").mkdir(parents=True)
            (places / name / f"seg{i:02d}" / "data.bin").write_bytes(os.urandom(size))
    for name in ("mirror", "copy"):
        (places / name).mkdir()
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    shutil.copyfile(blank_mlflow_db, data_dir / "mlflow.db")
    endpoints = {
        "bulk": {"path": str(places / "bulk")},
        "small": {"path": str(places / "small")},
        "mirror": {"path": str(places / "mirror"), "role": "target"},
        "copy": {"path": str(places / "copy"), "role": "target"},
    }
    proc, base = _serve(
        tmp_path,
        {
            "REPLICAST_DATA_DIR": str(data_dir),
            "REPLICAST_MLFLOW_TRACKING_URI": f"sqlite:///{data_dir / 'mlflow.db'}",
            "REPLICAST_SYNC__ENDPOINTS": json.dumps(endpoints),
        },
        "--workers",
        "2",
    )
    return proc, base, places


def _empty(directory: Path) -> None:
    shutil.rmtree(directory)
    directory.mkdir()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _poll_until_ended(base: str, run_id: str, timeout: float = 60) -> tuple[dict, int]:
    """GET the run on a new connection each time (either worker answers) until it ends."""
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        response = httpx.get(f"{base}/v1/sync/runs/{run_id}", timeout=10)
        polls += 1
        assert response.status_code == 200, (polls, response.status_code, response.text)
        state = response.json()
        if state["state"] not in ("queued", "running", "cancelling"):
            return state, polls
        assert time.monotonic() < deadline, f"run {run_id} still {state['state']}"
        time.sleep(0.02)


def _post_at_once(base: str, body: dict) -> list[httpx.Response]:
    """Two POST /v1/sync/runs released together, each on its own connection."""
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def post() -> None:
        barrier.wait()
        answers.append(httpx.post(f"{base}/v1/sync/runs", json=body, headers=AUTH, timeout=30))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


@pytest.mark.slow
def test_sync_runs_are_one_store_for_all_workers(tmp_path: Path, blank_mlflow_db: Path) -> None:
    proc, base, places = _sync_server(tmp_path, blank_mlflow_db)
    small = {"source": "small", "target": "copy", "order": "alpha"}
    bulk = {"source": "bulk", "target": "mirror", "order": "alpha", "bwlimit": 400_000}
    try:
        wait_until(lambda: all(_healthy(base) for _ in range(10)), timeout=120, every=0.2)
        # short runs until both workers have run one: both take connections
        owners: set[int] = set()
        for _ in range(20):
            started = httpx.post(f"{base}/v1/sync/runs", json=small, headers=AUTH, timeout=30)
            assert started.status_code == 202, started.text
            owners.add(started.json()["worker_pid"])
            state, _ = _poll_until_ended(base, started.json()["run_id"])
            assert state["state"] == "finished", state
            if len(owners) == 2:
                break
        assert len(owners) == 2 and proc.pid not in owners, owners

        # two POSTs at once for one target: exactly one 202, the 409 names its run
        for _ in range(3):
            _empty(places / "mirror")  # every round has all of bulk to copy
            answers = _post_at_once(base, bulk)
            codes = sorted(a.status_code for a in answers)
            assert codes == [202, 409], [a.text for a in answers]
            (accepted,) = (a for a in answers if a.status_code == 202)
            (refused,) = (a for a in answers if a.status_code == 409)
            run_id = accepted.json()["run_id"]
            assert run_id in refused.json()["detail"]
            # cancelled from whichever worker takes the DELETE
            cancel = httpx.delete(f"{base}/v1/sync/runs/{run_id}", headers=AUTH, timeout=30)
            assert cancel.status_code == 202, cancel.text
            assert cancel.json()["state"] in ("cancelling", "cancelled")
            state, _ = _poll_until_ended(base, run_id)
            assert state["state"] == "cancelled", state

        # a run of a few seconds, polled from both workers: never a 404, ends finished
        _empty(places / "mirror")
        started = httpx.post(f"{base}/v1/sync/runs", json=bulk, headers=AUTH, timeout=30)
        assert started.status_code == 202, started.text
        state, polls = _poll_until_ended(base, started.json()["run_id"])
        assert state["state"] == "finished", state
        assert state["result"]["bytes_written"] == 1_600_000
        assert polls > 20
    finally:
        _stop(proc)


@pytest.mark.slow
def test_a_run_whose_worker_is_killed_reads_failed(tmp_path: Path, blank_mlflow_db: Path) -> None:
    proc, base, _ = _sync_server(tmp_path, blank_mlflow_db)
    bulk = {"source": "bulk", "target": "mirror", "order": "alpha", "bwlimit": 100_000}
    try:
        wait_until(lambda: all(_healthy(base) for _ in range(10)), timeout=120, every=0.2)
        started = httpx.post(f"{base}/v1/sync/runs", json=bulk, headers=AUTH, timeout=30)
        assert started.status_code == 202, started.text
        run_id, owner = started.json()["run_id"], started.json()["worker_pid"]
        os.kill(owner, signal.SIGKILL)
        # the other worker (or the one the supervisor starts instead) answers
        state, _ = _poll_until_ended(base, run_id)
        assert state["state"] == "failed", state
        assert any("worker exited" in e and str(owner) in e for e in state["errors"]), state
        again = httpx.post(f"{base}/v1/sync/runs", json={**bulk, "dry_run": True}, headers=AUTH)
        assert again.status_code == 202, again.text  # the dead run does not hold the target
        state, _ = _poll_until_ended(base, again.json()["run_id"])
        assert state["state"] == "dry-run", state
    finally:
        _stop(proc)
