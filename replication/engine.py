"""The delta engine: the built-in transport's run (:class:`DeltaEngine`), planned and pipelined.

Workers take files in priority order and build each new version in a temp file
beside the target (:class:`~replication.delta_transport.DeltaTransport`); a flusher
pool fsyncs and renames them in while the workers move on; a committer fsyncs the
directories and records the renamed files in the journal, in order. Usable only for
local targets.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Full, Queue

from forecasting.durable import fsync_dir
from forecasting.errors import PathEscapeError, ReplicastError
from replication.atomic import clean_stale_temps, is_temp
from replication.catalog import FileEntry, Segment, quick_equal
from replication.context import RunContext
from replication.crashpoints import crash_point
from replication.delta import LinkCodec
from replication.delta_transport import (
    DeltaTransport,
    FileOutcome,
    LinkContext,
    Prepared,
    TransferAborted,
)
from replication.journal import FileRecord
from replication.limits import concurrency_for
from replication.paths import Resolver, inside
from replication.request import SegmentResult
from replication.signatures import SignatureIndex
from replication.verify import hash_file, target_hash

log = logging.getLogger(__name__)

#: Above this link rate a local copy is faster whole than by delta (reading beats sending).
WHOLE_FILE_ABOVE = 1e9
#: Longest a renamed file waits for its directory fsync (and its journal record).
FLUSH_EVERY_S = 0.005
#: Threads that fsync prepared temp files (fsync waits on the disk, not the CPU).
FLUSHERS = 16
#: How often a thread waiting on the commit queue checks whether the run stopped on an error.
POLL_S = 0.1


@dataclass
class _Task:
    seg: SegmentResult
    entry: FileEntry
    check: bool  # content compare first (checksum mode)


class DeltaEngine:
    """One run of the delta transport: plan, copy in priority order, delete extraneous files."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.target_root = Path(ctx.target.path)
        self.index = SignatureIndex(ctx.state_dir / "signatures.sqlite")
        whole = ctx.request.whole_file
        if whole is None:
            whole = ctx.bandwidth is None or ctx.bandwidth >= WHOLE_FILE_ABOVE
        self.whole_file = whole
        self.codec = LinkCodec(ctx.zstd_level)
        # local delta is CPU-bound (fewer threads keep the hottest file fast); whole-file
        # copies wait on disk flushes (more threads overlap them)
        local = 4 if whole else 2
        rtt = ctx.rtt_ms
        self.concurrency = ctx.request.concurrency or (concurrency_for(rtt) if rtt else local)
        self.transport = DeltaTransport(ctx.source, self.target_root, self.index)
        self._lock = threading.Lock()
        self._remaining: dict[str, int] = {}
        self._commits: Queue[tuple[_Task, Prepared, Future[FileOutcome]] | None] = Queue(
            maxsize=2 * FLUSHERS
        )
        # fsyncs and renames prepared files (its threads start with the first file)
        self._flusher = ThreadPoolExecutor(FLUSHERS, thread_name_prefix="sync-fsync")
        # set on an error no single file explains (journal, directory fsync, index): every
        # thread stops, none waits on the commit queue for a thread that is gone
        self._abort = threading.Event()

    def run(self) -> None:
        """Run the transfers (fills ``ctx.result``)."""
        try:
            self._run()
        finally:
            self._flusher.shutdown()
            self.index.close()

    def _run(self) -> None:
        if not self.ctx.request.dry_run:
            self.target_root.mkdir(parents=True, exist_ok=True)
            removed = clean_stale_temps(self.target_root)
            if removed:
                log.info("removed %d temp file(s) left by an interrupted run", removed)
        tasks = self._plan()
        self.ctx.progress.update(
            force=True,
            state="running" if not self.ctx.request.dry_run else "dry-run",
            bytes_total=sum(t.entry.size for t in tasks),
            files_total=len(tasks),
            segments_total=len(self.ctx.result.segments),
        )
        if self.ctx.request.dry_run:
            self.ctx.result.planned = [t.entry.rel for t in tasks]
            self.ctx.result.planned += [f"delete {p}" for p in self._extraneous_all()]
            return
        queue = iter(tasks)
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
        self._put(None)
        committer.join()
        if self.ctx.request.delete and not self.ctx.result.stop_reason:
            self._delete_extraneous()

    # planning ---------------------------------------------------------------------
    def _plan(self) -> list[_Task]:
        tasks: list[_Task] = []
        journal = self.ctx.journal
        resolve = Resolver(self.target_root, what="target file")
        by_name = {s.name: s for s in self.ctx.segments}
        for seg in self.ctx.result.segments:
            if seg.error:
                seg.state = "failed"
                continue
            pending = 0
            for entry in by_name[seg.name].files:
                try:
                    _, dst_st = resolve.locate(entry.rel)
                except PathEscapeError as exc:
                    self._fail(seg, entry.rel, str(exc))
                    continue
                # quick check first: the journal is looked up only for the files it fails
                if not self.ctx.request.checksum and (
                    quick_equal(entry, dst_st)
                    or _journal_done(journal.get(entry.rel), entry, dst_st)
                ):
                    seg.files_skipped += 1
                    self.ctx.result.files_skipped += 1
                    continue
                tasks.append(_Task(seg, entry, check=self.ctx.request.checksum))
                pending += 1
            self._remaining[seg.name] = pending
            if pending == 0 and seg.state != "failed":
                seg.state = "skipped"
                seg.finished_s = 0.0
        return tasks

    # execution --------------------------------------------------------------------
    def _worker(self, queue: Iterator[_Task]) -> None:
        while not self._abort.is_set():
            with self._lock:
                reason = self.ctx.budget.stop_reason()
                if reason:
                    self.ctx.result.stop_reason = self.ctx.result.stop_reason or reason
                    return
                task = next(queue, None)
            if task is None:
                return
            try:
                self._do(task)
            except Exception as exc:  # not the file's fault (a state database, a bug): stop
                self._abort_run(f"copying {task.entry.rel!r}", exc)

    def _do(self, task: _Task) -> None:
        seg, entry = task.seg, task.entry
        self.ctx.progress.enter(seg.name)
        link = _RunLink(
            abort=self._abort,
            budget=self.ctx.budget,
            codec=self.codec,
            bucket=self.ctx.bucket,
            whole_file=self.whole_file,
            on_bytes=self._on_bytes,
            priority=seg.rank,
        )
        try:
            if task.check and self._same_content(entry, seg):
                self._done(seg, None)
                return
            prepared = self.transport.prepare(entry, link, durable=False)
        except TransferAborted as exc:
            with self._lock:
                self.ctx.result.stop_reason = self.ctx.result.stop_reason or str(exc)
            self.ctx.progress.leave(seg.name)
            return
        except (ReplicastError, OSError) as exc:
            self._failed_file(seg, entry.rel, exc)
            return
        # fsync and rename on the flusher pool (commit fsyncs first): this worker moves on
        # to the next (hotter) file while the disk flushes this one; the committer fsyncs
        # the directories and records the renamed files, in order
        renamed = self._flusher.submit(self.transport.commit, prepared, sync_dir=False, index=False)
        self._put((task, prepared, renamed))  # blocks while the committer is behind

    def _put(self, item: tuple[_Task, Prepared, Future[FileOutcome]] | None) -> None:
        """Queue ``item`` for the committer (waits while it is behind); dropped once the run
        stops on an error (a dropped file is renamed but not journaled: the next run checks it)."""
        while not self._abort.is_set():
            try:
                self._commits.put(item, timeout=POLL_S)
                return
            except Full:
                continue

    def _committer(self) -> None:
        """Records renamed files, in order, while the workers prepare the next ones.

        A flusher pool fsyncs each temp file and renames it in (in parallel: freeing the
        old version's blocks is the slow part of a rename over it). Directory fsyncs are
        batched here: renamed files are recorded as finished (journal,
        counters, segment completion) only after their directory was fsynced, once per
        directory for all the files renamed in the last :data:`FLUSH_EVERY_S` (or 64
        files), so a segment's completion is never held back longer than that. Any error
        here (the journal, a directory fsync, the signature index) stops the run.
        """
        renamed: list[tuple[_Task, Prepared, FileOutcome]] = []
        try:
            self._commit_loop(renamed)
        except Exception as exc:
            self._abort_run(f"committing {_names(renamed)}", exc)

    def _commit_loop(self, renamed: list[tuple[_Task, Prepared, FileOutcome]]) -> None:
        deadline = 0.0
        while not self._abort.is_set():
            try:
                wait = max(0.0, deadline - time.monotonic()) if renamed else POLL_S
                item = self._commits.get(timeout=wait)
            except Empty:
                if renamed:
                    self._flush(renamed)
                continue
            if item is None:
                self._flush(renamed)
                return
            task, prepared, done = item
            try:
                outcome = done.result()
                if not renamed:
                    deadline = time.monotonic() + FLUSH_EVERY_S
                renamed.append((task, prepared, outcome))
            except (ReplicastError, OSError) as exc:
                self._failed_file(task.seg, task.entry.rel, exc)
            if len(renamed) >= 64 or (renamed and time.monotonic() >= deadline):
                self._flush(renamed)

    def _flush(self, renamed: list[tuple[_Task, Prepared, FileOutcome]]) -> None:
        dirs = sorted({(self.target_root / task.entry.rel).parent for task, _, _ in renamed})
        # in parallel: concurrent fsyncs share the file system's journal commits
        list(self._flusher.map(_fsync_dir, dirs))
        with self.ctx.journal.batch():
            for task, _, outcome in renamed:
                crash_point("before_journal")
                self._record(task, outcome)
        # the new targets' signatures, in one transaction (a later delta's basis)
        self.index.put_many(
            [
                (task.entry.rel, outcome.dst_stat, prepared.signature)
                for task, prepared, outcome in renamed
                if outcome.dst_stat is not None
            ]
        )
        for task, _, outcome in renamed:
            self._done(task.seg, outcome)
        renamed.clear()

    def _record(self, task: _Task, outcome: FileOutcome) -> None:
        entry = task.entry
        self.ctx.journal.record(
            FileRecord(
                path=entry.rel,
                run_id=self.ctx.result.run_id,
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
                self.ctx.result.files_copied += 1
            else:
                seg.files_skipped += 1
                self.ctx.result.files_skipped += 1
        self.ctx.progress.update(files_done=1)
        self.ctx.progress.leave(seg.name)
        self._finish_file(seg)

    def _failed_file(self, seg: SegmentResult, rel: str, exc: BaseException) -> None:
        self._fail(seg, rel, _describe(exc, rel))
        self.ctx.progress.leave(seg.name)
        self._finish_file(seg)

    def _same_content(self, entry: FileEntry, seg: SegmentResult) -> bool:
        want, read = hash_file(self.ctx.source / entry.rel)
        got, read2 = target_hash(self.target_root / entry.rel, entry.rel, self.index)
        with self._lock:
            seg.bytes_read += read + read2
            self.ctx.result.bytes_read += read + read2
        self.ctx.progress.update(bytes_done=entry.size)
        return want == got

    def _add(self, seg: SegmentResult, out: FileOutcome) -> None:
        seg.bytes_read += out.bytes_read
        seg.bytes_sent += out.bytes_sent
        seg.bytes_written += out.bytes_written
        r = self.ctx.result
        r.bytes_read += out.bytes_read
        r.bytes_sent += out.bytes_sent
        r.bytes_written += out.bytes_written
        r.signature_bytes += out.signature_bytes
        r.literal_bytes += out.literal_bytes
        r.matched_bytes += out.matched_bytes
        r.retries += out.retries
        self.ctx.progress.update(bytes_sent=out.bytes_sent)

    def _on_bytes(self, n: int) -> None:
        self.ctx.progress.update(bytes_done=n)

    def _finish_file(self, seg: SegmentResult) -> None:
        with self._lock:
            self._remaining[seg.name] -= 1
            if self._remaining[seg.name] > 0:
                return
            seg.finished_s = time.monotonic() - self.ctx.started
            if seg.state != "failed":
                seg.state = "copied" if seg.files_copied else "skipped"
        self.ctx.progress.update(segments_done=1)

    def _abort_run(self, where: str, exc: Exception) -> None:
        """Stop the run on an error no single file explains: record it, stop every thread."""
        cause = str(exc) if isinstance(exc, ReplicastError) else f"{type(exc).__name__}: {exc}"
        message = f"sync stopped while {where}: {cause}"
        with self._lock:
            first = not self._abort.is_set()
            self._abort.set()
            if first:
                self.ctx.result.errors.append(message)
                self.ctx.result.stop_reason = self.ctx.result.stop_reason or message
        if first:
            self.ctx.progress.error(message)
            log.error("%s", message, exc_info=not isinstance(exc, ReplicastError | OSError))

    def _fail(self, seg: SegmentResult, rel: str, message: str) -> None:
        with self._lock:
            seg.state = "failed"
            seg.files_failed += 1
            seg.error = seg.error or message
            self.ctx.result.errors.append(f"{seg.name}: {message}")
        self.ctx.progress.error(f"{seg.name}: {message}")
        log.error("segment %s: %s", seg.name, message)

    # deletion ---------------------------------------------------------------------
    def _extraneous(self, seg: Segment) -> list[str]:
        base = self.target_root / seg.name
        if not base.is_dir() or base.is_symlink():
            return []
        keep = {f.rel for f in seg.files}
        found: list[str] = []
        _target_entries(str(base), seg.name, found)
        return sorted(rel for rel in found if rel not in keep)

    def _extraneous_top(self) -> list[str]:
        if self.ctx.request.segment_pattern or not self.target_root.is_dir():
            return []
        names = {s.name for s in self.ctx.segments}
        return sorted(e.name for e in os.scandir(self.target_root) if e.name not in names)

    def _extraneous_all(self) -> list[str]:
        if not self.ctx.request.delete:
            return []
        out = self._extraneous_top()
        for seg in self.ctx.segments:
            if not seg.error:
                out += self._extraneous(seg)
        return out

    def _delete_extraneous(self) -> None:
        by_name = {s.name: s for s in self.ctx.segments}
        for seg in self.ctx.result.segments:
            if seg.state in ("copied", "skipped"):
                for rel in self._extraneous(by_name[seg.name]):
                    self._remove(rel)
                    seg.files_deleted += 1
        if not self.ctx.result.errors:
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
            self.ctx.journal.forget(rel)
            self.index.forget(rel)
        self.ctx.result.files_deleted += 1
        log.info("deleted %s (absent from the source)", rel)


@dataclass
class _RunLink(LinkContext):
    """A transfer's link that also stops the transfer when the run stops on an error."""

    abort: threading.Event | None = None

    def check(self) -> None:
        if self.abort is not None and self.abort.is_set():
            raise TransferAborted("the run stopped on an error")
        super().check()


def _fsync_dir(path: Path) -> None:
    """:func:`fsync_dir` after its crash point; an error names the directory."""
    try:
        crash_point("before_dir_fsync")
        fsync_dir(path)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot fsync directory {path}: {exc.strerror}") from exc


def _names(renamed: list[tuple[_Task, Prepared, FileOutcome]]) -> str:
    """The files of a commit batch, for an error message."""
    rels = [repr(task.entry.rel) for task, _, _ in renamed]
    if not rels:
        return "the copied files"
    return ", ".join(rels[:3]) + (f" and {len(rels) - 3} more" if len(rels) > 3 else "")


def _target_entries(directory: str, rel_dir: str, out: list[str]) -> None:
    """Append every entry under ``directory`` but the directories (symlinks to directories
    included, not followed) to ``out``, as paths relative to the target root."""
    try:
        it = os.scandir(directory)
    except OSError:  # unreadable: skipped, as os.walk skips it
        return
    with it:
        for entry in it:
            rel = f"{rel_dir}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                _target_entries(entry.path, rel, out)
            else:
                out.append(rel)


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
