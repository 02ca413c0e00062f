"""Sync runs started over HTTP: one background thread per run, one active run per target.

A request names two endpoints of settings ``sync.endpoints``; nothing it carries is
used as a path or a host. :class:`SyncRunManager` resolves the names (roles,
``allow_delete``, transport, replicast's own state still out of reach, source a
directory, no overlap), claims the target in the store every worker of the server
shares (:mod:`serving.http.services.sync_store`; a second run on a target with an
active run, from any worker, is :class:`RunConflictError`, HTTP 409), and runs
:func:`replication.executor.run_sync` in a daemon thread with a progress callback
and a cancel event. A watcher thread writes the run's progress to the store every
:data:`FLUSH_EVERY_S` seconds and sets the cancel event when any worker asked for it.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecasting.errors import DataValidationError, ReplicastError, UnknownKeyError
from forecasting.settings import Settings
from forecasting.sync_endpoints import SyncEndpoint, clash_with
from serving.http.metrics import ServiceMetrics
from serving.http.services.sync_store import RunLock, RunRecord, SyncRunStore, now

if TYPE_CHECKING:
    from replication.progress import ProgressSnapshot
    from replication.request import SyncRequest, SyncResult
    from serving.http.schemas import SyncRunRequest

logger = logging.getLogger(__name__)

#: Seconds between a running run's progress writes and cancel checks in the store.
FLUSH_EVERY_S = 0.5


class RunConflictError(ReplicastError):
    """A sync run on the same target is still active (HTTP 409)."""


@dataclass
class LiveRun:
    """What the worker running a run keeps in memory (the store holds the rest)."""

    run_id: str
    request: Any  # replication.request.SyncRequest
    lock: RunLock
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    snapshot: Any = None  # replication.progress.ProgressSnapshot, the latest
    thread: threading.Thread | None = None


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


def store_for(settings: Settings) -> SyncRunStore:
    """The run store of a server on ``settings``: ``<data_dir>/state``."""
    return SyncRunStore(settings.data_dir.resolve() / "state")


def _progress_view(snap: ProgressSnapshot) -> dict[str, Any]:
    return {
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


def _result_view(result: SyncResult) -> dict[str, Any]:
    return {
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


def _snapshot_errors(snap: ProgressSnapshot | None) -> list[str]:
    return [] if snap is None else list(snap.errors)


def _dead_error(run: RunRecord) -> str:
    return f"worker exited: the server process (pid {run.worker_pid}) ended before the run did"


class SyncRunManager:
    """Start, track and cancel sync runs; every worker's manager shares one store.

    Args:
        settings: passed to the executor; ``sync.endpoints`` are the only places.
        metrics: sync run/byte counters (of the runs this worker executes).
        runner: ``run_sync``-compatible callable (default: the real executor).
        keep: ended runs remembered for ``GET`` (oldest forgotten first).
        store: the shared run store (default: :func:`store_for` ``settings``).
    """

    def __init__(
        self,
        settings: Settings,
        metrics: ServiceMetrics,
        *,
        runner: Runner = _default_runner,
        keep: int = 500,
        store: SyncRunStore | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.runner = runner
        self.keep = keep
        self.store = store or store_for(settings)
        self._live: dict[str, LiveRun] = {}
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
    def start(self, body: SyncRunRequest) -> RunRecord:
        """Claim the target for the run ``body`` asks for and start its thread.

        Raises:
            DataValidationError: see :meth:`plan` (422).
            RunConflictError: a run on the same target is active in any worker (409).
        """
        request, key = self.plan(body)
        run_id = uuid.uuid4().hex[:16]
        stamp = now()
        record = RunRecord(
            run_id=run_id,
            source=body.source,
            target=body.target,
            target_key=key,
            request=body.model_dump(mode="json"),
            state="queued",
            cancel_requested=False,
            worker_pid=os.getpid(),
            created=stamp,
            updated=stamp,
        )
        lock = self.store.hold(run_id)
        try:
            holder = self.store.claim(
                record,
                blocks=lambda other: _overlap(other.target_key, key),
                alive=self._alive,
                dead_error=_dead_error,
            )
        except BaseException:
            lock.release()
            raise
        if holder is not None:
            lock.release()
            raise RunConflictError(
                f"sync run {holder.run_id} on target {holder.target!r} is {holder.state}; "
                f"wait for it or cancel it (DELETE /v1/sync/runs/{holder.run_id})"
            )
        live = LiveRun(run_id=run_id, request=request, lock=lock)
        live.thread = threading.Thread(
            target=self._execute, args=(live,), name=f"sync-{run_id}", daemon=True
        )
        with self._lock:
            self._live[run_id] = live
        self.metrics.sync_active.inc()
        live.thread.start()
        try:
            self.store.prune(self.keep)
        except Exception:  # forgetting old runs can wait for the next start
            logger.exception("could not prune old sync runs")
        return record

    def get(self, run_id: str) -> RunRecord:
        """The run with ``run_id``, from any worker; an orphaned active run reads ``failed``.

        Raises:
            UnknownKeyError: no such run (or forgotten).
        """
        run = self.store.get(run_id)
        if run is None:
            raise UnknownKeyError(
                f"unknown sync run {run_id!r} (the last {self.keep} runs are kept)"
            )
        if run.active and not self._alive(run):
            self.store.fail_stale(run_id, _dead_error(run))
            run = self.store.get(run_id) or run
        return run

    def cancel(self, run_id: str) -> RunRecord:
        """Ask an active run to stop (its worker polls the flag); an ended run is unchanged."""
        run = self.get(run_id)
        if run.active and self.store.request_cancel(run_id):
            with self._lock:
                live = self._live.get(run_id)
            if live is not None:
                live.cancel.set()
            run = self.store.get(run_id) or run
        return run

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel every run this worker executes and wait up to ``timeout`` seconds for them."""
        with self._lock:
            live = list(self._live.values())
        for run in live:
            run.cancel.set()
            try:
                self.store.request_cancel(run.run_id)
            except Exception:
                logger.exception("could not flag sync run %s cancelled", run.run_id)
        for run in live:
            if run.thread is not None:
                run.thread.join(timeout)

    # -- internals --------------------------------------------------------------
    def _alive(self, run: RunRecord) -> bool:
        with self._lock:
            if run.run_id in self._live:
                return True
        return self.store.owner_alive(run.run_id)

    def _flush(self, live: LiveRun) -> None:
        """Write the latest snapshot (if new) and pick up a cancel asked by any worker."""
        last = None
        while not live.done.wait(FLUSH_EVERY_S):
            snap = live.snapshot
            try:
                if snap is not None and snap is not last:
                    last = snap
                    cancel = self.store.save_progress(
                        live.run_id, snap.run_id, _progress_view(snap), list(snap.errors)
                    )
                else:
                    cancel = self.store.cancel_requested(live.run_id)
            except Exception:  # the store may be busy for a moment: try again next tick
                logger.exception("sync run %s: could not update the run store", live.run_id)
                continue
            if cancel:
                live.cancel.set()

    def _execute(self, live: LiveRun) -> None:
        watcher = threading.Thread(
            target=self._flush, args=(live,), name=f"sync-{live.run_id}-store", daemon=True
        )
        result = None
        error = None
        try:
            self.store.mark_running(live.run_id)
            watcher.start()
            result = self.runner(
                live.request,
                settings=self.settings,
                progress=lambda snap: setattr(live, "snapshot", snap),
                cancel=live.cancel,
            )
        except ReplicastError as exc:
            error = str(exc)
            logger.warning("sync run %s failed: %s", live.run_id, exc)
        except Exception as exc:  # a background thread must record, never vanish
            error = f"{type(exc).__name__}: {exc}"
            logger.exception("sync run %s crashed", live.run_id)
        finally:
            live.done.set()
            if watcher.is_alive():
                watcher.join()
        state = "failed" if result is None else str(result.state)
        snap = live.snapshot
        try:
            self.store.finish(
                live.run_id,
                state=state,
                executor_run_id=result.run_id if result is not None else None,
                progress=None if snap is None else _progress_view(snap),
                result=None if result is None else _result_view(result),
                errors=list(result.errors) if result is not None else _snapshot_errors(snap),
                warnings=list(result.warnings) if result is not None else [],
                error=error,
            )
        except Exception:  # the lock goes below: readers then see a failed run
            logger.exception("sync run %s: could not record its end", live.run_id)
        finally:
            live.lock.release()  # only after the end is recorded: a free lock means over
            with self._lock:
                self._live.pop(live.run_id, None)
        self.metrics.sync_active.dec()
        self.metrics.sync_runs.labels(state).inc()
        if result is not None:
            self.metrics.sync_bytes.labels("read").inc(max(0, int(result.bytes_read)))
            self.metrics.sync_bytes.labels("sent").inc(max(0, int(result.bytes_sent)))
            self.metrics.sync_bytes.labels("written").inc(max(0, int(result.bytes_written)))
        logger.info("sync run %s ended: %s", live.run_id, state)

    @staticmethod
    def describe(run: RunRecord) -> dict[str, Any]:
        """A JSON-ready view of ``run`` (see ``serving.http.schemas.SyncRunStatus``)."""
        errors = list(run.errors)
        if run.error:
            errors.append(run.error)
        return {
            "run_id": run.run_id,
            "state": run.state,
            "source": run.source,
            "target": run.target,
            "segment_pattern": run.request.get("segment_pattern"),
            "transport": run.request["transport"],
            "order": run.request["order"],
            "created": run.created,
            "finished": run.finished,
            "executor_run_id": run.executor_run_id,
            "worker_pid": run.worker_pid,
            "progress": run.progress,
            "result": run.result,
            "errors": errors,
            "warnings": list(run.warnings),
        }
