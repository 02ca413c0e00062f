"""Live progress of a sync run, readable from another thread (CLI bar, HTTP status)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProgressSnapshot:
    """A consistent copy of the progress counters at one moment."""

    run_id: str
    state: str
    bytes_total: int
    bytes_done: int
    bytes_sent: int
    files_total: int
    files_done: int
    segments_total: int
    segments_done: int
    current_segments: tuple[str, ...]
    errors: tuple[str, ...]
    elapsed_s: float
    order: str = ""
    note: str = ""


@dataclass
class SyncProgress:
    """Thread-safe counters; ``callback`` gets a snapshot at most every ``interval`` seconds."""

    run_id: str
    callback: Callable[[ProgressSnapshot], None] | None = None
    interval: float = 0.1
    state: str = "planning"
    order: str = ""
    note: str = ""
    bytes_total: int = 0
    bytes_done: int = 0
    bytes_sent: int = 0
    files_total: int = 0
    files_done: int = 0
    segments_total: int = 0
    segments_done: int = 0
    errors: list[str] = field(default_factory=list)
    _current: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _start: float = field(default_factory=time.monotonic)
    _last_emit: float = 0.0

    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            return ProgressSnapshot(
                run_id=self.run_id,
                state=self.state,
                bytes_total=self.bytes_total,
                bytes_done=self.bytes_done,
                bytes_sent=self.bytes_sent,
                files_total=self.files_total,
                files_done=self.files_done,
                segments_total=self.segments_total,
                segments_done=self.segments_done,
                current_segments=tuple(self._current),
                errors=tuple(self.errors),
                elapsed_s=time.monotonic() - self._start,
                order=self.order,
                note=self.note,
            )

    def update(self, force: bool = False, **changes: int | str) -> None:
        """Add to numeric counters (``bytes_done=n``) or set strings (``state="running"``)."""
        with self._lock:
            for name, value in changes.items():
                if isinstance(value, str):
                    setattr(self, name, value)
                else:
                    setattr(self, name, getattr(self, name) + value)
        self._emit(force)

    def enter(self, segment: str) -> None:
        with self._lock:
            self._current[segment] = self._current.get(segment, 0) + 1
        self._emit(False)

    def leave(self, segment: str) -> None:
        with self._lock:
            left = self._current.get(segment, 1) - 1
            if left <= 0:
                self._current.pop(segment, None)
            else:
                self._current[segment] = left

    def error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)
        self._emit(True)

    def _emit(self, force: bool) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if not force and now - self._last_emit < self.interval:
            return
        self._last_emit = now
        self.callback(self.snapshot())
