"""Sync run records shared by every worker of one server: SQLite under the data dir.

``<data_dir>/state/sync_runs.db`` (WAL, busy timeout) holds each run's request
(endpoint names and options), state, progress, result, errors, the pid of the
worker running it and its timestamps; any worker answers for any run. A second
run on a target is refused by an atomic claim (``BEGIN IMMEDIATE``), and a cancel
is a flag the owning worker polls.

Whether the owner of an active run is still alive is told by a lock, not a pid:
the thread running it holds ``flock`` on ``<data_dir>/state/sync_runs.locks/<id>.lock``
for the whole run, and the kernel releases it when the process dies. An active run
whose lock is free is stale (its worker exited) and is recorded ``failed``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forecasting.durable import make_dirs_durable
from forecasting.jsonio import dumps, loads

#: States of a run that is not over yet.
ACTIVE_STATES = ("queued", "running", "cancelling")

#: Seconds a statement waits for another worker's write before failing.
BUSY_TIMEOUT_S = 10.0

_ACTIVE_SQL = "state IN ('queued', 'running', 'cancelling')"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_runs (
    run_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    target_key TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    worker_pid INTEGER NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    finished TEXT,
    executor_run_id TEXT,
    progress TEXT,
    result TEXT,
    errors TEXT NOT NULL DEFAULT '[]',
    warnings TEXT NOT NULL DEFAULT '[]',
    error TEXT
);
CREATE INDEX IF NOT EXISTS sync_runs_state ON sync_runs (state);
CREATE INDEX IF NOT EXISTS sync_runs_created ON sync_runs (created);
"""


@dataclass(frozen=True)
class RunRecord:
    """One row of the store, decoded."""

    run_id: str
    source: str  # endpoint names
    target: str
    target_key: str  # resolved local path or host:path: what conflicts are judged on
    request: dict[str, Any]  # the request body (names and options only)
    state: str
    cancel_requested: bool
    worker_pid: int
    created: datetime
    updated: datetime
    finished: datetime | None = None
    executor_run_id: str | None = None
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    """A fixed-width UTC ISO time: stamps sort as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _text(value: object) -> str:
    return dumps(value).decode()


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"],
        source=row["source"],
        target=row["target"],
        target_key=row["target_key"],
        request=loads(row["request"]),
        state=row["state"],
        cancel_requested=bool(row["cancel_requested"]),
        worker_pid=int(row["worker_pid"]),
        created=datetime.fromisoformat(row["created"]),
        updated=datetime.fromisoformat(row["updated"]),
        finished=datetime.fromisoformat(row["finished"]) if row["finished"] else None,
        executor_run_id=row["executor_run_id"],
        progress=loads(row["progress"]) if row["progress"] else None,
        result=loads(row["result"]) if row["result"] else None,
        errors=tuple(loads(row["errors"])),
        warnings=tuple(loads(row["warnings"])),
        error=row["error"],
    )


class RunLock:
    """The ``flock`` a run's thread holds while the run lives (released on exit or death)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)  # closing the last descriptor releases the flock
        self._fd = None


def lock_held(path: Path) -> bool:
    """Whether some open file description (any process) holds the lock at ``path``."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class SyncRunStore:
    """The shared table of sync runs (created on first use).

    Args:
        root: its directory, ``<data_dir>/state``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "sync_runs.db"
        self.lock_dir = root / "sync_runs.locks"
        self._ready = False
        self._init_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------
    def _ensure(self) -> None:
        with self._init_lock:
            if self._ready:
                return
            make_dirs_durable(self.lock_dir)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
            finally:
                conn.close()
            self._ready = True

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self._ensure()
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        finally:
            conn.close()

    def _update(self, sql: str, params: tuple[Any, ...]) -> bool:
        with self._connect() as conn:
            return conn.execute(sql, params).rowcount > 0

    # -- locks ------------------------------------------------------------------
    def lock_path(self, run_id: str) -> Path:
        return self.lock_dir / f"{run_id}.lock"

    def hold(self, run_id: str) -> RunLock:
        """Take the lock of a new run (before it is claimed, so a claimed run is never stale)."""
        self._ensure()
        return RunLock(self.lock_path(run_id))

    def owner_alive(self, run_id: str) -> bool:
        """Whether the process running ``run_id`` still holds its lock."""
        return lock_held(self.lock_path(run_id))

    # -- runs -------------------------------------------------------------------
    def claim(
        self,
        run: RunRecord,
        blocks: Callable[[RunRecord], bool],
        alive: Callable[[RunRecord], bool],
        dead_error: Callable[[RunRecord], str],
    ) -> RunRecord | None:
        """Insert ``run`` unless an active run ``blocks`` it; returns that run, or None.

        In one ``BEGIN IMMEDIATE`` transaction (no other worker writes meanwhile): every
        active run that ``blocks`` and is not ``alive`` is recorded failed (``dead_error``);
        the first live one is returned and nothing is inserted.
        """
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute(
                    f"SELECT * FROM sync_runs WHERE {_ACTIVE_SQL} ORDER BY created"
                ).fetchall()
                for row in rows:
                    other = _record(row)
                    if not blocks(other):
                        continue
                    if alive(other):
                        conn.execute("ROLLBACK")
                        return other
                    self._fail(conn, other.run_id, dead_error(other))
                    self.lock_path(other.run_id).unlink(missing_ok=True)
                conn.execute(
                    "INSERT INTO sync_runs (run_id, source, target, target_key, request, state,"
                    " worker_pid, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run.run_id,
                        run.source,
                        run.target,
                        run.target_key,
                        _text(run.request),
                        run.state,
                        run.worker_pid,
                        _stamp(run.created),
                        _stamp(run.updated),
                    ),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return None

    def get(self, run_id: str) -> RunRecord | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM sync_runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else _record(row)

    @staticmethod
    def _fail(conn: sqlite3.Connection, run_id: str, error: str) -> bool:
        stamp = _stamp(now())
        return (
            conn.execute(
                f"UPDATE sync_runs SET state = 'failed', error = ?, finished = ?, updated = ? "
                f"WHERE run_id = ? AND {_ACTIVE_SQL}",
                (error, stamp, stamp, run_id),
            ).rowcount
            > 0
        )

    def fail_stale(self, run_id: str, error: str) -> bool:
        """Record an active run whose owner died failed with ``error`` (no-op once ended)."""
        with self._connect() as conn:
            failed = self._fail(conn, run_id, error)
        self.lock_path(run_id).unlink(missing_ok=True)  # left behind by the dead owner
        return failed

    def mark_running(self, run_id: str) -> bool:
        return self._update(
            "UPDATE sync_runs SET state = 'running', updated = ? "
            "WHERE run_id = ? AND state = 'queued'",
            (_stamp(now()), run_id),
        )

    def save_progress(
        self, run_id: str, executor_run_id: str | None, progress: dict[str, Any], errors: list[str]
    ) -> bool:
        """Record a progress snapshot; returns whether a cancel was asked for."""
        with self._connect() as conn:
            row = conn.execute(
                "UPDATE sync_runs SET progress = ?, errors = ?, updated = ?,"
                " executor_run_id = coalesce(?, executor_run_id),"
                " state = CASE state WHEN 'queued' THEN 'running' ELSE state END"
                f" WHERE run_id = ? AND {_ACTIVE_SQL} RETURNING cancel_requested",
                (_text(progress), _text(errors), _stamp(now()), executor_run_id, run_id),
            ).fetchone()
        return bool(row and row["cancel_requested"])

    def cancel_requested(self, run_id: str) -> bool:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT cancel_requested FROM sync_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        return bool(row and row["cancel_requested"])

    def request_cancel(self, run_id: str) -> bool:
        """Flag an active run for its owner to stop; False when it has already ended."""
        return self._update(
            "UPDATE sync_runs SET cancel_requested = 1, state = 'cancelling', updated = ? "
            f"WHERE run_id = ? AND {_ACTIVE_SQL}",
            (_stamp(now()), run_id),
        )

    def finish(
        self,
        run_id: str,
        *,
        state: str,
        executor_run_id: str | None,
        progress: dict[str, Any] | None,
        result: dict[str, Any] | None,
        errors: list[str],
        warnings: list[str],
        error: str | None,
    ) -> None:
        """Record how a run ended (its owner only, before it releases the run's lock)."""
        stamp = _stamp(now())
        self._update(
            "UPDATE sync_runs SET state = ?, executor_run_id = coalesce(?, executor_run_id),"
            " progress = coalesce(?, progress), result = ?, errors = ?, warnings = ?, error = ?,"
            " finished = ?, updated = ? WHERE run_id = ?",
            (
                state,
                executor_run_id,
                None if progress is None else _text(progress),
                None if result is None else _text(result),
                _text(errors),
                _text(warnings),
                error,
                stamp,
                stamp,
                run_id,
            ),
        )

    def prune(self, keep: int) -> int:
        """Forget ended runs beyond the ``keep`` newest runs; returns how many went."""
        with self._connect() as conn:
            return conn.execute(
                f"DELETE FROM sync_runs WHERE NOT ({_ACTIVE_SQL}) AND run_id NOT IN "
                "(SELECT run_id FROM sync_runs ORDER BY created DESC LIMIT ?)",
                (keep,),
            ).rowcount
