"""The segment catalog: which files make up which segment of a source root.

By default each top-level entry of the root is a segment (a directory with all the
files below it, or a single file); a glob pattern relative to the root (``"*/*"``)
names the segments otherwise. Symlinks are followed only when they stay inside the root.
"""

from __future__ import annotations

import errno
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
    """List the files of one segment; a path escape or unreadable entry is the segment's error.

    Files come in ``os.walk`` order with sorted names (a directory's files, then its
    subdirectories); one ``scandir`` per directory and one ``stat`` per file, paths as
    strings (no pathlib per file: a segment may hold tens of thousands of files).
    """
    seg = Segment(name)
    try:
        top = resolve_under(root, name, what="segment")
        if top.is_file():
            seg.files.append(_entry(root, name))
            return seg
        if not top.is_dir():
            seg.error = f"segment {name!r}: not found under the source root {root}"
            return seg
        _scan_dir(root, os.path.join(root, name), name, seg.files)
    except PathEscapeError as exc:
        seg.error = str(exc)
        seg.files.clear()
    except OSError as exc:
        why = "symlink loop; remove or fix the link" if exc.errno == errno.ELOOP else exc.strerror
        seg.error = f"segment {name!r}: cannot read {exc.filename}: {why}"
        seg.files.clear()
    return seg


def _scan_dir(root: Path, directory: str, rel_dir: str, out: list[FileEntry]) -> None:
    """Append the files under ``directory`` (``rel_dir`` below ``root``) to ``out``."""
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:  # unreadable directory: skipped, as os.walk skips it
        return
    subdirs = []
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}"
        if entry.is_symlink():
            if entry.is_dir():  # followed: a link to a directory
                resolve_under(root, rel, what="directory")
                log.warning("skipping symlinked directory %s (its target is synced)", rel)
                continue
            if is_temp(entry.name):
                continue
            resolve_under(root, rel, what="file")
            out.append(_from_stat(rel, entry.path, os.stat(entry.path)))
        elif entry.is_dir(follow_symlinks=False):
            subdirs.append((entry.path, rel))
        elif not is_temp(entry.name):
            out.append(_from_stat(rel, entry.path, entry.stat(follow_symlinks=False)))
    for path, rel in subdirs:
        _scan_dir(root, path, rel, out)


def _from_stat(rel: str, path: str, st: os.stat_result) -> FileEntry:
    if not stat.S_ISREG(st.st_mode):
        raise OSError(0, "not a regular file", path)
    return FileEntry(rel=rel, size=st.st_size, mtime_ns=st.st_mtime_ns, mode=st.st_mode)


def _entry(root: Path, rel: str) -> FileEntry:
    path = os.path.join(root, rel)
    return _from_stat(rel, path, os.stat(path))


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
