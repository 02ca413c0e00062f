"""The weak rolling checksum (vectorised with numpy) and the strong hashes.

Weak checksum of the ``B`` bytes at offset ``k`` (rsync's two sums, mixed):
``a = sum(x[k:k+B])``, ``b = sum((B - i) * x[k+i])`` and
``weak = (b * 0x9E3779B1) ^ a`` (all mod 2**32). For every offset of a buffer it is
computed at once from two cumulative sums, so no Python loop runs per byte.
"""

from __future__ import annotations

import numpy as np
import xxhash

_GOLDEN = np.uint32(0x9E3779B1)
MAX_BLOCK = 1 << 16


def strong(data: bytes | memoryview) -> int:
    """64-bit strong hash of one block (xxh3)."""
    return xxhash.xxh3_64_intdigest(data)


def file_hasher() -> xxhash.xxh3_128:
    """A streaming whole-file hash (xxh3-128)."""
    return xxhash.xxh3_128()


def weak_blocks(data: bytes | memoryview, block: int) -> np.ndarray:
    """Weak checksums of the full, aligned blocks of ``data`` (uint32, one per block)."""
    if not 0 < block <= MAX_BLOCK:
        raise ValueError(f"block size {block} outside 1..{MAX_BLOCK}")
    buf = np.frombuffer(data, dtype=np.uint8)
    count = len(buf) // block
    out = np.empty(count, dtype=np.uint32)
    weights = block - np.arange(block, dtype=np.float64)
    step = max(1, (256 << 10) // block)  # chunks that stay in cache: ~2 ns per byte
    for start in range(0, count, step):
        stop = min(count, start + step)
        rows = buf[start * block : stop * block].reshape(stop - start, block)
        a = rows.sum(axis=1, dtype=np.uint32)
        # einsum, not a matmul: BLAS's threaded gemv/gemm takes milliseconds per call on
        # one or a few rows on a loaded machine; einsum is ~1 ns per byte, always
        b = np.einsum("ij,j->i", rows, weights).astype(np.uint64).astype(np.uint32)  # exact
        out[start:stop] = (b * _GOLDEN) ^ a
    return out


def weak_rolling(data: bytes | memoryview, block: int) -> np.ndarray:
    """Weak checksums of the ``block`` bytes at every offset of ``data`` (uint32).

    Returns ``len(data) - block + 1`` values (empty when ``data`` is shorter than a block).
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    n = len(buf)
    if n < block:
        return np.empty(0, dtype=np.uint32)
    s1 = np.zeros(n + 1, dtype=np.uint32)
    np.cumsum(buf, dtype=np.uint32, out=s1[1:])
    idx = np.arange(n + 1, dtype=np.uint32)
    s2 = np.zeros(n + 1, dtype=np.uint32)
    np.cumsum(buf * idx[:n], dtype=np.uint32, out=s2[1:])
    m = n - block + 1
    a = s1[block:] - s1[:m]
    b = idx[block:] * a - (s2[block:] - s2[:m])  # sum (k + B - j) x_j over the window
    return (b * _GOLDEN) ^ a


class WeakIndex:
    """Fast membership of weak checksums: a bitmap prefilter, then a sorted-array check."""

    def __init__(self, weaks: np.ndarray) -> None:
        self._order = np.argsort(weaks, kind="stable")
        self._all = weaks[self._order]
        self.sorted = np.unique(weaks)
        bits = 16
        while (1 << bits) < 16 * max(1, len(self.sorted)) and bits < 24:
            bits += 1
        self._shift = np.uint32(32 - bits)
        self._bitmap = np.zeros(1 << bits, dtype=bool)
        self._bitmap[self.sorted >> self._shift] = True

    def candidates(self, weaks: np.ndarray) -> np.ndarray:
        """Indices ``i`` where ``weaks[i]`` is one of the indexed checksums (ascending)."""
        if len(self.sorted) == 0 or len(weaks) == 0:
            return np.empty(0, dtype=np.int64)
        pre = np.flatnonzero(self._bitmap[weaks >> self._shift])
        if len(pre) == 0:
            return pre
        vals = weaks[pre]
        pos = np.searchsorted(self.sorted, vals)
        pos[pos == len(self.sorted)] = 0
        return pre[self.sorted[pos] == vals]

    def blocks(self, weak: int) -> list[int]:
        """Indices (ascending) of the indexed checksums equal to ``weak``."""
        lo = int(np.searchsorted(self._all, weak, "left"))
        hi = int(np.searchsorted(self._all, weak, "right"))
        return self._order[lo:hi].tolist()
