"""The sync executor: :func:`run_sync` replicates segments in priority order under limits.

Usable from the CLI and from a background thread (HTTP): pass ``progress`` to receive
:class:`~replication.progress.ProgressSnapshot` objects and ``cancel`` to stop it
cooperatively (files in flight are abandoned, the target stays old for them).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from queue import Empty, Queue

from forecasting.errors import ConfigError, PathEscapeError, ReplicastError
from forecasting.settings import Settings, get_settings
from replication.atomic import clean_stale_temps, fsync_dir, is_temp
from replication.catalog import FileEntry, Segment, build_catalog, quick_equal
from replication.crashpoints import crash_point
from replication.delta import LinkCodec, zstd_level_for
from replication.delta_transport import (
    DeltaTransport,
    FileOutcome,
    LinkContext,
    TransferAborted,
)
from replication.journal import FileRecord, Journal
from replication.limits import Budget, TokenBucket, concurrency_for
from replication.ordering import order_segments, priority_ranks
from replication.paths import Endpoint, Resolver, inside, parse_endpoint
from replication.progress import ProgressSnapshot, SyncProgress
from replication.request import SegmentResult, SyncRequest, SyncResult
from replication.signatures import SignatureIndex
from replication.verify import hash_file, target_hash

log = logging.getLogger(__name__)

#: Above this link rate a local copy is faster whole than by delta (reading beats sending).
WHOLE_FILE_ABOVE = 1e9
#: Longest a renamed file waits for its directory fsync (and its journal record).
FLUSH_EVERY_S = 0.005
#: Threads that fsync prepared temp files (fsync waits on the disk, not the CPU).
FLUSHERS = 4


def state_dir_for(settings: Settings, endpoint: Endpoint) -> Path:
    """Default home of a target's journal and signature index."""
    where = str(endpoint) if endpoint.is_remote else str(Path(endpoint.path).resolve())
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
    names_order, note = _order(request, settings, source_root)
    result.order_note = note
    tracker.update(order=request.order if not note.startswith("no ") else "alpha", note=note)
    if "fell back" in note:
        result.order = "alpha"
        log.warning("%s", note)
    segments = {s.name: s for s in build_catalog(source_root, request.segment_pattern)}
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
    state_dir = request.state_dir or state_dir_for(settings, endpoint)
    journal = Journal(state_dir / "journal.sqlite")
    budget = Budget(request.budget_bytes, request.budget_seconds, cancel)
    try:
        if not request.dry_run:
            journal.start_run(
                run_id, source=result.source, target=result.target, transport=request.transport
            )
        if request.transport == "rsync":
            from replication.rsync_transport import run_rsync

            run_rsync(request, settings, endpoint, ordered, result, tracker, journal, budget)
        else:
            _DeltaRun(
                request, settings, endpoint, ordered, result, tracker, journal, budget, state_dir
            ).run(t0)
    finally:
        result.seconds = time.monotonic() - t0
        _final_state(result, request, budget)
        if not request.dry_run:
            journal.finish_run(run_id, result.state)
        journal.close()
        tracker.update(force=True, state=result.state)
    if request.record and not request.dry_run:
        try:
            from replication.record import record_run

            record_run(settings.lake_dir, result)
        except (ReplicastError, OSError) as exc:
            result.warnings.append(f"could not record the run in sync_runs: {exc}")
    return result


def _order(request: SyncRequest, settings: Settings, source: Path) -> tuple[dict[str, int], str]:
    if request.order == "alpha":
        return {}, "alphabetical order (requested)"
    return priority_ranks(settings.lake_dir, request.cluster, request.replica)


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


def link_of(
    request: SyncRequest, settings: Settings, endpoint: Endpoint
) -> tuple[float | None, float | None]:
    """(bandwidth bytes/s or None, rtt ms or None) of the link to the target."""
    bandwidth = request.bwlimit
    rtt = None
    if endpoint.is_remote and request.replica:
        region = settings.fleet.region(request.replica)
        rtt = region.rtt_ms
        bandwidth = bandwidth or region.bandwidth_bytes_s
    return bandwidth, rtt


@dataclass
class _Task:
    seg: SegmentResult
    entry: FileEntry
    check: bool  # content compare first (checksum mode)


class _DeltaRun:
    def __init__(
        self,
        request: SyncRequest,
        settings: Settings,
        endpoint: Endpoint,
        ordered: list[Segment],
        result: SyncResult,
        tracker: SyncProgress,
        journal: Journal,
        budget: Budget,
        state_dir: Path,
    ) -> None:
        self.request = request
        self.source_root = Path(request.source)
        self.target_root = Path(endpoint.path)
        self.ordered = ordered
        self.result = result
        self.tracker = tracker
        self.journal = journal
        self.budget = budget
        self.index = SignatureIndex(state_dir / "signatures.sqlite")
        bandwidth, rtt = link_of(request, settings, endpoint)
        whole = request.whole_file
        if whole is None:
            whole = bandwidth is None or bandwidth >= WHOLE_FILE_ABOVE
        self.ctx_args = {
            "bucket": TokenBucket(bandwidth) if request.bwlimit else None,
            "codec": LinkCodec(zstd_level_for(bandwidth)),
            "whole_file": whole,
        }
        # local delta is CPU-bound (fewer threads keep the hottest file fast); whole-file
        # copies wait on disk flushes (more threads overlap them)
        local = 4 if whole else 2
        self.concurrency = request.concurrency or (concurrency_for(rtt) if rtt else local)
        self.transport = DeltaTransport(self.source_root, self.target_root, self.index)
        self._lock = threading.Lock()
        self._remaining: dict[str, int] = {}
        self._t0 = time.monotonic()

    def run(self, t0: float | None = None) -> None:
        """Run the transfers; segment finish times count from ``t0`` (the run's start)."""
        if t0 is not None:
            self._t0 = t0
        try:
            self._run()
        finally:
            self.index.close()

    def _run(self) -> None:
        if not self.request.dry_run:
            self.target_root.mkdir(parents=True, exist_ok=True)
            removed = clean_stale_temps(self.target_root)
            if removed:
                log.info("removed %d temp file(s) left by an interrupted run", removed)
        tasks = self._plan()
        self.tracker.update(
            force=True,
            state="running" if not self.request.dry_run else "dry-run",
            bytes_total=sum(t.entry.size for t in tasks),
            files_total=len(tasks),
            segments_total=len(self.result.segments),
        )
        if self.request.dry_run:
            self.result.planned = [t.entry.rel for t in tasks]
            self.result.planned += [f"delete {p}" for p in self._extraneous_all()]
            return
        queue = iter(tasks)
        self._commits = Queue(maxsize=2 * self.concurrency)
        self._flusher = ThreadPoolExecutor(FLUSHERS, thread_name_prefix="sync-fsync")
        committer = threading.Thread(target=self._committer, name="sync-commit")
        committer.start()
        threads = [
            threading.Thread(target=self._worker, args=(queue,), name=f"sync-{i}")
            for i in range(min(self.concurrency, max(1, len(tasks))))
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self._commits.put(None)
        committer.join()
        self._flusher.shutdown()
        if self.request.delete and not self.result.stop_reason:
            self._delete_extraneous()

    # planning ---------------------------------------------------------------------
    def _plan(self) -> list[_Task]:
        tasks: list[_Task] = []
        done = self.journal.all()
        resolve = Resolver(self.target_root, what="target file")
        by_name = {s.name: s for s in self.ordered}
        for seg in self.result.segments:
            if seg.error:
                seg.state = "failed"
                continue
            pending = 0
            for entry in by_name[seg.name].files:
                try:
                    dst = resolve(entry.rel)
                except PathEscapeError as exc:
                    self._fail(seg, entry.rel, str(exc))
                    continue
                dst_st = _lstat(dst)
                rec = done.get(entry.rel)
                if not self.request.checksum and (
                    _journal_done(rec, entry, dst_st) or quick_equal(entry, dst_st)
                ):
                    seg.files_skipped += 1
                    self.result.files_skipped += 1
                    continue
                tasks.append(_Task(seg, entry, check=self.request.checksum))
                pending += 1
            self._remaining[seg.name] = pending
            if pending == 0 and seg.state != "failed":
                seg.state = "skipped"
                seg.finished_s = 0.0
        return tasks

    # execution --------------------------------------------------------------------
    def _worker(self, queue) -> None:
        while True:
            with self._lock:
                reason = self.budget.stop_reason()
                if reason:
                    self.result.stop_reason = self.result.stop_reason or reason
                    return
                task = next(queue, None)
            if task is None:
                return
            self._do(task)

    def _do(self, task: _Task) -> None:
        seg, entry = task.seg, task.entry
        self.tracker.enter(seg.name)
        ctx = LinkContext(
            budget=self.budget, on_bytes=self._on_bytes, priority=seg.rank, **self.ctx_args
        )
        try:
            if task.check and self._same_content(entry, seg):
                self._done(seg, None)
                return
            prepared = self.transport.prepare(entry, ctx, durable=False)
        except TransferAborted as exc:
            with self._lock:
                self.result.stop_reason = self.result.stop_reason or str(exc)
            self.tracker.leave(seg.name)
            return
        except (ReplicastError, OSError) as exc:
            self._failed_file(seg, entry.rel, exc)
            return
        # fsync and rename on the flusher pool (commit fsyncs first): this worker moves on
        # to the next (hotter) file while the disk flushes this one; the committer fsyncs
        # the directories and records the renamed files, in order
        renamed = self._flusher.submit(self.transport.commit, prepared, sync_dir=False)
        self._commits.put((task, renamed))  # blocks while the committer is behind

    def _committer(self) -> None:
        """Records renamed files, in order, while the workers prepare the next ones.

        A flusher pool fsyncs each temp file and renames it in (in parallel: freeing the
        old version's blocks is the slow part of a rename over it). Directory fsyncs are
        batched here: renamed files are recorded as finished (journal,
        counters, segment completion) only after their directory was fsynced, once per
        directory for all the files renamed in the last :data:`FLUSH_EVERY_S` (or 64
        files), so a segment's completion is never held back longer than that.
        """
        renamed: list[tuple[_Task, FileOutcome]] = []
        deadline = 0.0
        while True:
            try:
                wait = max(0.0, deadline - time.monotonic()) if renamed else None
                item = self._commits.get(timeout=wait)
            except Empty:
                self._flush(renamed)
                continue
            if item is None:
                self._flush(renamed)
                return
            task, done = item
            try:
                outcome = done.result()
                if not renamed:
                    deadline = time.monotonic() + FLUSH_EVERY_S
                renamed.append((task, outcome))
            except (ReplicastError, OSError) as exc:
                self._failed_file(task.seg, task.entry.rel, exc)
            if len(renamed) >= 64 or (renamed and time.monotonic() >= deadline):
                self._flush(renamed)

    def _flush(self, renamed: list[tuple[_Task, FileOutcome]]) -> None:
        dirs = {(self.target_root / task.entry.rel).parent for task, _ in renamed}
        for directory in sorted(dirs):
            crash_point("before_dir_fsync")
            fsync_dir(directory)
        with self.journal.batch():
            for task, outcome in renamed:
                crash_point("before_journal")
                self._record(task, outcome)
        for task, outcome in renamed:
            self._done(task.seg, outcome)
        renamed.clear()

    def _record(self, task: _Task, outcome: FileOutcome) -> None:
        entry = task.entry
        self.journal.record(
            FileRecord(
                path=entry.rel,
                run_id=self.result.run_id,
                src_size=entry.size,
                src_mtime_ns=entry.mtime_ns,
                dst_size=outcome.dst_stat.st_size,
                dst_mtime_ns=outcome.dst_stat.st_mtime_ns,
                dst_ino=outcome.dst_stat.st_ino,
                hash=outcome.hash,
            )
        )

    def _done(self, seg: SegmentResult, outcome: FileOutcome | None) -> None:
        with self._lock:
            if outcome is not None:
                self._add(seg, outcome)
                seg.files_copied += 1
                self.result.files_copied += 1
            else:
                seg.files_skipped += 1
                self.result.files_skipped += 1
        self.tracker.update(files_done=1)
        self.tracker.leave(seg.name)
        self._finish_file(seg)

    def _failed_file(self, seg: SegmentResult, rel: str, exc: BaseException) -> None:
        self._fail(seg, rel, _describe(exc, rel))
        self.tracker.leave(seg.name)
        self._finish_file(seg)

    def _same_content(self, entry: FileEntry, seg: SegmentResult) -> bool:
        want, read = hash_file(self.source_root / entry.rel)
        got, read2 = target_hash(self.target_root / entry.rel, entry.rel, self.index)
        with self._lock:
            seg.bytes_read += read + read2
            self.result.bytes_read += read + read2
        self.tracker.update(bytes_done=entry.size)
        return want == got

    def _add(self, seg: SegmentResult, out: FileOutcome) -> None:
        seg.bytes_read += out.bytes_read
        seg.bytes_sent += out.bytes_sent
        seg.bytes_written += out.bytes_written
        r = self.result
        r.bytes_read += out.bytes_read
        r.bytes_sent += out.bytes_sent
        r.bytes_written += out.bytes_written
        r.signature_bytes += out.signature_bytes
        r.literal_bytes += out.literal_bytes
        r.matched_bytes += out.matched_bytes
        r.retries += out.retries
        self.tracker.update(bytes_sent=out.bytes_sent)

    def _on_bytes(self, n: int) -> None:
        self.tracker.update(bytes_done=n)

    def _finish_file(self, seg: SegmentResult) -> None:
        with self._lock:
            self._remaining[seg.name] -= 1
            if self._remaining[seg.name] > 0:
                return
            seg.finished_s = time.monotonic() - self._t0
            if seg.state != "failed":
                seg.state = "copied" if seg.files_copied else "skipped"
        self.tracker.update(segments_done=1)

    def _fail(self, seg: SegmentResult, rel: str, message: str) -> None:
        with self._lock:
            seg.state = "failed"
            seg.files_failed += 1
            seg.error = seg.error or message
            self.result.errors.append(f"{seg.name}: {message}")
        self.tracker.error(f"{seg.name}: {message}")
        log.error("segment %s: %s", seg.name, message)

    # deletion ---------------------------------------------------------------------
    def _extraneous(self, seg: Segment) -> list[str]:
        base = self.target_root / seg.name
        if not base.is_dir() or base.is_symlink():
            return []
        keep = {f.rel for f in seg.files}
        out = []
        for dirpath, dirs, files in os.walk(base):
            rel_dir = Path(dirpath).relative_to(self.target_root)
            for name in files + [d for d in dirs if Path(dirpath, d).is_symlink()]:
                rel = (rel_dir / name).as_posix()
                if rel not in keep:
                    out.append(rel)
        return sorted(out)

    def _extraneous_top(self) -> list[str]:
        if self.request.segment_pattern or not self.target_root.is_dir():
            return []
        names = {s.name for s in self.ordered}
        return sorted(e.name for e in os.scandir(self.target_root) if e.name not in names)

    def _extraneous_all(self) -> list[str]:
        if not self.request.delete:
            return []
        out = self._extraneous_top()
        for seg in self.ordered:
            if not seg.error:
                out += self._extraneous(seg)
        return out

    def _delete_extraneous(self) -> None:
        by_name = {s.name: s for s in self.ordered}
        for seg in self.result.segments:
            if seg.state in ("copied", "skipped"):
                for rel in self._extraneous(by_name[seg.name]):
                    self._remove(rel)
                    seg.files_deleted += 1
        if not self.result.errors:
            for rel in self._extraneous_top():
                self._remove(rel)

    def _remove(self, rel: str) -> None:
        path = self.target_root / rel
        if not inside(self.target_root, path):
            raise PathEscapeError(f"refusing to delete {path}: outside the target root")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        if not is_temp(path.name):
            self.journal.forget(rel)
            self.index.forget(rel)
        self.result.files_deleted += 1
        log.info("deleted %s (absent from the source)", rel)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _journal_done(rec: FileRecord | None, entry: FileEntry, dst: os.stat_result | None) -> bool:
    return (
        rec is not None
        and dst is not None
        and stat.S_ISREG(dst.st_mode)
        and (rec.src_size, rec.src_mtime_ns) == (entry.size, entry.mtime_ns)
        and (rec.dst_size, rec.dst_mtime_ns, rec.dst_ino)
        == (dst.st_size, dst.st_mtime_ns, dst.st_ino)
    )


def _describe(exc: BaseException, rel: str) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, ReplicastError):
        what = {28: "the target is full", 13: "permission denied", 30: "read-only file system"}
        reason = what.get(exc.errno or 0, exc.strerror or str(exc))
        return (
            f"cannot copy {rel!r}: {reason} ({exc.filename or rel}); free space or fix permissions"
        )
    return str(exc)
