"""Block signatures of target files, and their persisted index.

A :class:`Signature` holds, per block of a file, the weak rolling checksum (full
blocks only) and the strong hash (every block, the short tail too), plus the whole
file's hash. The :class:`SignatureIndex` keeps them in SQLite keyed by
path + size + mtime + inode + ctime, so an unchanged target is never re-read.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replication.checksum import MAX_BLOCK, file_hasher, strong, weak_blocks
from replication.journal import open_state_db

MIN_BLOCK = 1024
_READ = 4 << 20


def block_size_for(size: int) -> int:
    """Block size for ``size`` bytes: the power of two nearest 2 x sqrt(size), 1-64 KiB.

    Twice rsync's choice: half the per-block work; a power of two so 4-16 KiB database
    pages rewritten in place are whole blocks (no extra literal bytes around them).
    """
    if size <= (MIN_BLOCK // 2) ** 2:
        return MIN_BLOCK
    return int(min(MAX_BLOCK, max(MIN_BLOCK, 1 << round(math.log2(2 * math.sqrt(size))))))


@dataclass(frozen=True)
class Signature:
    """Block signature of one file."""

    size: int
    block_size: int
    weak: np.ndarray  # uint32, one per full block
    strong: np.ndarray  # uint64, one per block (the tail included)
    file_hash: str  # xxh3-128 hex of the whole file

    @property
    def has_blocks(self) -> bool:
        """False for a hash-only signature (whole-file copies on fast links build no blocks)."""
        return self.block_size > 0

    @property
    def blocks(self) -> int:
        return len(self.strong)

    def block_len(self, index: int) -> int:
        return min(self.block_size, self.size - index * self.block_size)

    @property
    def wire_bytes(self) -> int:
        """Bytes this signature takes on a link (4 + 8 per block, 16 for the file hash)."""
        return 12 * len(self.strong) + 16


class SignatureBuilder:
    """Builds a :class:`Signature` from consecutive chunks of a file (any chunk sizes)."""

    def __init__(self, size_hint: int, block_size: int | None = None, blocks: bool = True) -> None:
        """Args: ``blocks=False`` builds a hash-only signature (no per-block sums)."""
        self.block_size = (block_size or block_size_for(size_hint)) if blocks else 0
        self._pending = b""
        self._weak: list[np.ndarray] = []
        self._strong: list[int] = []
        self._hash = file_hasher()
        self._size = 0

    def update(self, chunk: bytes | memoryview) -> None:
        self._hash.update(chunk)
        self._size += len(chunk)
        if not self.block_size:
            return
        data = self._pending + bytes(chunk) if self._pending else chunk
        full = (len(data) // self.block_size) * self.block_size
        if full:
            self._add(memoryview(data)[:full])
        self._pending = bytes(memoryview(data)[full:])

    def _add(self, view: memoryview) -> None:
        block = self.block_size
        self._weak.append(weak_blocks(view, block))
        self._strong.extend(strong(view[i : i + block]) for i in range(0, len(view), block))

    def finish(self) -> Signature:
        if self._pending:
            self._strong.append(strong(self._pending))
        weak = np.concatenate(self._weak) if self._weak else np.empty(0, dtype=np.uint32)
        return Signature(
            size=self._size,
            block_size=self.block_size,
            weak=weak,
            strong=np.array(self._strong, dtype=np.uint64),
            file_hash=self._hash.hexdigest(),
        )


def signature_of_bytes(data: bytes | memoryview, block_size: int | None = None) -> Signature:
    """Signature of an in-memory file."""
    builder = SignatureBuilder(len(data), block_size)
    builder.update(data)
    return builder.finish()


def signature_of_file(path: Path, block_size: int | None = None) -> tuple[Signature, int]:
    """Signature of a file on disk; returns it with the number of bytes read."""
    size = path.stat().st_size
    builder = SignatureBuilder(size, block_size)
    with open(path, "rb") as fh:
        while chunk := fh.read(_READ):
            builder.update(chunk)
    return builder.finish(), builder._size


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """What identifies one version of a file: (size, mtime_ns, inode, ctime_ns).

    ctime cannot be set back by ``utime``, so a rewrite that restores the mtime is seen.
    """
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


class SignatureIndex:
    """Signatures of a target's files in SQLite, valid while size, mtime, inode, ctime hold."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = open_state_db(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sig (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
            " ino INTEGER, ctime_ns INTEGER, block_size INTEGER, weak BLOB, strong BLOB,"
            " file_hash TEXT)"
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, rel: str, st: os.stat_result) -> Signature | None:
        """The stored block signature of ``rel`` if the file is still the version it was
        taken from (None also for a hash-only entry: the caller builds the blocks)."""
        with self._lock:
            row = self._db.execute(
                "SELECT size, mtime_ns, ino, ctime_ns, block_size, weak, strong, file_hash FROM sig"
                " WHERE path = ?",
                (rel,),
            ).fetchone()
        if row is None or tuple(row[:4]) != stat_key(st) or not row[4]:
            return None
        return Signature(
            size=row[0],
            block_size=row[4],
            weak=np.frombuffer(row[5], dtype=np.uint32),
            strong=np.frombuffer(row[6], dtype=np.uint64),
            file_hash=row[7],
        )

    def file_hash(self, rel: str, st: os.stat_result) -> str | None:
        """Only the whole-file hash (cheap: no block arrays are loaded)."""
        with self._lock:
            row = self._db.execute(
                "SELECT size, mtime_ns, ino, ctime_ns, file_hash FROM sig WHERE path = ?", (rel,)
            ).fetchone()
        if row is None or tuple(row[:4]) != stat_key(st):
            return None
        return row[4]

    def put(self, rel: str, st: os.stat_result, sig: Signature) -> None:
        self.put_many([(rel, st, sig)])

    def put_many(self, items: list[tuple[str, os.stat_result, Signature]]) -> None:
        """Store several signatures in one transaction."""
        rows = [
            (
                rel,
                *stat_key(st),
                sig.block_size,
                sig.weak.astype(np.uint32).tobytes(),
                sig.strong.astype(np.uint64).tobytes(),
                sig.file_hash,
            )
            for rel, st, sig in items
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO sig VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def forget(self, rel: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sig WHERE path = ?", (rel,))
