"""The built-in delta transport: local source to local target, one file at a time.

Per file: stat the source, build the new version in a temp file beside the target
(from block matches of the old target plus literals, or whole when there is no usable
basis or delta is off), verify the whole-file hash of what was written against the
source's, check the source did not change meanwhile (else retry), then rename it in
(:mod:`replication.atomic`) and store the new target's signature in the index.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from forecasting.errors import SyncError
from replication.atomic import AtomicWriter
from replication.catalog import FileEntry
from replication.checksum import file_hasher
from replication.delta import Copy, LinkCodec, Literal, plan_delta, rebuilt_signature
from replication.limits import Budget, TokenBucket
from replication.paths import Resolver
from replication.signatures import (
    Signature,
    SignatureBuilder,
    SignatureIndex,
    signature_of_file,
)

log = logging.getLogger(__name__)

MAX_TRIES = 3
MAX_DELTA_FILE = 1 << 30  # larger files go whole (the delta holds the source in memory)
_CHUNK = 1 << 20
_HASH_BYTES = 16


class TransferAborted(SyncError):
    """Cancel or the time budget stopped a transfer; the target was left untouched."""


class _SourceChanged(Exception):
    pass


class _HashMismatch(Exception):
    pass


@dataclass
class FileOutcome:
    """What one file transfer did."""

    rel: str
    method: str  # "whole" or "delta"
    bytes_read: int = 0
    bytes_sent: int = 0
    bytes_written: int = 0
    literal_bytes: int = 0
    matched_bytes: int = 0
    signature_bytes: int = 0
    retries: int = 0
    hash: str = ""
    dst_stat: os.stat_result | None = None


@dataclass
class LinkContext:
    """The link a transfer uses: rate limit, budget, zstd level, delta on/off, progress hook."""

    budget: Budget
    codec: LinkCodec = field(default_factory=lambda: LinkCodec(0))
    bucket: TokenBucket | None = None
    whole_file: bool = False
    on_bytes: Callable[[int], None] | None = None
    on_read: Callable[[Path, int], None] | None = None  # test seam: after each source read
    priority: int = 0  # rank of the segment (lower = hotter: goes first on a limited link)

    def send(self, n: int, cancel: threading.Event | None = None) -> None:
        if self.bucket is not None:
            self.bucket.consume(n, cancel, self.priority)
        self.budget.add_sent(n)

    def check(self) -> None:
        if self.budget.must_abort():
            raise TransferAborted(self.budget.stop_reason() or "stopped")


@dataclass
class Prepared:
    """A verified new version waiting in its temp file for :meth:`DeltaTransport.commit`."""

    outcome: FileOutcome
    writer: AtomicWriter
    signature: Signature
    source_stat: os.stat_result

    def abort(self) -> None:
        self.writer.abort()


def _key(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


class DeltaTransport:
    """Copies files of a local source root to a local target root."""

    name = "delta"

    def __init__(self, source_root: Path, target_root: Path, index: SignatureIndex) -> None:
        self.source_root = source_root
        self.target_root = target_root
        self.index = index
        self._src = Resolver(source_root, what="source file")
        self._dst = Resolver(target_root, what="target file")

    def transfer(self, entry: FileEntry, ctx: LinkContext) -> FileOutcome:
        """Bring the target copy of ``entry`` up to date, atomically (prepare + commit)."""
        return self.commit(self.prepare(entry, ctx))

    def prepare(self, entry: FileEntry, ctx: LinkContext, durable: bool = True) -> Prepared:
        """Build, verify and fsync the new version in a temp file beside the target.

        ``durable=False`` leaves the fsync to the caller (:meth:`sync`, e.g. on another
        thread so flushes overlap with building the next file); :meth:`commit` does it
        if nobody did.

        The target is untouched until :meth:`commit` (or :meth:`Prepared.abort`).

        Raises:
            PathEscapeError: the file resolves outside its root on either side.
            TransferAborted: cancelled or out of time (target untouched).
            SyncError: the source kept changing, or vanished.
            OSError: the target is unwritable or full (target untouched).
        """
        src = self._src(entry.rel)
        dst = self._dst(entry.rel)
        retries = 0
        whole = ctx.whole_file
        for _ in range(MAX_TRIES):
            try:
                prepared = self._once(entry.rel, src, dst, ctx, whole)
                prepared.outcome.retries = retries
                if durable:
                    self.sync(prepared)
                return prepared
            except _HashMismatch:
                retries += 1
                whole = True
                log.warning(
                    "whole-file hash of %s differs after the rebuild; resending whole", entry.rel
                )
            except _SourceChanged:
                retries += 1
                log.info("source %s changed during the copy; retrying", entry.rel)
            except FileNotFoundError as exc:
                if not src.exists():
                    raise SyncError(
                        f"source file {entry.rel!r} vanished during the run; "
                        "it is copied by the next run if it comes back"
                    ) from exc
                raise
        raise SyncError(
            f"source file {entry.rel!r} changed during each of {MAX_TRIES} copies; "
            "nothing was shipped torn; run the sync again when the writer is idle"
        )

    @staticmethod
    def sync(prepared: Prepared) -> None:
        """fsync the temp file, set its mode and times (fsync releases the GIL: call it on
        several threads to overlap flushes); the prepared file is aborted on failure."""
        st0 = prepared.source_stat
        try:
            prepared.writer.sync(
                mode=st0.st_mode, atime_ns=st0.st_atime_ns, mtime_ns=st0.st_mtime_ns
            )
        except BaseException:
            prepared.abort()
            raise

    def commit(self, prepared: Prepared, sync_dir: bool = True, index: bool = True) -> FileOutcome:
        """fsync, rename in, fsync the directory (unless the caller batches that), and
        index the new target's signature (unless the caller batches that: ``index=False``,
        then :meth:`SignatureIndex.put_many` the outcome's ``dst_stat`` and the prepared
        signature)."""
        out, st0 = prepared.outcome, prepared.source_stat
        try:
            out.dst_stat = prepared.writer.commit(
                mode=st0.st_mode,
                atime_ns=st0.st_atime_ns,
                mtime_ns=st0.st_mtime_ns,
                sync_dir=sync_dir,
            )
        except BaseException:
            prepared.abort()
            raise
        out.bytes_written = prepared.writer.written
        if index:
            self.index.put(out.rel, out.dst_stat, prepared.signature)
        return out

    def _once(self, rel: str, src: Path, dst: Path, ctx: LinkContext, whole: bool) -> Prepared:
        st0 = os.stat(src)
        try:
            basis = os.lstat(dst)
        except (FileNotFoundError, NotADirectoryError):  # the writer makes the directory
            basis = None
        usable = basis is not None and stat.S_ISREG(basis.st_mode) and basis.st_size > 0
        use_delta = usable and not whole and st0.st_size <= MAX_DELTA_FILE
        writer = AtomicWriter(dst)
        try:
            if use_delta:
                out, new_sig = self._delta(rel, src, st0, dst, basis, writer, ctx)
            else:
                out, new_sig = self._whole(rel, src, writer, ctx)
            if _key(os.stat(src)) != _key(st0):
                raise _SourceChanged
        except BaseException:
            writer.abort()
            raise
        return Prepared(out, writer, new_sig, st0)

    def _whole(
        self, rel: str, src: Path, writer: AtomicWriter, ctx: LinkContext
    ) -> tuple[FileOutcome, Signature]:
        out = FileOutcome(rel, "whole")
        # block sums only matter to a later delta: none on links where delta is off
        builder = SignatureBuilder(os.path.getsize(src), blocks=not ctx.whole_file)
        received = file_hasher()
        with open(src, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                ctx.check()
                out.bytes_read += len(chunk)
                if ctx.on_read:
                    ctx.on_read(src, out.bytes_read)
                builder.update(chunk)
                wire, op = ctx.codec.transmit(Literal(chunk))
                ctx.send(wire, ctx.budget.cancel)
                out.bytes_sent += wire
                data = op.data
                received.update(data)
                writer.write(data)
                if ctx.on_bytes:
                    ctx.on_bytes(len(chunk))
        sig = builder.finish()
        out.literal_bytes = out.bytes_read
        out.bytes_sent += _HASH_BYTES
        self._verify(rel, sig.file_hash, received.hexdigest())
        out.hash = sig.file_hash
        return out, sig

    def _delta(
        self,
        rel: str,
        src: Path,
        st0: os.stat_result,
        dst: Path,
        basis_st: os.stat_result,
        writer: AtomicWriter,
        ctx: LinkContext,
    ) -> tuple[FileOutcome, Signature]:
        out = FileOutcome(rel, "delta")
        with open(src, "rb") as fh:
            data = fh.read()
        out.bytes_read += len(data)
        if ctx.on_read:
            ctx.on_read(src, out.bytes_read)
        if _key(os.stat(src)) != _key(st0):
            raise _SourceChanged
        sig = self.index.get(rel, basis_st)
        if sig is None:
            sig, read = signature_of_file(dst)
            out.bytes_read += read
        out.signature_bytes = sig.wire_bytes
        source_hash = file_hasher()
        source_hash.update(data)
        ops = plan_delta(data, sig)
        received = file_hasher()
        done = 0
        with open(dst, "rb") as basis:
            for op in ops:
                ctx.check()
                wire, op = ctx.codec.transmit(op)
                ctx.send(wire, ctx.budget.cancel)
                out.bytes_sent += wire
                if isinstance(op, Copy):
                    start = op.block * sig.block_size
                    length = min(sig.size, (op.block + op.count) * sig.block_size) - start
                    out.matched_bytes += length
                    for off in range(start, start + length, 4 * _CHUNK):
                        piece = os.pread(basis.fileno(), min(4 * _CHUNK, start + length - off), off)
                        out.bytes_read += len(piece)
                        received.update(piece)
                        writer.write(piece)
                    step = length
                else:
                    out.literal_bytes += len(op.data)
                    received.update(op.data)
                    writer.write(op.data)
                    step = len(op.data)
                done += step
                if ctx.on_bytes:
                    ctx.on_bytes(step)
        out.bytes_sent += _HASH_BYTES
        self._verify(rel, source_hash.hexdigest(), received.hexdigest())
        out.hash = source_hash.hexdigest()
        return out, rebuilt_signature(ops, sig, data, out.hash)

    @staticmethod
    def _verify(rel: str, expected: str, got: str) -> None:
        if expected != got:  # the basis changed under us, or a strong-hash collision
            raise _HashMismatch(rel)
