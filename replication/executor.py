"""The sync executor: :func:`run_sync` replicates segments in priority order under limits.

It resolves the endpoints, catalogs and orders the segments, opens the journal, hands
one :class:`~replication.context.RunContext` to the chosen transport (the delta engine
of :mod:`replication.engine` or :mod:`replication.rsync_transport`) and settles the result.
Usable from the CLI and from a background thread (HTTP): pass ``progress`` to receive
:class:`~replication.progress.ProgressSnapshot` objects and ``cancel`` to stop it
cooperatively (files in flight are abandoned, the target stays old for them).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from forecasting.errors import ConfigError, ReplicastError
from forecasting.settings import Settings, get_settings
from forecasting.sync_endpoints import SyncEndpoint, clash_with, is_this_host
from replication.catalog import Segment, build_catalog
from replication.context import RunContext
from replication.journal import Journal, JournalError
from replication.limits import Budget, TokenBucket
from replication.links import link_of, zstd_level_for
from replication.ordering import order_segments, priority_ranks
from replication.paths import Endpoint, parse_endpoint, real_path
from replication.progress import ProgressSnapshot, SyncProgress
from replication.record import record_run
from replication.request import SegmentResult, SyncRequest, SyncResult
from replication.rsync_transport import run_rsync

log = logging.getLogger(__name__)


def state_dir_for(settings: Settings, endpoint: Endpoint) -> Path:
    """Default home of a target's journal and signature index."""
    where = str(endpoint) if endpoint.is_remote else str(real_path(endpoint.path, what="target"))
    digest = hashlib.sha1(where.encode()).hexdigest()[:16]
    return settings.data_dir / "sync" / digest


def run_sync(
    request: SyncRequest,
    *,
    settings: Settings | None = None,
    progress: Callable[[ProgressSnapshot], None] | None = None,
    cancel: threading.Event | None = None,
) -> SyncResult:
    """Run one sync and return what it did (also recorded in ``sync_runs``).

    Args:
        request: what to sync and how.
        settings: lake location and fleet (links); default :func:`get_settings`.
        progress: called with a snapshot on progress (at most ~10/s, and at the end).
        cancel: set it to stop the run cleanly.

    Raises:
        ConfigError: the source is not a directory, or the transport cannot reach the target.
        PathEscapeError: the target is a symlink loop.
    """
    settings = settings or get_settings()
    endpoint = parse_endpoint(request.target)
    source_root = Path(request.source)
    if not source_root.is_dir():
        raise ConfigError(f"--source {source_root}: not a directory; give the source root")
    if endpoint.is_remote and request.transport == "delta":
        raise ConfigError(
            f"--target {request.target}: the delta transport copies to local paths only; "
            "use --transport rsync for host:path targets"
        )
    request.check()
    _check_target(endpoint, source_root, settings)
    run_id = uuid.uuid4().hex[:16]
    result = SyncResult(
        run_id=run_id,
        started=datetime.now(UTC),
        source=str(source_root),
        target=str(endpoint),
        transport=request.transport,
        order=request.order,
    )
    tracker = SyncProgress(run_id, callback=progress)
    t0 = time.monotonic()
    ordered = _ordered_segments(request, settings, result, tracker)
    state_dir = request.state_dir or state_dir_for(settings, endpoint)
    journal = Journal(state_dir / "journal.sqlite")
    budget = Budget(request.budget_bytes, request.budget_seconds, cancel)
    try:
        if not request.dry_run:
            journal.start_run(
                run_id, source=result.source, target=result.target, transport=request.transport
            )
        bandwidth, rtt_ms = link_of(request, settings.fleet, endpoint)
        ctx = RunContext(
            request=request,
            source=source_root,
            target=endpoint,
            segments=ordered,
            result=result,
            progress=tracker,
            journal=journal,
            budget=budget,
            bucket=TokenBucket(request.bwlimit) if request.bwlimit else None,
            bandwidth=bandwidth,
            rtt_ms=rtt_ms,
            zstd_level=zstd_level_for(bandwidth),
            state_dir=state_dir,
            started=t0,
        )
        if request.transport == "rsync":
            run_rsync(ctx)
        else:
            # numpy, zstandard and xxhash load only for a delta run (rsync runs need none)
            from replication.engine import DeltaEngine

            DeltaEngine(ctx).run()
    except JournalError as exc:  # e.g. locked or full before the first file: nothing was copied
        result.errors.append(str(exc))
        log.error("%s", exc)
    finally:
        result.seconds = time.monotonic() - t0
        _final_state(result, request, budget)
        if not request.dry_run:
            try:
                journal.finish_run(run_id, result.state)
            except JournalError as exc:  # the run's outcome stands; only its journal row is stale
                result.warnings.append(f"{exc} (its journal row still says 'running')")
        journal.close()
        tracker.update(force=True, state=result.state)
    if request.record and not request.dry_run:
        try:
            record_run(settings.lake_dir, result)
        except (ReplicastError, OSError) as exc:
            result.warnings.append(f"could not record the run in sync_runs: {exc}")
    return result


def _check_target(endpoint: Endpoint, source_root: Path, settings: Settings) -> None:
    """Refuse a target replicast must not write to, before anything is touched.

    Raises:
        ConfigError: the host starts with ``-`` (an ssh option), or a target on this
            machine is a regular file, is/holds/lies in replicast's own state
            (:attr:`Settings.protected_paths`) or overlaps the source.
        PathEscapeError: the target is a symlink loop.
    """
    if endpoint.host is not None:
        if endpoint.host.startswith("-"):
            raise ConfigError(f"--target {endpoint}: a host may not start with '-'")
        if not is_this_host(endpoint.host.rsplit("@", 1)[-1]):
            return  # another machine: its paths are not ours
        if not endpoint.path.startswith("/"):
            return  # relative to the remote login's home: not knowable here
    where = real_path(endpoint.path, what="--target")  # a symlink loop is refused here
    try:
        clash = clash_with(SyncEndpoint(path=str(where), role="target"), settings.protected_paths)
    except ValueError as exc:  # e.g. control characters in the path
        raise ConfigError(f"--target {endpoint}: {exc}") from None
    if clash:
        raise ConfigError(f"--target: {clash}")
    if where.exists() and not where.is_dir():
        raise ConfigError(f"--target {endpoint}: exists and is not a directory")
    source = real_path(source_root, what="--source")
    if where == source or where.is_relative_to(source) or source.is_relative_to(where):
        raise ConfigError(
            f"--target {endpoint}: overlaps --source {source_root} "
            "(one is, or lies inside, the other); give separate directories"
        )


def _ordered_segments(
    request: SyncRequest, settings: Settings, result: SyncResult, tracker: SyncProgress
) -> list[Segment]:
    """The source's segments in the run's order; notes the order in ``result`` and ``tracker``."""
    names_order: dict[str, int]
    if request.order == "alpha":
        names_order, note = {}, "alphabetical order (requested)"
    else:
        names_order, note = priority_ranks(settings.lake_dir, request.cluster, request.replica)
    result.order_note = note
    tracker.update(order=request.order if not note.startswith("no ") else "alpha", note=note)
    if "fell back" in note:
        result.order = "alpha"
        log.warning("%s", note)
    segments = {s.name: s for s in build_catalog(Path(request.source), request.segment_pattern)}
    ordered = [segments[n] for n in order_segments(list(segments), names_order)]
    if request.order == "alpha":
        ordered = [segments[n] for n in sorted(segments)]
    result.segments = [
        SegmentResult(name=s.name, rank=i + 1, files=len(s.files), size=s.size, error=s.error)
        for i, s in enumerate(ordered)
    ]
    missing = sorted(set(names_order) - set(segments))
    if missing:
        result.warnings.append(
            f"{len(missing)} queued segment(s) not under the source root: {missing[:5]}"
        )
    return ordered


def _final_state(result: SyncResult, request: SyncRequest, budget: Budget) -> None:
    for seg in result.segments:
        if seg.error and seg.state != "failed":
            seg.state = "failed"
        if seg.state == "failed" and seg.error and not any(seg.name in e for e in result.errors):
            result.errors.append(f"{seg.name}: {seg.error}")
    if request.dry_run:
        result.state = "dry-run"
    elif budget.cancel.is_set():
        result.state = "cancelled"
        result.stop_reason = result.stop_reason or "cancelled"
    elif result.errors:
        result.state = "failed"
    elif result.stop_reason or result.count("pending"):
        result.state = "partial"
    else:
        result.state = "finished"
