"""The rsync transport: drives the real ``rsync`` binary, local or ``host:path`` over ssh.

rsync sorts each file list by name, so priority order comes from successive batches:
one ``rsync --files-from`` call per batch of segments in rank order (1, 1, 2, 4, ...
segments: the hottest go alone, the tail shares calls; on an unlimited local link the
hottest, then the rest). ``--partial-dir`` lets an
interrupted file resume; the journal lets a resumed run skip finished segments; a
final ``--delete --existing --ignore-existing`` pass removes extraneous files.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from forecasting.errors import ConfigError, PathEscapeError
from replication.catalog import FileEntry, quick_equal
from replication.context import RunContext
from replication.journal import FileRecord, Journal
from replication.limits import Budget
from replication.paths import Endpoint, resolve_under
from replication.progress import SyncProgress
from replication.request import SegmentResult, SyncRequest, SyncResult

log = logging.getLogger(__name__)

PARTIAL_DIR = ".rsync-partial"
_STAT = re.compile(r"^(Total bytes sent|Total bytes received|Literal data|Matched data|"
                   r"Total transferred file size): ([\d,]+)")  # fmt: skip
_SEP = "::replicast:: "  # rsync escapes control characters, so a printable marker


@dataclass
class RsyncStats:
    """Counters parsed from ``rsync --stats``."""

    sent: int = 0
    received: int = 0
    literal: int = 0
    matched: int = 0
    transferred: int = 0
    done_at: dict[str, float] = field(default_factory=dict)  # file -> seconds since start


def rsync_binary() -> str:
    """Path of ``rsync``; a clear error when it is not installed."""
    path = shutil.which("rsync")
    if path is None:
        raise ConfigError(
            "rsync is not installed; apt-get install rsync (or use --transport delta)"
        )
    return path


def batches(segments: list[SegmentResult], *, limited: bool = True) -> list[list[SegmentResult]]:
    """Split ranked segments into calls of 1, 1, 2, 4, 8 ... segments (at most 64).

    On an unlimited local link a call's start-up (tens of ms) outweighs the order within
    the tail, which copies in a fraction of a second: the hottest segment goes alone,
    the rest in one call.
    """
    if not limited:
        return [part for part in (segments[:1], segments[1:]) if part]
    out, i, size = [], 0, 1
    while i < len(segments):
        out.append(segments[i : i + size])
        i += size
        if len(out) > 1:
            size = min(64, size * 2)
    return out


def base_args(ctx: RunContext) -> list[str]:
    """rsync options shared by every call of a run."""
    request, endpoint = ctx.request, ctx.target
    args = [rsync_binary(), "-a", f"--partial-dir={PARTIAL_DIR}", "--stats"]
    if request.checksum:
        args.append("--checksum")
    elif not endpoint.is_remote:
        args.append("--ignore-times")  # listed files failed our ns quick check already
    else:  # rsync's own quick check, as precise as ours: a same-size rewrite within the
        # second of the last copy is a change (rsync's default compares whole seconds)
        args.append("--modify-window=-1")
    whole = request.whole_file
    if whole is None:
        whole = not endpoint.is_remote and ctx.bandwidth is None
    args.append("--whole-file" if whole else "--no-whole-file")
    level = ctx.zstd_level
    if level and not whole:
        args += ["-z", "--compress-choice=zstd", f"--compress-level={level}"]
    if request.bwlimit:
        args.append(f"--bwlimit={max(1, int(request.bwlimit // 1024))}")
    if request.rsh:
        args += ["-e", request.rsh]
    return args


def _dst_spec(endpoint: Endpoint) -> str:
    """The target operand: a relative local path gets ``./`` so rsync never reads it as an
    option (``-e...``) nor as ``host:path`` (a ``:`` after a ``/`` is local to rsync)."""
    spec = str(endpoint)
    if endpoint.host is None and not spec.startswith(("/", "./", "../")):
        spec = f"./{spec}"
    return spec if spec.endswith("/") else f"{spec}/"


def _src_spec(source: Path) -> str:
    """The source operand (``dir/``), prefixed like :func:`_dst_spec` when relative."""
    spec = str(source)
    if not source.is_absolute() and not spec.startswith(("./", "../")):
        spec = f"./{spec}"
    return f"{spec}/"


def run_rsync(ctx: RunContext) -> None:
    """Execute a run with the rsync transport (fills ``ctx.result``)."""
    request, endpoint, source = ctx.request, ctx.target, ctx.source
    result, tracker, journal, budget = ctx.result, ctx.progress, ctx.journal, ctx.budget
    args = base_args(ctx)
    by_name = {s.name: s for s in ctx.segments}
    done = journal.all()
    pending: dict[str, list[FileEntry]] = {}
    for seg in result.segments:
        if seg.error:
            seg.state = "failed"
            continue
        files = []
        try:
            for entry in by_name[seg.name].files:
                if _up_to_date(request, endpoint, entry, done.get(entry.rel)):
                    seg.files_skipped += 1
                    result.files_skipped += 1
                else:
                    files.append(entry)
        except PathEscapeError as exc:
            seg.state, seg.error = "failed", str(exc)
            continue
        if files:
            pending[seg.name] = files
        else:
            seg.state, seg.finished_s = "skipped", 0.0
    todo = [s for s in result.segments if s.name in pending]
    tracker.update(
        force=True,
        state="running" if not request.dry_run else "dry-run",
        bytes_total=sum(f.size for files in pending.values() for f in files),
        files_total=sum(len(files) for files in pending.values()),
        segments_total=len(result.segments),
    )
    if request.dry_run:
        result.planned = [f.rel for s in todo for f in pending[s.name]]
        if request.delete:
            result.planned += [f"delete {p}" for p in _delete_pass(args, source, endpoint, True)]
        return
    t0 = time.monotonic()
    limited = ctx.bandwidth is not None or endpoint.is_remote
    for batch in batches(todo, limited=limited):
        reason = budget.stop_reason()
        if reason:
            result.stop_reason = reason
            break
        files = [f for seg in batch for f in pending[seg.name]]
        for seg in batch:
            tracker.enter(seg.name)
        rc, stats, errors = _call(args, source, endpoint, files, budget, tracker, t0)
        for seg in batch:
            tracker.leave(seg.name)
        result.bytes_sent += stats.sent
        result.signature_bytes += stats.received
        result.literal_bytes += stats.literal
        result.matched_bytes += stats.matched
        result.bytes_read += stats.transferred
        result.bytes_written += stats.transferred
        budget.add_sent(stats.sent)
        if rc in (20, 30) or (rc != 0 and budget.must_abort()):
            result.stop_reason = budget.stop_reason() or f"rsync stopped (exit {rc})"
            break
        _settle(batch, pending, rc, errors, stats, result, journal, endpoint, t0)
        tracker.update(segments_done=len(batch))
    if request.delete and not result.stop_reason and not result.errors:
        result.files_deleted = len(_delete_pass(args, source, endpoint, False))


def _up_to_date(
    request: SyncRequest, endpoint: Endpoint, entry: FileEntry, rec: FileRecord | None
) -> bool:
    if request.checksum:
        return False
    if endpoint.is_remote:  # trust the journal: same source version already shipped
        return rec is not None and (rec.src_size, rec.src_mtime_ns) == (entry.size, entry.mtime_ns)
    try:
        st = os.lstat(resolve_under(endpoint.path, entry.rel, what="target file"))
    except (FileNotFoundError, NotADirectoryError):
        return False
    return quick_equal(entry, st)


def _call(
    args: list[str],
    source: Path,
    endpoint: Endpoint,
    files: list[FileEntry],
    budget: Budget,
    tracker: SyncProgress,
    t0: float,
) -> tuple[int, RsyncStats, list[str]]:
    stats = RsyncStats()
    sizes = {f.rel: f.size for f in files}
    with tempfile.NamedTemporaryFile("w", suffix=".files", delete=False) as listing:
        listing.write("\n".join(f.rel for f in files) + "\n")
    cmd = [*args, f"--files-from={listing.name}", f"--out-format={_SEP}%n",
           "--", _src_spec(source), _dst_spec(endpoint)]  # fmt: skip
    log.debug("running %s", shlex.join(cmd))
    errors: list[str] = []
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    err_reader = threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)
    err_reader.start()
    watchdog = threading.Thread(target=_watch, args=(proc, budget), daemon=True)
    watchdog.start()
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith(_SEP):
                name = line[len(_SEP) :]
                if name in sizes:  # directories are listed too
                    stats.done_at[name] = time.monotonic() - t0
                    tracker.update(bytes_done=sizes[name], files_done=1)
                continue
            match = _STAT.match(line)
            if match:
                value = int(match[2].replace(",", ""))
                key = {"Total bytes sent": "sent", "Total bytes received": "received",
                       "Literal data": "literal", "Matched data": "matched",
                       "Total transferred file size": "transferred"}[match[1]]  # fmt: skip
                setattr(stats, key, value)
        rc = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err_reader.join(timeout=5)
        os.unlink(listing.name)
    return rc, stats, [e.strip() for e in errors if e.strip()]


def _watch(proc: subprocess.Popen, budget: Budget) -> None:
    while proc.poll() is None:
        if budget.must_abort():
            proc.terminate()  # rsync keeps the partial file in --partial-dir
            return
        time.sleep(0.05)


def _settle(
    batch: list[SegmentResult],
    pending: dict[str, list[FileEntry]],
    rc: int,
    errors: list[str],
    stats: RsyncStats,
    result: SyncResult,
    journal: Journal,
    endpoint: Endpoint,
    t0: float,
) -> None:
    now = time.monotonic() - t0
    for seg in batch:
        files = pending[seg.name]
        mine = [e for e in errors if any(f.rel in e for f in files) or f"/{seg.name}" in e]
        if rc != 0 and (mine or len(batch) == 1):
            seg.state = "failed"
            seg.files_failed = len(files)
            seg.error = f"rsync exit {rc}: " + " | ".join((mine or errors)[:3])
            result.errors.append(f"{seg.name}: {seg.error}")
            continue
        seg.state = "copied"
        seg.files_copied = len(files)
        seg.bytes_written = sum(f.size for f in files)
        times = [stats.done_at[f.rel] for f in files if f.rel in stats.done_at]
        seg.finished_s = max(times) if len(times) == len(files) else now
        result.files_copied += len(files)
        for f in files:
            dst = None
            if not endpoint.is_remote:
                try:
                    dst = os.stat(Path(endpoint.path) / f.rel)
                except FileNotFoundError:
                    dst = None
            journal.record(
                FileRecord(f.rel, result.run_id, f.size, f.mtime_ns,
                           dst.st_size if dst else None, dst.st_mtime_ns if dst else None,
                           dst.st_ino if dst else None, None)
            )  # fmt: skip
    if rc != 0 and not any(s.state == "failed" for s in batch):
        result.errors.append(f"rsync exit {rc}: " + " | ".join(errors[:3]))


def _delete_pass(args: list[str], source: Path, endpoint: Endpoint, dry: bool) -> list[str]:
    """Remove (or with ``dry`` list) target files absent from the source; nothing is copied."""
    cmd = [a for a in args if a != "--stats"]
    cmd += ["-r", "--delete", "--existing", "--ignore-existing", f"--out-format={_SEP}%i %n"]
    if dry:
        cmd.append("--dry-run")
    cmd += ["--", _src_spec(source), _dst_spec(endpoint)]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        log.warning("rsync delete pass failed (exit %d): %s", proc.returncode, proc.stderr[:500])
    out = []
    for line in proc.stdout.splitlines():
        if "deleting" in line:
            name = line.split("deleting", 1)[1].strip()
            if not name.endswith("/"):
                out.append(name)
    return out
