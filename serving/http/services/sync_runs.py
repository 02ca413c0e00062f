"""Sync runs started over HTTP: one background thread per run, one active run per target.

:class:`SyncRunManager` validates a request (paths under the allowed roots, source
is a directory, source and target do not overlap), refuses a second run on a
target that has one active (:class:`RunConflictError`, HTTP 409), runs
:func:`replication.executor.run_sync` in a daemon thread with a progress callback
and a cancel event, and keeps the latest runs in memory for ``GET``.
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
from typing import Any

from forecasting.errors import DataValidationError, ReplicastError, UnknownKeyError
from forecasting.settings import Settings
from serving.http.metrics import ServiceMetrics

logger = logging.getLogger(__name__)

ACTIVE_STATES = frozenset({"queued", "running", "cancelling"})


class RunConflictError(ReplicastError):
    """A sync run on the same target is still active (HTTP 409)."""


@dataclass
class SyncRun:
    """One run's live record (mutated only under the manager's lock)."""

    run_id: str
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


class SyncRunManager:
    """Start, track and cancel sync runs.

    Args:
        settings: passed to the executor; ``serve.sync_roots`` bounds the paths.
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
    def roots(self) -> list[Path]:
        roots = self.settings.serve.sync_roots or [self.settings.data_dir]
        return [Path(r).resolve() for r in roots]

    def _local(self, value: str, field_name: str) -> Path:
        if "\x00" in value or not value.strip():
            raise DataValidationError(f"{field_name}: {value!r} is not a usable path")
        try:
            resolved = Path(value).resolve()
        except (OSError, ValueError) as exc:  # too long, undecodable, loops
            raise DataValidationError(
                f"{field_name}: {value!r} is not a usable path: {exc}"
            ) from exc
        roots = self.roots()
        if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
            raise DataValidationError(
                f"{field_name}: {value!r} is outside the allowed sync roots "
                f"{[str(r) for r in roots]} (settings serve.sync_roots)"
            )
        return resolved

    def _target_key(self, target: str, transport: str) -> str:
        from replication.paths import parse_endpoint

        try:
            endpoint = parse_endpoint(target)
        except (ReplicastError, ValueError, OSError) as exc:
            raise DataValidationError(f"target: {exc}") from exc
        if endpoint.is_remote:
            if str(endpoint.host).startswith("-") or endpoint.path.startswith("-"):
                raise DataValidationError(f"target: {target!r} may not start with '-'")
            if transport != "rsync":
                raise DataValidationError(
                    f"target: {target!r} is remote (host:path); use transport 'rsync'"
                )
            return str(endpoint)
        return str(self._local(str(endpoint.path), "target"))

    def validate(self, request: Any) -> str:
        """Check a request before it is queued; returns the target's conflict key.

        Raises:
            DataValidationError: a path outside the roots, a missing source, overlap.
        """
        source = self._local(str(request.source), "source")
        try:
            is_dir = source.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            raise DataValidationError(f"source: {str(request.source)!r} is not a directory")
        key = self._target_key(request.target, request.transport)
        if not key.startswith("/"):  # remote target: no overlap possible
            return key
        target = Path(key)
        if target == source or target.is_relative_to(source) or source.is_relative_to(target):
            raise DataValidationError(
                f"target: {request.target!r} overlaps source {str(request.source)!r}; "
                "replicate into a separate directory"
            )
        return key

    # -- lifecycle --------------------------------------------------------------
    def start(self, request: Any) -> SyncRun:
        """Queue ``request`` and start its thread.

        Raises:
            DataValidationError: invalid paths (422).
            RunConflictError: a run on the same target is active (409).
        """
        key = self.validate(request)
        with self._lock:
            for run in self._runs.values():
                if run.target_key == key and run.active:
                    raise RunConflictError(
                        f"sync run {run.run_id} on target {key} is {run.state}; wait for it "
                        f"or cancel it (DELETE /v1/sync/runs/{run.run_id})"
                    )
            run = SyncRun(
                run_id=uuid.uuid4().hex[:16],
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
                "source": str(run.request.source),
                "target": str(run.request.target),
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
