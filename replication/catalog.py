"""The segment catalog: which files make up which segment of a source root.

By default each top-level entry of the root is a segment (a directory with all the
files below it, or a single file); a glob pattern relative to the root (``"*/*"``)
names the segments otherwise. Symlinks are followed only when they stay inside the root.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from forecasting.errors import PathEscapeError
from replication.atomic import is_temp
from replication.paths import resolve_under

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileEntry:
    """One regular file of the source, relative to the root (POSIX separators)."""

    rel: str
    size: int
    mtime_ns: int
    mode: int


@dataclass
class Segment:
    """A unit of replication: its name (path relative to the root) and its files."""

    name: str
    files: list[FileEntry] = field(default_factory=list)
    error: str | None = None

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def segment_names(root: Path, pattern: str | None = None) -> list[str]:
    """Names of the segments under ``root`` (sorted), skipping temp files."""
    if pattern:
        names = [p.relative_to(root).as_posix() for p in root.glob(pattern)]
    else:
        names = [entry.name for entry in os.scandir(root)]
    return sorted(n for n in names if not is_temp(Path(n).name))


def scan_segment(root: Path, name: str) -> Segment:
    """List the files of one segment; a path escape or unreadable entry is the segment's error."""
    seg = Segment(name)
    try:
        top = resolve_under(root, name, what="segment")
        if top.is_file():
            seg.files.append(_entry(root, name))
            return seg
        if not top.is_dir():
            seg.error = f"segment {name!r}: not found under the source root {root}"
            return seg
        for dirpath, dirs, files in os.walk(root / name):
            rel_dir = Path(dirpath).relative_to(root)
            for d in list(dirs):
                if Path(dirpath, d).is_symlink():
                    resolve_under(root, (rel_dir / d).as_posix(), what="directory")
                    log.warning(
                        "skipping symlinked directory %s (its target is synced)", rel_dir / d
                    )
                    dirs.remove(d)
            dirs.sort()
            for fname in sorted(files):
                if is_temp(fname):
                    continue
                rel = (rel_dir / fname).as_posix()
                if Path(dirpath, fname).is_symlink():
                    resolve_under(root, rel, what="file")
                seg.files.append(_entry(root, rel))
    except PathEscapeError as exc:
        seg.error = str(exc)
        seg.files.clear()
    except OSError as exc:
        seg.error = f"segment {name!r}: cannot read {exc.filename}: {exc.strerror}"
        seg.files.clear()
    return seg


def _entry(root: Path, rel: str) -> FileEntry:
    st = os.stat(root / rel)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(0, "not a regular file", str(root / rel))
    return FileEntry(rel=rel, size=st.st_size, mtime_ns=st.st_mtime_ns, mode=st.st_mode)


def build_catalog(root: Path, pattern: str | None = None) -> list[Segment]:
    """Every segment of ``root`` with its files (alphabetical)."""
    return [scan_segment(root, name) for name in segment_names(root, pattern)]


def quick_equal(entry: FileEntry, target: os.stat_result | None) -> bool:
    """rsync's quick check: same size and same modification time."""
    return (
        target is not None
        and stat.S_ISREG(target.st_mode)
        and target.st_size == entry.size
        and target.st_mtime_ns == entry.mtime_ns
    )
