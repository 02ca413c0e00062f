"""Limits of a sync run: bandwidth (token bucket), byte and time budgets, concurrency per link."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """A thread-safe token bucket: ``consume(n)`` blocks until ``n`` bytes may pass.

    Args:
        rate: bytes per second.
        burst: bucket depth in bytes (default: 50 ms of traffic, at least 64 KiB).
        clock/sleep: injectable for tests.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(64 * 1024, rate * 0.05))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._cond = threading.Condition()
        self._inside: list[int] = []  # priorities of the transfers taking or paying tokens

    def consume(self, n: int, cancel: threading.Event | None = None, priority: int = 0) -> None:
        """Take ``n`` tokens, sleeping while the bucket is in debt (may go negative).

        Strict priority between concurrent transfers: while a transfer of a lower
        ``priority`` value (a hotter segment) is taking or paying off tokens, the others
        wait, so the hottest file in flight gets the whole link rate and completes first
        (shared bandwidth would delay it); when it is busy elsewhere (reading, matching)
        the others use the link.
        """
        with self._cond:
            self._inside.append(priority)
            while priority > min(self._inside) and not (cancel is not None and cancel.is_set()):
                self._cond.wait(0.05)
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            debt = -self._tokens
        try:
            if debt > 0:
                wait = debt / self.rate
                if cancel is not None:
                    cancel.wait(wait)
                else:
                    self._sleep(wait)
        finally:
            with self._cond:
                self._inside.remove(priority)
                self._cond.notify_all()


def concurrency_for(rtt_ms: float | None) -> int:
    """Transfers to run at once on a link: 4 locally (overlaps fsyncs), more as round trips
    get longer (one more per 50 ms, at most 12)."""
    if rtt_ms is None or rtt_ms < 5:
        return 4
    return int(min(12, 4 + rtt_ms // 50))


class Budget:
    """Byte and time budget plus cooperative cancel, shared by the workers of one run."""

    def __init__(
        self,
        max_bytes: int | None = None,
        max_seconds: float | None = None,
        cancel: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.cancel = cancel or threading.Event()
        self._clock = clock
        self._start = clock()
        self._sent = 0
        self._lock = threading.Lock()

    def add_sent(self, n: int) -> None:
        with self._lock:
            self._sent += n

    @property
    def sent(self) -> int:
        return self._sent

    def elapsed(self) -> float:
        return self._clock() - self._start

    def stop_reason(self) -> str | None:
        """Why no new transfer may start (cancel, byte or time budget), or None."""
        if self.cancel.is_set():
            return "cancelled"
        if self.max_bytes is not None and self._sent >= self.max_bytes:
            return f"byte budget of {self.max_bytes} bytes reached"
        if self.max_seconds is not None and self.elapsed() >= self.max_seconds:
            return f"time budget of {self.max_seconds:g} s reached"
        return None

    def must_abort(self) -> bool:
        """Whether a transfer in flight must stop now (cancel or time budget; bytes finish)."""
        if self.cancel.is_set():
            return True
        return self.max_seconds is not None and self.elapsed() >= self.max_seconds
