"""What a sync run is asked to do (:class:`SyncRequest`) and what it did (:class:`SyncResult`)."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from forecasting.errors import ConfigError
from forecasting.units import MAX_BYTES

TransportName = Literal["delta", "rsync"]
OrderName = Literal["priority", "alpha"]
RunState = Literal["finished", "partial", "failed", "cancelled", "dry-run"]
SegmentState = Literal["copied", "skipped", "failed", "pending"]

#: The highest ``bwlimit`` accepted (bytes/s): 1 TiB/s, beyond any real link.
MAX_BWLIMIT = float(2**40)
#: The most transfers at once a run accepts.
MAX_CONCURRENCY = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_segment_pattern(value: str) -> str:
    """``value`` if it is a glob relative to the source root (the CLI's and HTTP's rule).

    Raises:
        ValueError: control characters, backslashes, absolute, ``..``, empty or ``.``
            components, or ``**`` inside a name.
    """
    if _CONTROL.search(value) or "\\" in value:
        raise ValueError("control characters and backslashes are refused")
    if value.startswith(("/", "~")):
        raise ValueError(
            f"{value!r}: absolute paths are refused; give a glob relative to the source"
        )
    parts = value.split("/")
    if ".." in parts:
        raise ValueError(f"{value!r}: '..' components are refused (path escape)")
    if any(part in ("", ".") or ("**" in part and part != "**") for part in parts):
        raise ValueError(
            f"{value!r}: empty or '.' components, and '**' inside a name, are refused; "
            "e.g. 'orders-*' or 'orders/**'"
        )
    return value


@dataclass(frozen=True)
class SyncRequest:
    """One sync run.

    Args:
        source: local source root.
        target: local directory or ``host:path`` (rsync transport only).
        transport: ``delta`` (built in, local) or ``rsync`` (the real binary).
        order: ``priority`` (newest ``priority_queue`` rows; alphabetical if none) or ``alpha``.
        cluster, replica: which rows of the priority queue apply (and which link, for
            bandwidth and RTT, when the target is remote).
        segment_pattern: glob naming the segments under ``source`` (default: top-level entries).
        budget_bytes, budget_seconds: stop cleanly when reached; the rest waits for the next run.
        bwlimit: link rate in bytes/s (token bucket); None = unlimited.
        checksum: compare contents (hashes) instead of size + mtime.
        delete: remove target files absent from the source (never outside the target root).
        dry_run: plan only; nothing is written.
        whole_file: force (True) or forbid (False) whole-file copies; None = automatic
            (whole files on an unlimited local link, delta otherwise).
        concurrency: transfers at once; None = by the link's RTT.
        rsh: remote shell for ``host:path`` (e.g. ``"ssh -p 2222 -i key"``).
        state_dir: where the journal and signature index live
            (default ``<data_dir>/sync/<target digest>``).
        record: append the run to the ``sync_runs`` lake dataset.
    """

    source: Path
    target: str
    transport: TransportName = "delta"
    order: OrderName = "priority"
    cluster: str | None = None
    replica: str | None = None
    segment_pattern: str | None = None
    budget_bytes: int | None = None
    budget_seconds: float | None = None
    bwlimit: float | None = None
    checksum: bool = False
    delete: bool = False
    dry_run: bool = False
    whole_file: bool | None = None
    concurrency: int | None = None
    rsh: str | None = None
    state_dir: Path | None = None
    record: bool = True

    def check(self) -> None:
        """Refuse a pattern, budget, rate or concurrency no run can honour.

        Raises:
            ConfigError: names the option (``--budget-seconds`` ...) and the rule.
        """
        if self.segment_pattern is not None:
            try:
                check_segment_pattern(self.segment_pattern)
            except ValueError as exc:
                raise ConfigError(f"--pattern: {exc}") from None
        if self.budget_seconds is not None and not (
            math.isfinite(self.budget_seconds) and self.budget_seconds > 0
        ):
            raise ConfigError(
                f"--budget-seconds: must be a finite number > 0, got {self.budget_seconds}"
            )
        if self.budget_bytes is not None and not 0 < self.budget_bytes <= MAX_BYTES:
            raise ConfigError(
                f"--budget-bytes: must be > 0 and at most {MAX_BYTES}, got {self.budget_bytes}"
            )
        if self.bwlimit is not None and not (
            math.isfinite(self.bwlimit) and 0 < self.bwlimit <= MAX_BWLIMIT
        ):
            raise ConfigError(
                f"--bwlimit: must be > 0 and at most 1TiB/s ({MAX_BWLIMIT:.0f} bytes/s), "
                f"got {self.bwlimit}"
            )
        if self.concurrency is not None and not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ConfigError(
                f"--concurrency: must be between 1 and {MAX_CONCURRENCY}, got {self.concurrency}"
            )


@dataclass
class SegmentResult:
    """What happened to one segment; ``finished_s`` is seconds after the run started."""

    name: str
    rank: int
    state: SegmentState = "pending"
    files: int = 0
    files_copied: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    files_deleted: int = 0
    size: int = 0
    bytes_read: int = 0
    bytes_sent: int = 0
    bytes_written: int = 0
    finished_s: float | None = None
    error: str | None = None


@dataclass
class SyncResult:
    """The outcome of :func:`replication.executor.run_sync`."""

    run_id: str
    started: datetime
    source: str
    target: str
    transport: str
    order: str
    order_note: str = ""
    state: RunState = "finished"
    stop_reason: str | None = None
    seconds: float = 0.0
    bytes_read: int = 0
    bytes_sent: int = 0
    bytes_written: int = 0
    signature_bytes: int = 0
    literal_bytes: int = 0
    matched_bytes: int = 0
    files_copied: int = 0
    files_skipped: int = 0
    files_deleted: int = 0
    retries: int = 0
    segments: list[SegmentResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)  # dry run: files that would change

    def count(self, state: SegmentState) -> int:
        return sum(1 for s in self.segments if s.state == state)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed (a budget stop is not a failure), 1 otherwise."""
        return 1 if self.state in ("failed", "cancelled") or self.errors else 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["started"] = self.started.isoformat()
        out["segments_copied"] = self.count("copied")
        out["segments_skipped"] = self.count("skipped")
        out["segments_failed"] = self.count("failed")
        out["segments_pending"] = self.count("pending")
        return out

    def to_row(self) -> dict[str, Any]:
        """The ``sync_runs`` row (columns of notes/contracts.md)."""
        return {
            "ts": self.started,
            "run_id": self.run_id,
            "source": self.source,
            "target": self.target,
            "transport": self.transport,
            "order": self.order,
            "state": self.state,
            "segments_copied": self.count("copied"),
            "segments_skipped": self.count("skipped"),
            "segments_failed": self.count("failed"),
            "bytes_read": self.bytes_read,
            "bytes_sent": self.bytes_sent,
            "bytes_written": self.bytes_written,
            "seconds": self.seconds,
            "error": "; ".join(self.errors)[:2000] or (self.stop_reason or ""),
        }
