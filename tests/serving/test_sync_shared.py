"""Sync runs shared by the workers of one server: two managers (two apps) on one data dir.

What one ``replicast serve --workers N`` worker does, another sees: a run started
on one is read on the other (progress, result), a second run on the same target
from the other is 409 naming the first, a cancel from the other stops it, and a
run whose worker died reads ``failed`` instead of ``running`` forever.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from forecasting.errors import UnknownKeyError
from forecasting.settings import Settings
from replication.progress import ProgressSnapshot
from replication.request import SegmentResult, SyncResult
from serving.http.app import create_app
from serving.http.metrics import ServiceMetrics
from serving.http.schemas import SyncRunRequest
from serving.http.services.sync_runs import RunConflictError, SyncRunManager, store_for
from serving.http.services.sync_store import RunRecord
from tests.serving.conftest import TOKEN, make_settings
from tests.serving.live import live_server, wait_until
from tests.serving.test_sync import with_endpoints

AUTH = {"Authorization": f"Bearer {TOKEN}"}


class GatedRunner:
    """A stand-in for ``run_sync``: reports progress, then waits for a release or a cancel."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.cancelled: list[str] = []

    def __call__(self, request: Any, *, settings: Settings, progress: Any, cancel: Any) -> Any:
        progress(
            ProgressSnapshot(
                run_id="exec-1",
                state="running",
                bytes_total=100,
                bytes_done=40,
                bytes_sent=40,
                files_total=2,
                files_done=1,
                segments_total=2,
                segments_done=1,
                current_segments=("seg01",),
                errors=(),
                elapsed_s=0.1,
            )
        )
        self.started.set()
        while not (cancel.is_set() or self.release.is_set()):
            time.sleep(0.01)
        result = SyncResult(
            run_id="exec-1",
            started=datetime.now(UTC),
            source=str(request.source),
            target=str(request.target),
            transport=request.transport,
            order=request.order,
            segments=[SegmentResult(name="seg00", rank=1, files=1, size=100)],
        )
        result.segments[0].state = "copied"
        result.bytes_written = 100
        if cancel.is_set():
            self.cancelled.append(str(request.target))
            result.state = "cancelled"
        return result


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    for name in ("primary", "mirror", "replica"):
        (tmp_path / "places" / name).mkdir(parents=True)
    places = tmp_path / "places"
    return with_endpoints(
        make_settings(tmp_path),
        {
            "primary": {"path": str(places / "primary")},
            "mirror": {"path": str(places / "mirror"), "role": "target"},
            "replica": {"path": str(places / "replica"), "role": "target"},
        },
    )


@pytest.fixture
def runner() -> Iterator[GatedRunner]:
    gate = GatedRunner()
    yield gate
    gate.release.set()  # no run thread outlives its test


@pytest.fixture
def pair(settings: Settings, runner: GatedRunner) -> Iterator[tuple[SyncRunManager, ...]]:
    """Two managers on one data dir: what two workers of one server have."""
    managers = tuple(SyncRunManager(settings, ServiceMetrics(), runner=runner) for _ in range(2))
    yield managers
    runner.release.set()
    for manager in managers:
        manager.shutdown()


BODY = SyncRunRequest(source="primary", target="mirror", order="alpha")


def _ended(manager: SyncRunManager, run_id: str) -> bool:
    return not manager.get(run_id).active


def test_a_run_started_on_one_worker_is_read_on_the_other(
    pair: tuple[SyncRunManager, SyncRunManager], runner: GatedRunner
) -> None:
    one, other = pair
    run = one.start(BODY)
    assert runner.started.wait(10)
    seen = other.get(run.run_id)
    assert (seen.source, seen.target, seen.worker_pid) == ("primary", "mirror", os.getpid())
    assert seen.state in ("queued", "running")
    wait_until(lambda: other.get(run.run_id).progress is not None, timeout=10)
    view = other.describe(other.get(run.run_id))
    assert view["state"] == "running"
    assert view["progress"]["bytes_done"] == 40
    assert view["progress"]["current_segments"] == ["seg01"]
    assert view["executor_run_id"] == "exec-1"
    runner.release.set()
    wait_until(lambda: _ended(other, run.run_id), timeout=10)
    done = other.describe(other.get(run.run_id))
    assert done["state"] == "finished"
    assert done["result"]["bytes_written"] == 100
    assert done["result"]["segments_copied"] == 1
    assert done["finished"] is not None


def test_a_second_run_on_the_target_from_the_other_worker_is_refused(
    pair: tuple[SyncRunManager, SyncRunManager], runner: GatedRunner
) -> None:
    one, other = pair
    run = one.start(BODY)
    with pytest.raises(RunConflictError, match=run.run_id):
        other.start(BODY)
    with pytest.raises(RunConflictError, match=run.run_id):
        one.start(BODY)
    elsewhere = other.start(SyncRunRequest(source="primary", target="replica"))  # another target
    assert elsewhere.worker_pid == os.getpid()
    runner.release.set()
    wait_until(lambda: _ended(one, run.run_id) and _ended(one, elsewhere.run_id), timeout=10)
    again = other.start(BODY)  # the target is free once the run has ended
    wait_until(lambda: _ended(one, again.run_id), timeout=10)


def test_a_cancel_from_the_other_worker_stops_the_run(
    pair: tuple[SyncRunManager, SyncRunManager], runner: GatedRunner
) -> None:
    one, other = pair
    run = one.start(BODY)
    assert runner.started.wait(10)
    asked = other.cancel(run.run_id)
    assert asked.state == "cancelling"
    assert one.get(run.run_id).state in ("cancelling", "cancelled")
    wait_until(lambda: _ended(other, run.run_id), timeout=10)  # picked up by the owner's poll
    assert other.get(run.run_id).state == "cancelled"
    assert runner.cancelled == [one.plan(BODY)[1]]
    assert other.cancel(run.run_id).state == "cancelled"  # an ended run is left as it is


def test_concurrent_starts_on_two_workers_claim_the_target_once(
    pair: tuple[SyncRunManager, SyncRunManager], runner: GatedRunner
) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt(manager: SyncRunManager) -> None:
        barrier.wait()
        try:
            outcomes.append(manager.start(BODY).run_id)
        except RunConflictError:
            outcomes.append("409")

    threads = [threading.Thread(target=attempt, args=(pair[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes).count("409") == 7, outcomes


def test_a_run_whose_worker_died_reads_failed_and_frees_the_target(
    pair: tuple[SyncRunManager, SyncRunManager], settings: Settings
) -> None:
    one, other = pair
    store = store_for(settings)
    _, key = one.plan(BODY)
    stamp = datetime.now(UTC)
    orphan = RunRecord(
        run_id="deadbeef00000001",
        source="primary",
        target="mirror",
        target_key=key,
        request=BODY.model_dump(mode="json"),
        state="queued",
        cancel_requested=False,
        worker_pid=999_999,
        created=stamp,
        updated=stamp,
    )
    lock = store.hold(orphan.run_id)
    assert store.claim(orphan, lambda r: True, lambda r: True, lambda r: "") is None
    store.mark_running(orphan.run_id)
    with pytest.raises(RunConflictError, match=orphan.run_id):
        other.start(BODY)  # its worker holds the lock: alive
    lock.release()  # what the kernel does when the worker process dies
    seen = other.get(orphan.run_id)
    assert seen.state == "failed"
    assert "worker exited" in (seen.error or "")
    assert "pid 999999" in other.describe(seen)["errors"][-1]
    # a stale claim does not hold the target
    store.claim(
        replace(orphan, run_id="deadbeef00000002"),
        lambda r: False,
        lambda r: True,
        lambda r: "",
    )  # no lock taken at all: like a worker killed between claim and thread start
    fresh = one.start(BODY)
    assert store.get("deadbeef00000002").state == "failed"
    assert fresh.state == "queued"


def test_unknown_and_forgotten_runs_are_unknown_on_every_worker(
    settings: Settings, runner: GatedRunner
) -> None:
    runner.release.set()
    one = SyncRunManager(settings, ServiceMetrics(), runner=runner, keep=2)
    other = SyncRunManager(settings, ServiceMetrics(), runner=runner, keep=2)
    ids = []
    for _ in range(4):
        run = one.start(BODY)
        wait_until(lambda run=run: _ended(other, run.run_id), timeout=10)
        ids.append(run.run_id)
    for manager in (one, other):
        with pytest.raises(UnknownKeyError, match="last 2 runs are kept"):
            manager.get(ids[0])
        with pytest.raises(UnknownKeyError):
            manager.get("0123abcd")
        assert manager.get(ids[-1]).state == "finished"


def test_two_apps_on_one_data_dir_answer_for_each_others_runs(
    tmp_path: Path, blank_mlflow_db: Path
) -> None:
    """Through real uvicorns and the real executor: start on A, read, 409 and cancel on B."""
    (tmp_path / "var").mkdir()
    shutil.copyfile(blank_mlflow_db, tmp_path / "var" / "mlflow.db")  # no schema migration
    places = tmp_path / "places"
    for i in range(4):
        (places / "bulk" / f"seg{i:02d}").mkdir(parents=True)
        (places / "bulk" / f"seg{i:02d}" / "data.bin").write_bytes(os.urandom(300_000))
    (places / "mirror").mkdir()
    settings = with_endpoints(
        make_settings(tmp_path),
        {
            "bulk": {"path": str(places / "bulk")},
            "mirror": {"path": str(places / "mirror"), "role": "target"},
        },
    )
    body = {"source": "bulk", "target": "mirror", "bwlimit": 100_000, "order": "alpha"}
    first_app = create_app(settings, configure_logs=False)
    second_app = create_app(settings, configure_logs=False)
    with live_server(first_app) as first, live_server(second_app) as second:
        started = httpx.post(f"{first}/v1/sync/runs", json=body, headers=AUTH)
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        read = httpx.get(f"{second}/v1/sync/runs/{run_id}")
        assert read.status_code == 200, read.text
        assert read.json()["state"] in ("queued", "running")
        refused = httpx.post(f"{second}/v1/sync/runs", json=body, headers=AUTH)
        assert refused.status_code == 409, refused.text
        assert run_id in refused.json()["detail"]
        wait_until(
            lambda: (
                (httpx.get(f"{second}/v1/sync/runs/{run_id}").json()["progress"] or {}).get(
                    "bytes_done", 0
                )
                > 0
            ),
            timeout=30,
        )
        cancel = httpx.delete(f"{second}/v1/sync/runs/{run_id}", headers=AUTH)
        assert cancel.status_code == 202, cancel.text
        assert cancel.json()["state"] == "cancelling"

        def state() -> str:
            return httpx.get(f"{first}/v1/sync/runs/{run_id}").json()["state"]

        wait_until(lambda: state() == "cancelled", timeout=30)
        assert httpx.get(f"{second}/v1/sync/runs/{run_id}").json()["state"] == "cancelled"
