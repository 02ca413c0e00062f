"""What a transport gets to run one sync: :class:`RunContext`, built once by the executor."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from replication.catalog import Segment
from replication.journal import Journal
from replication.limits import Budget, TokenBucket
from replication.paths import Endpoint
from replication.progress import SyncProgress
from replication.request import SyncRequest, SyncResult


@dataclass(frozen=True)
class RunContext:
    """One run, as both transports see it.

    Args:
        request: what the caller asked for.
        source: the local source root.
        target: where the files go (a local directory or ``host:path``).
        segments: the catalog's segments, in the run's order.
        result: filled in by the transport (its ``segments`` follow ``segments``).
        progress: live counters for the caller.
        journal: the target's journal (resume state).
        budget: byte and time budgets, and the run's cancel event (``budget.cancel``).
        bucket: the rate limit of ``request.bwlimit``, shared by every transfer; None = none.
        bandwidth: link rate in bytes/s (``bwlimit`` or the fleet link); None = unlimited.
        rtt_ms: round-trip time of the link; None = local or unknown.
        zstd_level: compression level of the link (0 = none).
        state_dir: where the target's journal and signature index live.
        started: ``time.monotonic()`` at the run's start (segment finish times count from it).
    """

    request: SyncRequest
    source: Path
    target: Endpoint
    segments: list[Segment]
    result: SyncResult
    progress: SyncProgress
    journal: Journal
    budget: Budget
    bucket: TokenBucket | None
    bandwidth: float | None
    rtt_ms: float | None
    zstd_level: int
    state_dir: Path
    started: float
