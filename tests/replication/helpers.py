"""Small real datasets for the replication tests."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path


def make_tree(root: Path, spec: dict[str, int], seed: int = 0) -> None:
    """Write files ``{relative path: size}`` with seeded random content."""
    rng = random.Random(seed)
    for rel, size in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digests(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every regular file under ``root`` (symlinks skipped)."""
    return {
        p.relative_to(root).as_posix(): digest(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
