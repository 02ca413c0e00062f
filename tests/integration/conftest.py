"""Session fixtures: a real PostgreSQL primary + streaming replica with a workload,
Prometheus and the PostgreSQL exporter, all on spare loopback ports in temp dirs.

They skip when the binaries are missing, and fail instead under ``CI=true``
(``tests.conftest.require``). Everything is torn down (by PID) after the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import require
from tests.integration.servers import (
    Daemon,
    PgPair,
    postgres_available,
    start_exporter,
    start_pg_pair,
    start_prometheus,
)

#: Partitions of ``events`` by heat: the workload hits hot ones far more than cold ones.
HOT = ("public.events_p0", "public.events_p1")
COLD = ("public.events_p2", "public.events_p3")
APP_DB = "app"


@pytest.fixture(scope="session")
def server_root() -> Iterator[Path]:
    """A temp dir the ``postgres`` user can enter (pytest's own tmp dirs are root-only)."""
    root = Path(tempfile.mkdtemp(prefix="replicast-it-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_pair(server_root: Path) -> Iterator[PgPair]:
    """Primary + streaming replica (slot ``replica1``) with pgbench tables and ``app.events``."""
    ok, reason = postgres_available()
    require(ok, reason)
    pair = start_pg_pair(server_root / "pg")
    try:
        with pair.primary.connect() as conn:
            conn.execute(f"CREATE DATABASE {APP_DB}")
        with pair.primary.connect(APP_DB) as conn:
            _create_events(conn)
        pgbench = Path(os.environ.get("REPLICAST_PG_BIN", "/usr/lib/postgresql/15/bin")) / "pgbench"
        import subprocess

        subprocess.run(
            [str(pgbench), "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", str(pair.primary.port),
             "-U", "postgres", APP_DB],
            check=True, capture_output=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        yield pair
    finally:
        pair.stop()


def _create_events(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE TABLE events (id int NOT NULL, bucket int NOT NULL, payload text) "
        "PARTITION BY LIST (bucket)"
    )
    for i in range(4):
        conn.execute(f"CREATE TABLE events_p{i} PARTITION OF events FOR VALUES IN ({i})")
    conn.execute("CREATE INDEX ON events (bucket, id)")
    conn.execute(
        "INSERT INTO events SELECT g, g % 4, repeat('x', 100) FROM generate_series(1, 4000) g"
    )
    conn.execute("ANALYZE events")


def run_events_workload(conn: psycopg.Connection, rounds: int = 30) -> None:
    """Unequal heat: hot partitions get many point reads and updates, cold ones a few."""
    for r in range(rounds):
        for bucket in (0, 1):
            conn.execute(
                "UPDATE events SET payload = md5(random()::text) "
                "WHERE bucket = %s AND id %% 40 = %s",
                (bucket, r % 40),
            )
            conn.execute("SELECT count(*) FROM events WHERE bucket = %s AND id < 400", (bucket,))
        if r % 10 == 0:
            conn.execute("SELECT payload FROM events WHERE bucket = 2 AND id = 2")
            conn.execute("UPDATE events SET payload = 'c' WHERE bucket = 3 AND id = 3")


@pytest.fixture(scope="session")
def prometheus_stack(pg_pair: PgPair, server_root: Path) -> Iterator[tuple[Daemon, Daemon]]:
    """The exporter on the primary's ``app`` database and Prometheus scraping it every 1 s."""
    for binary in ("prometheus", "prometheus-postgres-exporter"):
        require(
            shutil.which(binary) is not None, f"{binary} not installed (apt-get install {binary})"
        )
    exporter = start_exporter(server_root, pg_pair.primary.dsn(APP_DB, sslmode="disable"))
    try:
        prometheus = start_prometheus(server_root, [f"127.0.0.1:{exporter.port}"], "1s")
    except Exception:
        exporter.stop()
        raise
    try:
        yield exporter, prometheus
    finally:
        prometheus.stop()
        exporter.stop()
