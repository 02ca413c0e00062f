"""The SQLite journal of one target: which file finished in which run, from which source state.

A resumed run skips a file whose source (size, mtime) and target (size, mtime, inode)
are still what the journal recorded when it finished.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from forecasting.errors import SyncError

#: How long a write waits for another connection's lock before it fails ("database is locked").
BUSY_TIMEOUT_S = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, started REAL, finished REAL, source TEXT, target TEXT,
    transport TEXT, state TEXT
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, run_id TEXT, src_size INTEGER, src_mtime_ns INTEGER,
    dst_size INTEGER, dst_mtime_ns INTEGER, dst_ino INTEGER, hash TEXT, finished REAL
);
"""


class JournalError(SyncError):
    """The journal cannot be read or written (disk full, locked, corrupt); names the file."""


@dataclass(frozen=True)
class FileRecord:
    """What the journal knows about one finished file."""

    path: str
    run_id: str
    src_size: int
    src_mtime_ns: int
    dst_size: int | None
    dst_mtime_ns: int | None
    dst_ino: int | None
    hash: str | None


def open_state_db(path: Path) -> sqlite3.Connection:
    """A per-target state database (journal, signature index): autocommit, WAL, shared by threads
    (callers serialise access with their own lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class Journal:
    """One SQLite file per target (thread-safe; WAL mode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        with self._errors("open it"):
            self._db = open_state_db(path)
            self._db.executescript(_SCHEMA)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn an SQLite error into a :class:`JournalError` naming the journal and ``what``."""
        try:
            yield
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path}: cannot {what}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group the records made inside into one transaction (one WAL commit)."""
        with self._lock, self._errors("begin a transaction"):
            self._db.execute("BEGIN")
        try:
            with self._errors("record a batch of files"):
                yield
        except BaseException:
            with self._lock:
                if self._db.in_transaction:  # SQLite may have rolled back already (disk full)
                    self._db.execute("ROLLBACK")
            raise
        with self._lock, self._errors("commit its records"):
            self._db.execute("COMMIT")

    def start_run(self, run_id: str, *, source: str, target: str, transport: str) -> None:
        with self._lock, self._errors(f"start run {run_id}"):
            self._db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, NULL, ?, ?, ?, 'running')",
                (run_id, time.time(), source, target, transport),
            )

    def finish_run(self, run_id: str, state: str) -> None:
        with self._lock, self._errors(f"record the end of run {run_id}"):
            self._db.execute(
                "UPDATE runs SET finished = ?, state = ? WHERE run_id = ?",
                (time.time(), state, run_id),
            )

    def last_run(self) -> tuple[str, str] | None:
        """(run_id, state) of the newest run, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT run_id, state FROM runs ORDER BY started DESC LIMIT 1"
            ).fetchone()
        return None if row is None else (row[0], row[1])

    def record(self, rec: FileRecord) -> None:
        """Mark ``rec.path`` finished (call after the rename and the directory fsync)."""
        with self._lock, self._errors(f"record {rec.path!r} as copied"):
            self._db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.path,
                    rec.run_id,
                    rec.src_size,
                    rec.src_mtime_ns,
                    rec.dst_size,
                    rec.dst_mtime_ns,
                    rec.dst_ino,
                    rec.hash,
                    time.time(),
                ),
            )

    def get(self, path: str) -> FileRecord | None:
        with self._lock, self._errors(f"look up {path!r}"):
            row = self._db.execute(
                "SELECT path, run_id, src_size, src_mtime_ns, dst_size, dst_mtime_ns, dst_ino, hash"
                " FROM files WHERE path = ?",
                (path,),
            ).fetchone()
        return None if row is None else FileRecord(*row)

    def all(self) -> dict[str, FileRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT path, run_id, src_size, src_mtime_ns, dst_size, dst_mtime_ns, dst_ino, hash"
                " FROM files"
            ).fetchall()
        return {row[0]: FileRecord(*row) for row in rows}

    def forget(self, path: str) -> None:
        with self._lock, self._errors(f"forget {path!r}"):
            self._db.execute("DELETE FROM files WHERE path = ?", (path,))
