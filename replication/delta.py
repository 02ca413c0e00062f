"""The rsync-like delta: which blocks of the old target the new source reuses, and the literals.

:func:`plan_delta` walks the source once. At each position it first tries the block
that would follow the previous match (data unchanged, or shifted as a whole) and the
block aligned with the position (in-place rewrites), hashing runs of blocks in batches;
then it probes whether the chain resumes a few blocks further on (pages rewritten in
place); only where none of that matches does it run the vectorised rolling-checksum
search over a window that grows while nothing matches, so inserted bytes that shift
the rest of the file cost only the inserted region plus one window, never a whole-file
resend.

:class:`DeltaEncoder` turns the plan into wire records (literals through a streaming
zstd context, level from :func:`replication.links.zstd_level_for`); :class:`DeltaDecoder` reads them
back; :class:`LinkCodec` is both ends of one link, its context shared by all files.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import zstandard

from replication.checksum import WeakIndex, strong, weak_blocks, weak_rolling
from replication.signatures import Signature, block_size_for, signature_of_bytes

_FIRST_WINDOW_BLOCKS = 8
_REWRITE_SPAN = 32 << 10  # rewritten pages up to this size are skipped by probing
_MAX_WINDOW = 256 << 10
MAX_LITERAL = 1 << 20
_COPY = struct.Struct("<cII")
_LIT = struct.Struct("<cII")  # kind, raw length, payload length


@dataclass(frozen=True)
class Copy:
    """Reuse ``count`` consecutive blocks of the old file starting at block ``block``."""

    block: int
    count: int


@dataclass(frozen=True)
class Literal:
    """New bytes, sent over the link."""

    data: bytes | memoryview


Op = Copy | Literal


class _Matcher:
    def __init__(self, sig: Signature) -> None:
        self.sig = sig
        self.block = sig.block_size
        self.full = len(sig.weak)
        self.strong = sig.strong.tolist()
        self.index = WeakIndex(sig.weak)

    def run(self, view: memoryview, pos: int, j: int) -> int:
        """How many consecutive blocks, from block ``j`` on, equal the source from ``pos`` on.

        Blocks are hashed in batches that double while they all match, so an unchanged
        stretch costs one strong hash per block and almost no Python per block.
        """
        block, n, blocks = self.block, len(view), self.sig.blocks
        count, batch = 0, 8
        while j + count < blocks:
            p = pos + count * block
            k = min(batch, self.full - (j + count), (n - p) // block)
            if k > 0:
                got = [strong(view[q : q + block]) for q in range(p, p + k * block, block)]
                want = self.strong[j + count : j + count + k]
                if got != want:
                    return count + next(
                        i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w
                    )
                count += k
                batch = min(4096, batch * 2)
                continue
            last = j + count  # the short tail block, or nothing left to compare
            length = self.sig.block_len(last)
            if (
                length < block
                and p + length <= n
                and strong(view[p : p + length]) == self.strong[last]
            ):
                count += 1
            break
        return count

    def span(self, j: int, count: int) -> int:
        """Bytes of ``count`` blocks from block ``j`` (the tail block may be short)."""
        return min(self.sig.size, (j + count) * self.block) - j * self.block

    def search(self, view: memoryview, pos: int) -> tuple[int, int] | None:
        """First (offset >= pos, block) whose full block matches, scanning windows."""
        block = self.block
        n = len(view)
        window = _FIRST_WINDOW_BLOCKS * block
        if self.full == 0:
            return None
        while pos + block <= n:
            end = min(n, pos + window + block - 1)
            weaks = weak_rolling(view[pos:end], block)
            for off in self.index.candidates(weaks).tolist():
                k = pos + off
                digest = strong(view[k : k + block])
                for j in self.index.blocks(int(weaks[off])):
                    if self.strong[j] == digest:
                        return k, j
            pos += len(weaks)
            window = min(_MAX_WINDOW, window * 2)
        return None


def plan_delta(source: bytes | memoryview, sig: Signature) -> list[Op]:
    """Ops that rebuild ``source`` from the file described by ``sig``.

    Args:
        source: the new content (in memory).
        sig: signature of the old target file (the basis).
    """
    view = memoryview(source)
    n = len(view)
    matcher = _Matcher(sig)
    block = sig.block_size
    ops: list[Op] = []
    pos = lit_start = 0
    expect = 0

    def emit_copy(j: int, count: int, start: int) -> int:
        if start > lit_start:
            ops.extend(_literals(view, lit_start, start))
        last = ops[-1] if ops else None
        if isinstance(last, Copy) and last.block + last.count == j:
            ops[-1] = Copy(last.block, last.count + count)
        else:
            ops.append(Copy(j, count))
        return start + matcher.span(j, count)

    while pos < n:
        j = expect
        count = matcher.run(view, pos, j)
        if not count and pos % block == 0 and pos // block != expect:
            j = pos // block
            count = matcher.run(view, pos, j)
        if not count:  # rewritten in place: the chain resumes a few blocks further on
            for skip in range(1, max(4, _REWRITE_SPAN // block) + 1):
                count = matcher.run(view, pos + skip * block, j + skip)
                if count:
                    pos, j = pos + skip * block, j + skip
                    break
        if not count:
            found = matcher.search(view, pos)
            if found is None:
                break
            pos, j = found
            count = matcher.run(view, pos, j)
        pos = lit_start = emit_copy(j, count, pos)
        expect = j + count
    if lit_start < n:
        ops.extend(_literals(view, lit_start, n))
    return ops


def _literals(view: memoryview, start: int, stop: int) -> Iterator[Literal]:
    for i in range(start, stop, MAX_LITERAL):
        yield Literal(view[i : min(stop, i + MAX_LITERAL)])


class DeltaEncoder:
    """Encodes ops as wire records; literals share one streaming zstd context (``level`` 0: raw)."""

    def __init__(self, level: int) -> None:
        self.level = level
        self._zc = zstandard.ZstdCompressor(level=level).compressobj() if level > 0 else None

    def encode(self, op: Op) -> bytes:
        if isinstance(op, Copy):
            return _COPY.pack(b"C", op.block, op.count)
        raw = op.data
        if self._zc is None:
            return _LIT.pack(b"L", len(raw), len(raw)) + bytes(raw)
        payload = self._zc.compress(raw) + self._zc.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        return _LIT.pack(b"Z", len(raw), len(payload)) + payload


class DeltaDecoder:
    """Reads wire records back into ops (literals decompressed)."""

    def __init__(self) -> None:
        self._zd = zstandard.ZstdDecompressor().decompressobj()

    def decode(self, record: bytes) -> Op:
        kind, a, b = _COPY.unpack_from(record)
        if kind == b"C":
            return Copy(a, b)
        payload = memoryview(record)[_LIT.size :]
        if len(payload) != b:
            raise ValueError(f"literal record: {len(payload)} payload bytes, header says {b}")
        data = bytes(payload) if kind == b"L" else self._zd.decompress(payload)
        if len(data) != a:
            raise ValueError(f"literal record: {len(data)} bytes after decoding, header says {a}")
        return Literal(data)


class LinkCodec:
    """Both ends of one link's stream: every transfer on the link shares one zstd context.

    Like rsync's single compressed session stream, literals of one file help compress
    the next. Thread-safe: records of concurrent transfers interleave on the link.
    """

    def __init__(self, level: int) -> None:
        self.level = level
        self._enc = DeltaEncoder(level)
        self._dec = DeltaDecoder()
        self._lock = threading.Lock()

    def transmit(self, op: Op) -> tuple[int, Op]:
        """Encode ``op`` for the link and decode it on the far side: (wire bytes, op)."""
        if isinstance(op, Literal) and self.level == 0:
            return _LIT.size + len(op.data), op  # raw: the far side gets the same bytes
        with self._lock:
            record = self._enc.encode(op)
            return len(record), self._dec.decode(record)


def literal_bytes(ops: list[Op]) -> int:
    """Raw bytes carried as literals."""
    return sum(len(op.data) for op in ops if isinstance(op, Literal))


def apply_ops(ops: list[Op], basis: bytes | memoryview, sig: Signature) -> bytes:
    """Rebuild the new file in memory (reference implementation, used by tests)."""
    out = bytearray()
    for op in ops:
        if isinstance(op, Copy):
            start = op.block * sig.block_size
            stop = min(sig.size, (op.block + op.count) * sig.block_size)
            out += basis[start:stop]
        else:
            out += op.data
    return bytes(out)


def rebuilt_signature(ops: list[Op], basis: Signature, data: bytes, file_hash: str) -> Signature:
    """Signature of ``data``, the file ``ops`` rebuild from the file ``basis`` describes.

    Equal to :func:`~replication.signatures.signature_of_bytes` of ``data``, computed
    cheaply: a full block of the new file that a copy took whole from a full block of the
    old one (same block grid: in-place page rewrites, appends) keeps that block's sums;
    only the others are summed again. Falls back to a full pass when the block size
    changes with the new file size.

    Args:
        ops: the plan that rebuilt ``data`` (from :func:`plan_delta`).
        basis: signature of the old file.
        data: the new content.
        file_hash: the whole-file hash of ``data`` (already computed by the caller).
    """
    n = len(data)
    bs = basis.block_size
    if not basis.has_blocks or block_size_for(n) != bs:
        return signature_of_bytes(data)
    full = n // bs
    weak = np.empty(full, dtype=np.uint32)
    strongs = np.empty(full + (n % bs > 0), dtype=np.uint64)
    known = np.zeros(full, dtype=bool)
    old_full = len(basis.weak)
    pos = 0
    for op in ops:
        if isinstance(op, Literal):
            pos += len(op.data)
            continue
        length = min(basis.size, (op.block + op.count) * bs) - op.block * bs
        if pos % bs == 0:
            k0 = pos // bs
            m = min(op.count, full - k0, old_full - op.block, length // bs)
            if m > 0:
                weak[k0 : k0 + m] = basis.weak[op.block : op.block + m]
                strongs[k0 : k0 + m] = basis.strong[op.block : op.block + m]
                known[k0 : k0 + m] = True
        pos += length
    view = memoryview(data)
    missing = np.flatnonzero(~known)
    if len(missing):
        # runs of consecutive blocks to sum again, one vectorised call per run
        breaks = np.flatnonzero(np.diff(missing) != 1) + 1
        for run in np.split(missing, breaks):
            a, b = int(run[0]), int(run[-1]) + 1
            weak[a:b] = weak_blocks(view[a * bs : b * bs], bs)
            for k in range(a, b):
                strongs[k] = strong(view[k * bs : (k + 1) * bs])
    if n % bs:
        strongs[full] = strong(view[full * bs :])
    return Signature(size=n, block_size=bs, weak=weak, strong=strongs, file_hash=file_hash)
