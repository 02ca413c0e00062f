from __future__ import annotations

import threading

import pytest

from forecasting.errors import ConfigError
from forecasting.units import parse_rate, parse_size
from replication.limits import Budget, TokenBucket, concurrency_for


@pytest.mark.parametrize(
    ("text", "expected"),
    [("40MiB", 40 * 1024**2), ("40MiB/s", 40 * 1024**2), ("1.5GB", 1_500_000_000), ("4096", 4096),
     ("10k", 10_000), ("2 GiB", 2 * 1024**3)],
)  # fmt: skip
def test_parse_size_units(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["fast", "40XB", "-1MB", ""])
def test_parse_size_rejects_nonsense(text: str) -> None:
    with pytest.raises(ConfigError, match="size"):
        parse_size(text)


def test_parse_rate_rejects_zero() -> None:
    with pytest.raises(ConfigError, match="--bwlimit"):
        parse_rate("0")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_token_bucket_enforces_the_rate() -> None:
    clock = _Clock()
    bucket = TokenBucket(rate=1000.0, burst=100.0, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        bucket.consume(200)
    # 10_000 bytes at 1000 B/s minus the 100-byte burst
    assert clock.now == pytest.approx(9.9, rel=1e-6)


def test_token_bucket_serves_the_hotter_transfer_first() -> None:
    bucket = TokenBucket(rate=2_000_000.0, burst=10_000.0)
    order: list[str] = []
    started = threading.Barrier(2)

    def transfer(name: str, priority: int) -> None:
        started.wait()
        for _ in range(10):
            bucket.consume(20_000, priority=priority)
            order.append(name)

    threads = [
        threading.Thread(target=transfer, args=("cold", 2)),
        threading.Thread(target=transfer, args=("hot", 1)),
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(order) == ["cold"] * 10 + ["hot"] * 10
    # sharing the link would interleave them; the hot one finishes while most cold
    # chunks still wait
    assert order.index("hot") < 3
    last_hot = max(i for i, name in enumerate(order) if name == "hot")
    assert order[: last_hot + 1].count("cold") <= 3


def test_budget_reasons() -> None:
    clock = _Clock()
    budget = Budget(max_bytes=100, max_seconds=5, clock=clock)
    assert budget.stop_reason() is None
    budget.add_sent(100)
    assert "byte budget" in (budget.stop_reason() or "")
    assert not budget.must_abort()  # bytes in flight may finish
    clock.now = 6
    assert budget.must_abort()
    budget2 = Budget()
    budget2.cancel.set()
    assert budget2.stop_reason() == "cancelled"


def test_concurrency_grows_with_rtt() -> None:
    assert concurrency_for(None) == concurrency_for(1) == 4
    assert 4 < concurrency_for(75) < concurrency_for(230) <= 12
