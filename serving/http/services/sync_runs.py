"""Sync runs started over HTTP: one background thread per run, one active run per target.

A request names two endpoints of settings ``sync.endpoints``; nothing it carries is
used as a path or a host. :class:`SyncRunManager` resolves the names (roles,
``allow_delete``, transport, replicast's own state still out of reach, source a
directory, no overlap), refuses a second run on a target that has one active
(:class:`RunConflictError`, HTTP 409), runs :func:`replication.executor.run_sync`
in a daemon thread with a progress callback and a cancel event, and keeps the
latest runs in memory for ``GET``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecasting.errors import DataValidationError, ReplicastError, UnknownKeyError
from forecasting.settings import Settings
from forecasting.sync_endpoints import SyncEndpoint, clash_with
from serving.http.metrics import ServiceMetrics

if TYPE_CHECKING:
    from replication.request import SyncRequest
    from serving.http.schemas import SyncRunRequest

logger = logging.getLogger(__name__)

ACTIVE_STATES = frozenset({"queued", "running", "cancelling"})


class RunConflictError(ReplicastError):
    """A sync run on the same target is still active (HTTP 409)."""


@dataclass
class SyncRun:
    """One run's live record (mutated only under the manager's lock)."""

    run_id: str
    source: str  # endpoint names
    target: str
    request: Any  # replication.request.SyncRequest
    target_key: str
    created: datetime
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = "queued"
    finished: datetime | None = None
    executor_run_id: str | None = None
    progress: Any = None  # replication.progress.ProgressSnapshot
    result: Any = None  # replication.request.SyncResult
    error: str | None = None
    thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


Runner = Callable[..., Any]


def _default_runner(request: Any, **kwargs: Any) -> Any:
    from replication.executor import run_sync

    return run_sync(request, **kwargs)


def _overlap(a: str, b: str) -> bool:
    """Whether two target keys (resolved local paths, or host:path) share files."""
    if not (a.startswith("/") and b.startswith("/")):
        return a == b
    first, second = Path(a), Path(b)
    return first == second or first.is_relative_to(second) or second.is_relative_to(first)


class SyncRunManager:
    """Start, track and cancel sync runs.

    Args:
        settings: passed to the executor; ``sync.endpoints`` are the only places.
        metrics: sync run/byte counters.
        runner: ``run_sync``-compatible callable (default: the real executor).
        keep: finished runs remembered for ``GET`` (oldest forgotten first).
    """

    def __init__(
        self,
        settings: Settings,
        metrics: ServiceMetrics,
        *,
        runner: Runner = _default_runner,
        keep: int = 500,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.runner = runner
        self.keep = keep
        self._runs: OrderedDict[str, SyncRun] = OrderedDict()
        self._lock = threading.Lock()

    # -- validation -------------------------------------------------------------
    def _endpoint(self, name: str, field_name: str) -> SyncEndpoint:
        endpoints = self.settings.sync.endpoints
        endpoint = endpoints.get(name)
        if endpoint is None:
            known = sorted(endpoints) or "none: configure [sync.endpoints.<name>] in the settings"
            raise DataValidationError(
                f"{field_name}: unknown sync endpoint {name!r}; known endpoints: {known} "
                "(settings sync.endpoints)"
            )
        fits = endpoint.is_source if field_name == "source" else endpoint.is_target
        if not fits:
            raise DataValidationError(
                f"{field_name}: endpoint {name!r} has role {endpoint.role!r}, not {field_name}"
            )
        if clash_with(endpoint, self.settings.protected_paths):  # e.g. a symlink moved
            raise DataValidationError(
                f"{field_name}: endpoint {name!r} now reaches replicast's own state "
                "(data dir, lake, MLflow store or artifacts); fix settings sync.endpoints"
            )
        return endpoint

    def plan(self, body: SyncRunRequest) -> tuple[SyncRequest, str]:
        """The executor's request for ``body`` and the target's conflict key.

        Raises:
            DataValidationError: an unknown endpoint or one in the wrong role, ``delete``
                on a target without ``allow_delete``, a host:path target without rsync,
                a missing source directory, overlapping endpoints (all HTTP 422).
        """
        from replication.request import SyncRequest

        source = self._endpoint(body.source, "source")
        target = self._endpoint(body.target, "target")
        if body.source == body.target:
            raise DataValidationError("target: the same endpoint as source")
        if body.delete and not target.allow_delete:
            raise DataValidationError(
                f"delete: target endpoint {body.target!r} does not allow deletes "
                f"(settings sync.endpoints.{body.target}.allow_delete = false)"
            )
        if target.is_remote and body.transport != "rsync":
            raise DataValidationError(
                f"transport: target endpoint {body.target!r} is host:path; use 'rsync'"
            )
        regions = [region.name for region in self.settings.fleet.regions]
        if body.replica and body.replica not in regions:
            raise DataValidationError(
                f"replica: unknown region {body.replica!r}; known regions: {regions}"
            )
        if body.replica and target.link and body.replica != target.link:
            raise DataValidationError(
                f"replica: {body.replica!r} is not the link of target endpoint "
                f"{body.target!r} ({target.link!r}); leave replica out"
            )
        root = Path(source.path).resolve()
        if not root.is_dir():
            raise DataValidationError(f"source: endpoint {body.source!r} is not a directory now")
        where = target.local_path()
        if where is not None and (
            where == root or where.is_relative_to(root) or root.is_relative_to(where)
        ):
            raise DataValidationError(
                f"target: endpoint {body.target!r} overlaps source endpoint {body.source!r}"
            )
        key = str(where) if target.host is None else target.path
        request = SyncRequest(
            source=root,
            target=key,
            transport=body.transport,
            order=body.order,
            cluster=body.cluster,
            replica=body.replica or target.link,
            segment_pattern=body.segment_pattern,
            budget_bytes=body.budget_bytes,
            budget_seconds=body.budget_seconds,
            bwlimit=body.bwlimit,
            checksum=body.checksum,
            delete=body.delete,
            dry_run=body.dry_run,
            whole_file=body.whole_file,
            concurrency=body.concurrency,
        )
        return request, key

    # -- lifecycle --------------------------------------------------------------
    def start(self, body: SyncRunRequest) -> SyncRun:
        """Queue the run ``body`` asks for and start its thread.

        Raises:
            DataValidationError: see :meth:`plan` (422).
            RunConflictError: a run on the same target is active (409).
        """
        request, key = self.plan(body)
        with self._lock:
            for run in self._runs.values():
                if run.active and _overlap(run.target_key, key):
                    raise RunConflictError(
                        f"sync run {run.run_id} on target {run.target!r} is {run.state}; "
                        f"wait for it or cancel it (DELETE /v1/sync/runs/{run.run_id})"
                    )
            run = SyncRun(
                run_id=uuid.uuid4().hex[:16],
                source=body.source,
                target=body.target,
                request=request,
                target_key=key,
                created=datetime.now(UTC),
            )
            self._runs[run.run_id] = run
            self._forget_old()
            run.thread = threading.Thread(
                target=self._execute, args=(run,), name=f"sync-{run.run_id}", daemon=True
            )
            self.metrics.sync_active.inc()
        run.thread.start()
        return run

    def get(self, run_id: str) -> SyncRun:
        """The run with ``run_id``.

        Raises:
            UnknownKeyError: no such run (or forgotten).
        """
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise UnknownKeyError(f"unknown sync run {run_id!r} (runs are kept in memory)")
        return run

    def cancel(self, run_id: str) -> SyncRun:
        """Ask an active run to stop; a finished run is returned unchanged."""
        run = self.get(run_id)
        with self._lock:
            if run.active:
                run.state = "cancelling"
                run.cancel.set()
        return run

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel every active run and wait up to ``timeout`` seconds for them."""
        with self._lock:
            active = [r for r in self._runs.values() if r.active]
            for run in active:
                run.cancel.set()
        for run in active:
            if run.thread is not None:
                run.thread.join(timeout)

    # -- internals --------------------------------------------------------------
    def _forget_old(self) -> None:
        while len(self._runs) > self.keep:
            oldest = next(iter(self._runs.values()))
            if oldest.active:
                break
            self._runs.popitem(last=False)

    def _on_progress(self, run: SyncRun, snapshot: Any) -> None:
        with self._lock:
            run.progress = snapshot
            run.executor_run_id = getattr(snapshot, "run_id", run.executor_run_id)
            if run.state == "queued":
                run.state = "running"

    def _execute(self, run: SyncRun) -> None:
        with self._lock:
            if run.state == "queued":
                run.state = "running"
        result = None
        error = None
        try:
            result = self.runner(
                run.request,
                settings=self.settings,
                progress=lambda snap: self._on_progress(run, snap),
                cancel=run.cancel,
            )
        except ReplicastError as exc:
            error = str(exc)
            logger.warning("sync run %s failed: %s", run.run_id, exc)
        except Exception as exc:  # a background thread must record, never vanish
            error = f"{type(exc).__name__}: {exc}"
            logger.exception("sync run %s crashed", run.run_id)
        with self._lock:
            run.result = result
            run.error = error
            run.finished = datetime.now(UTC)
            if result is not None:
                run.state = str(result.state)
                run.executor_run_id = result.run_id
            else:
                run.state = "failed"
        self.metrics.sync_active.dec()
        self.metrics.sync_runs.labels(run.state).inc()
        if result is not None:
            self.metrics.sync_bytes.labels("read").inc(max(0, int(result.bytes_read)))
            self.metrics.sync_bytes.labels("sent").inc(max(0, int(result.bytes_sent)))
            self.metrics.sync_bytes.labels("written").inc(max(0, int(result.bytes_written)))
        logger.info("sync run %s ended: %s", run.run_id, run.state)

    def describe(self, run: SyncRun) -> dict[str, Any]:
        """A JSON-ready view of ``run`` (see ``serving.http.schemas.SyncRunStatus``)."""
        with self._lock:
            snap = run.progress
            result = run.result
            out: dict[str, Any] = {
                "run_id": run.run_id,
                "state": run.state,
                "source": run.source,
                "target": run.target,
                "segment_pattern": run.request.segment_pattern,
                "transport": run.request.transport,
                "order": run.request.order,
                "created": run.created,
                "finished": run.finished,
                "executor_run_id": run.executor_run_id,
                "progress": None,
                "result": None,
                "errors": [],
                "warnings": [],
            }
        if snap is not None:
            out["progress"] = {
                "bytes_total": snap.bytes_total,
                "bytes_done": snap.bytes_done,
                "bytes_sent": snap.bytes_sent,
                "files_total": snap.files_total,
                "files_done": snap.files_done,
                "segments_total": snap.segments_total,
                "segments_done": snap.segments_done,
                "current_segments": list(snap.current_segments),
                "elapsed_s": snap.elapsed_s,
            }
            out["errors"] = list(snap.errors)
        if result is not None:
            out["result"] = {
                "bytes_read": result.bytes_read,
                "bytes_sent": result.bytes_sent,
                "bytes_written": result.bytes_written,
                "files_copied": result.files_copied,
                "files_skipped": result.files_skipped,
                "segments_copied": result.count("copied"),
                "segments_skipped": result.count("skipped"),
                "segments_failed": result.count("failed"),
                "segments_pending": result.count("pending"),
                "seconds": result.seconds,
                "stop_reason": result.stop_reason,
            }
            out["errors"] = list(result.errors)
            out["warnings"] = list(result.warnings)
        if run.error:
            out["errors"] = [*out["errors"], run.error]
        return out
