"""Runners: in-process, over local processes, and on real Dask clusters (local or remote)."""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator

import pytest

from forecasting.errors import ConfigError
from pipelines.dask_runner import DaskRunner, ProcessRunner, SequentialRunner, make_runner, note


def _fit(item: tuple[int, float]) -> dict[str, float]:
    """A stand-in for a per-series fit: deterministic, CPU only, picklable."""
    seed, scale = item
    values = [math.sin(seed * k) * scale for k in range(1, 200)]
    return {"seed": seed, "mean": sum(values) / len(values), "peak": max(values)}


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"cannot fit series {x}")
    return x


def _noted(x: int) -> int:
    note(f"item {x}")
    return 2 * x


ITEMS = [(seed, 1.0 + seed / 10) for seed in range(12)]

#: Starting and stopping a LocalCluster of two worker processes takes ~10 s on a busy box.
local_cluster = pytest.mark.slow


@pytest.fixture(scope="module")
def local_runner() -> Iterator[DaskRunner]:
    """One real LocalCluster (2 worker processes) shared by this module's tests."""
    with DaskRunner(None) as runner:
        yield runner


def test_sequential_map_keeps_order_reports_progress_and_raises():
    seen: list[tuple[int, int]] = []
    with SequentialRunner() as runner:
        out = runner.map(_fit, iter(ITEMS), progress=lambda d, t: seen.append((d, t)))
        with pytest.raises(ValueError, match="series 3"):
            runner.map(_fail_on_three, range(6))
    assert [r["seed"] for r in out] == [seed for seed, _ in ITEMS]
    assert seen == [(i, len(ITEMS)) for i in range(1, len(ITEMS) + 1)]


@local_cluster
def test_local_cluster_gives_the_sequential_results_in_order(local_runner: DaskRunner):
    seen: list[tuple[int, int]] = []
    distributed = local_runner.map(_fit, ITEMS, progress=lambda d, t: seen.append((d, t)))
    assert distributed == SequentialRunner().map(_fit, ITEMS)
    assert seen[-1] == (len(ITEMS), len(ITEMS))
    assert [d for d, _ in seen] == list(range(1, len(ITEMS) + 1))


@local_cluster
def test_local_cluster_runs_on_two_worker_processes_on_loopback(local_runner: DaskRunner):
    workers = local_runner.client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)
    assert all(info["nthreads"] == 1 for info in workers.values())


@local_cluster
def test_local_cluster_raises_the_task_exception(local_runner: DaskRunner):
    with pytest.raises(ValueError, match="series 3"):
        local_runner.map(_fail_on_three, range(6))
    assert local_runner.map(_fail_on_three, [1, 2]) == [1, 2]  # still usable
    assert local_runner.map(_fail_on_three, []) == []


def test_connecting_to_a_running_scheduler_leaves_it_running():
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        with make_runner(address) as runner:
            assert isinstance(runner, DaskRunner)
            assert runner.map(_fit, ITEMS[:4]) == [_fit(i) for i in ITEMS[:4]]
        with Client(address, timeout=10) as client:  # the cluster outlived the runner
            assert client.submit(_fail_on_three, 5).result() == 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_no_scheduler_at_the_address_is_a_config_error_naming_it():
    address = f"tcp://127.0.0.1:{_free_port()}"
    runner = DaskRunner(address, connect_timeout_s=1)
    with pytest.raises(ConfigError, match="no Dask scheduler answered") as info:
        runner.__enter__()
    assert address in str(info.value)


@pytest.mark.parametrize("address", ["scheduler:8786", "http://scheduler:8786"])
def test_an_address_without_a_dask_scheme_is_refused(address: str):
    with pytest.raises(ConfigError, match="tcp://"):
        DaskRunner(address)


def test_sequential_map_hands_notes_to_on_note():
    notes: list[str] = []
    assert SequentialRunner().map(_noted, range(3), on_note=notes.append) == [0, 2, 4]
    assert notes == ["item 0", "item 1", "item 2"]
    note("outside any map")  # dropped, not an error


def test_process_runner_gives_the_sequential_results_notes_and_errors():
    seen: list[tuple[int, int]] = []
    notes: list[str] = []
    with ProcessRunner(2) as runner:
        out = runner.map(_fit, ITEMS, progress=lambda d, t: seen.append((d, t)))
        assert runner.map(_noted, range(4), on_note=notes.append) == [0, 2, 4, 6]
        with pytest.raises(ValueError, match="series 3"):
            runner.map(_fail_on_three, range(6))
    assert out == SequentialRunner().map(_fit, ITEMS)
    assert [d for d, _ in seen] == list(range(1, len(ITEMS) + 1))
    assert sorted(notes) == [f"item {x}" for x in range(4)]
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        runner.map(_fit, ITEMS)


def test_make_runner_picks_the_runner():
    assert isinstance(make_runner(None), SequentialRunner)
    assert isinstance(make_runner(""), SequentialRunner)
    assert isinstance(make_runner(None, workers=1), SequentialRunner)
    assert make_runner(None, workers=3).n_workers == 3
    assert isinstance(make_runner("local", workers=3), DaskRunner)
    local = make_runner("local")
    assert isinstance(local, DaskRunner) and local.address is None
    assert make_runner("tcp://10.0.0.1:8786").address == "tcp://10.0.0.1:8786"


def test_the_client_is_only_there_inside_the_block():
    runner = DaskRunner(None)
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        runner.map(_fit, ITEMS)
