"""Content comparison: source hashes against the target's stored signatures.

The target side is read only when its signature index entry is stale (size, mtime or
inode changed); verifying a replica therefore reads each source file once.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from replication.catalog import Segment
from replication.checksum import file_hasher
from replication.signatures import SignatureIndex, signature_of_file

_CHUNK = 4 << 20


def hash_file(path: Path) -> tuple[str, int]:
    """xxh3-128 of a file and the bytes read."""
    hasher = file_hasher()
    read = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
            read += len(chunk)
    return hasher.hexdigest(), read


def target_hash(path: Path, rel: str, index: SignatureIndex) -> tuple[str | None, int]:
    """Hash of a target file from the index (no read) or by reading it (then indexed)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None, 0
    stored = index.file_hash(rel, st)
    if stored is not None:
        return stored, 0
    sig, read = signature_of_file(path)
    index.put(rel, st, sig)
    return sig.file_hash, read


@dataclass
class VerifyReport:
    """Files whose target differs from the source (or is missing)."""

    files: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    mismatched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatched


def verify_replica(
    source_root: Path,
    target_root: Path,
    segments: list[Segment],
    index: SignatureIndex,
    workers: int = 2,
) -> VerifyReport:
    """Compare every file of ``segments`` by content hash (``workers`` files at once)."""
    report = VerifyReport()
    start = time.perf_counter()

    def check(rel: str) -> tuple[str, bool, int]:
        want, read = hash_file(source_root / rel)
        got, read2 = target_hash(target_root / rel, rel, index)
        return rel, want == got, read + read2

    rels = [entry.rel for seg in segments for entry in seg.files]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for rel, same, read in pool.map(check, rels):
            report.files += 1
            report.bytes_read += read
            if not same:
                report.mismatched.append(rel)
    report.seconds = time.perf_counter() - start
    return report
