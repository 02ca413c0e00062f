"""The rsync-like delta: which blocks of the old target the new source reuses, and the literals.

:func:`plan_delta` walks the source once. At each position it first tries the block
that would follow the previous match (data unchanged, or shifted as a whole) and the
block aligned with the position (in-place rewrites), each a single strong-hash call;
only where neither matches does it run the vectorised rolling-checksum search over a
window that grows while nothing matches, so inserted bytes that shift the rest of the
file cost only the inserted region plus one window, never a whole-file resend.

:class:`DeltaEncoder` turns the plan into wire records (literals through one streaming
zstd context per file, level from :func:`zstd_level_for`); :class:`DeltaDecoder`
reads them back.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import zstandard

from replication.checksum import WeakIndex, strong, weak_rolling
from replication.signatures import Signature

_FIRST_WINDOW_BLOCKS = 8
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


def zstd_level_for(bandwidth: float | None) -> int:
    """zstd level for a link of ``bandwidth`` bytes/s: 0 (no compression) on fast local links.

    Faster links get cheaper levels so compressing never becomes the bottleneck.
    """
    if bandwidth is None or bandwidth >= 1e9:
        return 0
    if bandwidth >= 2.5e8:
        return 1
    if bandwidth >= 1e8:
        return 3
    if bandwidth >= 2e7:
        return 6
    return 9


class _Matcher:
    def __init__(self, sig: Signature) -> None:
        self.sig = sig
        self.full = len(sig.weak)
        self.strong = [int(v) for v in sig.strong]
        self.index = WeakIndex(sig.weak)
        self._by_weak: dict[int, list[int]] | None = None

    def by_weak(self) -> dict[int, list[int]]:
        if self._by_weak is None:
            table: dict[int, list[int]] = {}
            for j, w in enumerate(self.sig.weak.tolist()):
                table.setdefault(w, []).append(j)
            self._by_weak = table
        return self._by_weak

    def check(self, view: memoryview, pos: int, j: int) -> int:
        """Length of block ``j`` if it equals the source at ``pos``, else 0."""
        if j < 0 or j >= self.sig.blocks:
            return 0
        length = self.sig.block_len(j)
        if pos + length > len(view) or strong(view[pos : pos + length]) != self.strong[j]:
            return 0
        return length

    def search(self, view: memoryview, pos: int) -> tuple[int, int] | None:
        """First (offset >= pos, block) whose full block matches, scanning windows."""
        block = self.sig.block_size
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
                for j in self.by_weak()[int(weaks[off])]:
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

    def emit_copy(j: int, start: int) -> None:
        if start > lit_start:
            ops.extend(_literals(view, lit_start, start))
        last = ops[-1] if ops else None
        if isinstance(last, Copy) and last.block + last.count == j:
            ops[-1] = Copy(last.block, last.count + 1)
        else:
            ops.append(Copy(j, 1))

    while pos < n:
        length = matcher.check(view, pos, expect)
        j = expect
        if not length and pos % block == 0 and pos // block != expect:
            j = pos // block
            length = matcher.check(view, pos, j)
        if length:
            emit_copy(j, pos)
            pos += length
            lit_start = pos
            expect = j + 1
            continue
        found = matcher.search(view, pos)
        if found is None:
            break
        k, j = found
        emit_copy(j, k)
        pos = lit_start = k + block
        expect = j + 1
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
