"""Change sets for the sync benchmarks: an old tree (``base``), a new one (``src``), what changed.

Each builder writes ``base`` (every file an hour old), hard-links it to ``src`` and changes
``src`` through new inodes (``base`` never changes), deterministically from a seed:

* ``mixed``: segment directories of database pages, snapshots, SSTables, WAL-like logs and
  blobs of lognormal sizes (1.6 GB at scale 1); ~4 % of the bytes change over ~20 % of
  the files: in-place page rewrites, appends, mid-file inserts, new and deleted files;
* ``small_files``: 20k files of 4-64 KiB (scale 1) in 40 segments; 5 % of them touched
  (4 KiB blocks rewritten in place or appends), plus a few new and deleted files;
* ``large_files``: 4 files of 400 MB (scale 1), one per segment; 1 % of their 8 KiB
  pages rewritten in place.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEGMENTS = 40
KINDS = ["db", "db", "db", "snapshot", "sstable", "sstable", "wal", "blob"]
COMPRESSIBLE = {"db": 0.7, "snapshot": 0.5, "sstable": 0.8, "wal": 0.6, "blob": 0.0}
PAGE = 8192
SMALL_BLOCK = 4096


@dataclass
class ChangeSet:
    """An old and a new tree; ``changes`` lists the files a replica must update.

    ``changes`` holds ``chosen`` (changed files), ``new``, ``deleted`` (relative paths),
    ``written`` (bytes changed per file) and summary figures (``bytes_total`` ...).
    """

    name: str
    base: Path
    src: Path
    changes: dict


# ---------------------------------------------------------------------------- content
def vocabulary(rng: np.random.Generator) -> np.ndarray:
    """512 lowercase 15-letter words (plus a space) for compressible content."""
    vocab = rng.integers(97, 123, (512, 16), dtype=np.uint8)
    vocab[:, 15] = 32
    return vocab


def content(kind: str, size: int, rng: np.random.Generator, vocab: np.ndarray) -> bytes:
    """``size`` bytes: 64 KiB chunks either word soup (compressible) or random."""
    out = bytearray()
    share = COMPRESSIBLE[kind]
    while len(out) < size:
        n = min(64 * 1024, size - len(out))
        if rng.random() < share:
            words = vocab[rng.integers(0, len(vocab), n // 16 + 1)].tobytes()
            chunk = bytearray(words[:n])
            chunk[::64] = rng.integers(0, 256, len(chunk[::64]), dtype=np.uint8).tobytes()
            out += chunk
        else:
            out += rng.bytes(n)
    return bytes(out)


def replace_file(path: Path, data: bytes) -> None:
    """New content through a new inode (the new tree shares inodes with the old one)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _age(root: Path, rels: list[str]) -> None:
    """Date the old tree an hour back: changes come later, as in real life."""
    hour_ago = time.time_ns() - 3600 * 10**9
    for rel in rels:
        os.utime(root / rel, ns=(hour_ago, hour_ago))


def _link_tree(base: Path, src: Path) -> None:
    subprocess.run(["cp", "-al", str(base), str(src)], check=True)


def _summary(total: int, files: int, chosen: list[str], changed: int, new: list, deleted: list):
    return {
        "bytes_total": total,
        "files_total": files,
        "files_mutated": len(chosen),
        "bytes_mutated_approx": changed,
        "mutated_share_of_bytes": round(changed / total, 4),
        "mutated_share_of_files": round(len(chosen) / files, 4),
        "files_new": len(new),
        "files_deleted": len(deleted),
    }


# ---------------------------------------------------------------------------- mixed
def build_dataset(root: Path, scale: float, rng: np.random.Generator) -> dict[str, str]:
    """Write the mixed dataset; returns ``{relative path: kind}``."""
    vocab = vocabulary(rng)
    mean = 1.6e9 * scale / (SEGMENTS * len(KINDS))
    kinds: dict[str, str] = {}
    for s in range(SEGMENTS):
        seg = root / f"{['orders', 'users', 'events', 'carts'][s % 4]}_p{s:03d}"
        seg.mkdir(parents=True)
        for i, kind in enumerate(KINDS):
            size = int(mean * rng.lognormal(0, 0.6) / np.exp(0.18))
            size = max(PAGE, size - size % PAGE if kind == "db" else size)
            rel = f"{seg.name}/{kind}_{i}.{ {'db': 'pg', 'wal': 'log'}.get(kind, kind) }"
            (root / rel).write_bytes(content(kind, size, rng, vocab))
            kinds[rel] = kind
    _age(root, list(kinds))
    return kinds


def mutate(root: Path, kinds: dict[str, str], rng: np.random.Generator) -> dict:
    """~4 % of bytes over ~20 % of files; returns what changed."""
    vocab = vocabulary(rng)
    files = sorted(kinds)
    total = sum((root / f).stat().st_size for f in files)
    chosen = [files[i] for i in rng.choice(len(files), size=len(files) // 5, replace=False)]
    changed = 0
    inserts: list[str] = []
    written: dict[str, int] = {}  # bytes changed per file, as segment_access records them
    for rel in chosen:
        path, kind = root / rel, kinds[rel]
        data = bytearray(path.read_bytes())
        budget = int(len(data) * 0.165)  # ~20 % of files x 16.5 % of each ~ 4 % of bytes
        if kind == "db":  # in-place page rewrites
            pages = len(data) // PAGE
            for p in rng.choice(pages, size=max(1, budget // PAGE), replace=False):
                data[p * PAGE : (p + 1) * PAGE] = content("db", PAGE, rng, vocab)
        elif kind == "wal":  # appends
            data += content("wal", budget, rng, vocab)
        elif kind in ("sstable", "snapshot"):  # mid-file inserts that shift the rest
            inserts.append(rel)
            for _ in range(4):
                at = int(rng.integers(0, len(data)))
                data[at:at] = content(kind, budget // 4, rng, vocab)
        else:  # blobs: two rewritten regions
            for _ in range(2):
                at = int(rng.integers(0, max(1, len(data) - budget // 2)))
                data[at : at + budget // 2] = rng.bytes(budget // 2)
        changed += budget
        written[rel] = budget
        replace_file(path, bytes(data))
    unchosen = sorted(set(files) - set(chosen))
    deleted = [unchosen[i] for i in rng.choice(len(unchosen), size=6, replace=False)]
    for rel in deleted:
        (root / rel).unlink()
    new = []
    mean = total / len(files)
    for i in range(8):
        rel = f"{Path(unchosen[i * 7]).parent}/new_{i}.sst"
        (root / rel).write_bytes(content("sstable", int(mean * 0.5), rng, vocab))
        changed += int(mean * 0.5)
        written[rel] = int(mean * 0.5)
        new.append(rel)
    return {
        **_summary(total, len(files), chosen, changed, new, deleted),
        "insert_files": inserts,
        "chosen": chosen,
        "new": new,
        "deleted": deleted,
        "written": written,
    }


def mixed(root: Path, scale: float, rng: np.random.Generator) -> ChangeSet:
    """The mixed change set (1.6 GB at scale 1, ~4 % of the bytes changed)."""
    base, src = root / "base", root / "src"
    kinds = build_dataset(base, scale, rng)
    _link_tree(base, src)
    return ChangeSet("mixed", base, src, mutate(src, kinds, rng))


# ---------------------------------------------------------------------------- small files
def small_files(root: Path, scale: float, rng: np.random.Generator) -> ChangeSet:
    """Many files of 4-64 KiB (20k at scale 1, at least 2k); 5 % of them touched."""
    base, src = root / "base", root / "src"
    vocab = vocabulary(rng)
    count = max(2000, int(20_000 * scale))
    files = []
    for i in range(count):
        rel = f"shard_{i % SEGMENTS:02d}/d{(i // SEGMENTS) % 16:02d}/obj_{i:06d}.dat"
        size = int(rng.integers(4, 65)) * 1024
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(content("sstable" if i % 3 else "blob", size, rng, vocab))
        files.append(rel)
    _age(base, files)
    _link_tree(base, src)
    total = sum((src / f).stat().st_size for f in files)
    chosen = sorted(files[i] for i in rng.choice(count, size=count // 20, replace=False))
    written: dict[str, int] = {}
    for n, rel in enumerate(chosen):
        data = bytearray((src / rel).read_bytes())
        if n % 3 == 2:  # appends of 1-8 KiB
            extra = content("wal", int(rng.integers(1, 9)) * 1024, rng, vocab)
            data += extra
            written[rel] = len(extra)
        else:  # one or two 4 KiB blocks rewritten in place
            blocks = len(data) // SMALL_BLOCK
            picks = rng.choice(blocks, size=min(blocks, 1 + n % 2), replace=False)
            for b in picks:
                data[b * SMALL_BLOCK : (b + 1) * SMALL_BLOCK] = rng.bytes(SMALL_BLOCK)
            written[rel] = len(picks) * SMALL_BLOCK
        replace_file(src / rel, bytes(data))
    unchosen = sorted(set(files) - set(chosen))
    deleted = [unchosen[i] for i in rng.choice(len(unchosen), size=count // 1000, replace=False)]
    for rel in deleted:
        (src / rel).unlink()
    new = []
    for i in range(count // 200):
        rel = f"shard_{i % SEGMENTS:02d}/new/obj_new_{i:05d}.dat"
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        data = content("sstable", int(rng.integers(4, 65)) * 1024, rng, vocab)
        (src / rel).write_bytes(data)
        written[rel] = len(data)
        new.append(rel)
    changed = sum(written.values())
    summary = _summary(total, len(files), chosen, changed, new, deleted)
    changes = {**summary, "chosen": chosen, "new": new, "deleted": deleted, "written": written}
    return ChangeSet("small_files", base, src, changes)


# ---------------------------------------------------------------------------- large files
def large_files(root: Path, scale: float, rng: np.random.Generator) -> ChangeSet:
    """Four files of 400 MB (scale 1), one per segment; 1 % of their 8 KiB pages rewritten."""
    base, src = root / "base", root / "src"
    vocab = vocabulary(rng)
    size = int(400e6 * scale) // PAGE * PAGE
    files = [f"volume_{i}/data.img" for i in range(4)]
    for rel in files:
        (base / rel).parent.mkdir(parents=True)
        with open(base / rel, "wb") as out:
            for at in range(0, size, 8 << 20):
                out.write(content("db", min(8 << 20, size - at), rng, vocab))
    _age(base, files)
    _link_tree(base, src)
    written: dict[str, int] = {}
    for rel in files:
        data = bytearray((src / rel).read_bytes())
        pages = len(data) // PAGE
        picks = rng.choice(pages, size=pages // 100, replace=False)
        for p in picks:
            data[p * PAGE : (p + 1) * PAGE] = content("db", PAGE, rng, vocab)
        written[rel] = len(picks) * PAGE
        replace_file(src / rel, bytes(data))
    total = size * len(files)
    summary = _summary(total, len(files), files, sum(written.values()), [], [])
    changes = {**summary, "chosen": files, "new": [], "deleted": [], "written": written}
    return ChangeSet("large_files", base, src, changes)


BUILDERS: dict[str, Callable[[Path, float, np.random.Generator], ChangeSet]] = {
    "mixed": mixed,
    "small_files": small_files,
    "large_files": large_files,
}
