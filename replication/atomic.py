"""Atomic file replacement: temp file beside the target, fsync, verify, rename, fsync the directory.

A kill at any moment leaves the target either old or new. Temp files a killed run
leaves behind carry :data:`TMP_SUFFIX` and are removed by :func:`clean_stale_temps`.

The protocol is :mod:`forecasting.durable`'s (its :func:`~forecasting.durable.make_dirs_durable`
and :func:`~forecasting.durable.fsync_dir`); what this writer adds is for streaming
replicas: writes in pieces with early write-back, an fsync another thread may do, a
directory fsync the caller may batch over many renames, crash points between the steps,
and a temp suffix of its own (a replicated tree may hold files named ``*.tmp``: they
are never taken for temp files, skipped or removed).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from forecasting.durable import fsync_dir, make_dirs_durable
from replication.crashpoints import crash_point

TMP_SUFFIX = ".replicast-tmp"
#: Bytes written between two early write-back kicks (see :func:`start_writeback`).
WRITEBACK_EVERY = 8 << 20


@functools.cache
def _sync_file_range() -> Callable[[int, int, int], None] | None:
    """Linux ``sync_file_range(fd, off, n, SYNC_FILE_RANGE_WRITE)``, or None elsewhere.

    Looked up on the first large write (ctypes loads only for runs that write files).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    func.restype = ctypes.c_int

    def start(fd: int, offset: int, nbytes: int) -> None:
        func(fd, offset, nbytes, 2)  # SYNC_FILE_RANGE_WRITE: start write-back, don't wait

    return start


def start_writeback(fd: int, offset: int, nbytes: int) -> None:
    """Start the disk write of a written range without waiting for it, so the fsync before
    the rename finds most pages already written (the disk works while the copy goes on).
    Does nothing where ``sync_file_range`` does not exist."""
    start = _sync_file_range()
    if start is not None:
        start(fd, offset, nbytes)


def is_temp(name: str) -> bool:
    """Whether a directory entry is a temp file of this module."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


class AtomicWriter:
    """A new version of ``target``: :meth:`commit` makes it visible, :meth:`abort` drops it.

    Missing parent directories are created durably (each new entry fsynced in its parent).
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        if not os.path.isdir(target.parent):  # one stat when it exists (the common case)
            make_dirs_durable(target.parent)
        self.tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")
        self.written = 0
        self.kicked = 0  # bytes whose write-back was started
        self.synced = False
        self._fd: int | None = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def write(self, data: bytes | memoryview) -> None:
        assert self._fd is not None
        crash_point("before_write")
        view = memoryview(data)
        while view:
            done = os.write(self._fd, view)
            view = view[done:]
            self.written += done
        if self.written - self.kicked >= WRITEBACK_EVERY:
            start_writeback(self._fd, self.kicked, self.written - self.kicked)
            self.kicked = self.written

    def sync(self, *, mode: int, atime_ns: int, mtime_ns: int) -> None:
        """fsync and close the temp file, set its mode and times (not visible yet).

        Called by the thread that wrote it, so fsyncs of several files overlap (fsync
        releases the GIL); :meth:`commit` then only renames.
        """
        assert self._fd is not None
        crash_point("before_fsync")
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        os.chmod(self.tmp, mode & 0o7777)
        os.utime(self.tmp, ns=(atime_ns, mtime_ns))
        self.synced = True

    def commit(
        self, *, mode: int, atime_ns: int, mtime_ns: int, sync_dir: bool = True
    ) -> os.stat_result:
        """fsync (unless :meth:`sync` did), set mode and times, rename over the target,
        fsync the directory.

        Args:
            sync_dir: fsync the directory now; False when the caller fsyncs it once for
                several renames (and only then records them as finished).

        Returns:
            The stat of the new target (its inode is the temp file's).
        """
        if not self.synced:
            self.sync(mode=mode, atime_ns=atime_ns, mtime_ns=mtime_ns)
        crash_point("before_rename")
        os.replace(self.tmp, self.target)
        st = os.stat(self.target)  # after the rename: it changes ctime
        if sync_dir:
            crash_point("before_dir_fsync")
            fsync_dir(self.target.parent)
        return st

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.tmp.unlink(missing_ok=True)


def clean_stale_temps(root: Path) -> int:
    """Remove temp files a killed run left under ``root``; returns how many."""
    removed = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if is_temp(name):
                Path(dirpath, name).unlink(missing_ok=True)
                removed += 1
    return removed
