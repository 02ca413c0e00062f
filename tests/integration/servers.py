"""Throw-away real servers for the integration tests: PostgreSQL primary + streaming replica,
Prometheus and the PostgreSQL exporter, each on a spare loopback port in a temp dir.

Servers are started detached (own session, stdout/stderr to files, never the test
runner's pipes) and stopped by PID. PostgreSQL refuses to run as root, so when the
tests run as root the data directories are handed to the ``postgres`` user and
every PostgreSQL binary runs through ``runuser``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

PG_BIN = Path(os.environ.get("REPLICAST_PG_BIN", "/usr/lib/postgresql/15/bin"))
EXPORTER_QUERIES = (
    Path(__file__).resolve().parents[2] / "pipelines" / "sources" / "exporter_queries.yaml"
)


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_available() -> tuple[bool, str]:
    """Whether PostgreSQL server binaries and (when root) the postgres user exist."""
    if not (PG_BIN / "initdb").exists():
        return False, f"PostgreSQL server binaries not found in {PG_BIN}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False, "running as root without a 'postgres' user to run initdb"
        if shutil.which("runuser") is None:
            return False, "running as root without runuser"
    return True, ""


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(cmd: list[str], log: Path) -> None:
    with open(log, "ab") as out:
        subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True
        )


@dataclass
class PgServer:
    """One PostgreSQL server in ``datadir`` listening on 127.0.0.1:``port``."""

    datadir: Path
    port: int
    log: Path

    def dsn(self, dbname: str = "postgres", **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}" + (
            f"?{query}" if query else ""
        )

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.dsn(dbname), autocommit=True)

    def start(self) -> None:
        cmd = [
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "30",
        ]
        _run(
            _as_postgres([*cmd, "-o", f"-p {self.port} -k {self.datadir}", "start"]),
            self.log.with_suffix(".ctl.log"),
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            _run(
                _as_postgres(
                    [
                        str(PG_BIN / "pg_ctl"),
                        "-D",
                        str(self.datadir),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ]
                ),
                self.log.with_suffix(".ctl.log"),
            )


@dataclass
class PgPair:
    """A primary and a streaming replica fed through a replication slot."""

    primary: PgServer
    replica: PgServer
    slot: str = "replica1"

    def stop(self) -> None:
        self.replica.stop()
        self.primary.stop()


def start_pg_pair(base: Path, slot: str = "replica1") -> PgPair:
    """initdb a primary, start it, pg_basebackup a streaming replica and start that too."""
    base.mkdir(parents=True, exist_ok=True)
    _chown_postgres(base)
    primary_dir, replica_dir = base / "primary", base / "replica"
    log = base / "setup.log"
    _run(
        _as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(primary_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        log,
    )
    with open(primary_dir / "postgresql.conf", "a") as conf:
        conf.write(
            "\nlisten_addresses = '127.0.0.1'\nwal_level = replica\nmax_wal_senders = 5\n"
            "max_replication_slots = 5\nfsync = off\nsynchronous_commit = off\n"
            "full_page_writes = off\nshared_buffers = 32MB\nmax_connections = 40\n"
            "track_io_timing = on\nwal_sender_timeout = 0\n"
        )
    with open(primary_dir / "pg_hba.conf", "a") as hba:
        hba.write("host replication postgres 127.0.0.1/32 trust\n")
    primary = PgServer(primary_dir, free_port(), base / "primary.log")
    primary.start()
    _run(
        _as_postgres(
            [
                str(PG_BIN / "pg_basebackup"),
                "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                "-D", str(replica_dir), "-R", "-X", "stream", "-C", "-S", slot, "--no-sync",
            ]
        ),
        log,
    )  # fmt: skip
    replica = PgServer(replica_dir, free_port(), base / "replica.log")
    with open(replica_dir / "postgresql.conf", "a") as conf:
        conf.write("\nhot_standby = on\nwal_receiver_status_interval = 1s\n")
    replica.start()
    pair = PgPair(primary, replica, slot)
    wait_for(lambda: _streaming(primary), 30, "the replica to stream from the primary")
    return pair


def _streaming(primary: PgServer) -> bool:
    with primary.connect() as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
        return bool(row.fetchone()[0])


def wait_for(check, timeout: float, what: str) -> None:
    """Poll ``check()`` until true; raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # servers still starting
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what} (last error: {last})")


@dataclass
class Daemon:
    """A background process started by us, stopped by its PID."""

    name: str
    proc: subprocess.Popen
    log: Path
    port: int
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _spawn(
    name: str, cmd: list[str], log: Path, port: int, env: dict[str, str] | None = None
) -> Daemon:
    out = open(log, "ab")  # noqa: SIM115 - the child keeps it; closed when the process ends
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    finally:
        out.close()
    return Daemon(name, proc, log, port)


def start_exporter(base: Path, dsn: str) -> Daemon:
    """prometheus-postgres-exporter against ``dsn`` with the repo's extra queries."""
    port = free_port()
    exporter = (
        shutil.which("prometheus-postgres-exporter") or "/usr/bin/prometheus-postgres-exporter"
    )
    daemon = _spawn(
        "postgres-exporter",
        [
            exporter,
            f"--web.listen-address=127.0.0.1:{port}",
            f"--extend.query-path={EXPORTER_QUERIES}",
            "--disable-settings-metrics",
        ],
        base / "exporter.log",
        port,
        env={"DATA_SOURCE_NAME": dsn},
    )
    wait_for(
        lambda: "pg_up 1" in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text,
        30,
        "the postgres exporter to answer",
    )
    return daemon


def start_prometheus(base: Path, targets: list[str], scrape_interval: str = "1s") -> Daemon:
    """Prometheus scraping ``targets`` (host:port) every ``scrape_interval``."""
    port = free_port()
    data = base / "prometheus-data"
    data.mkdir(parents=True, exist_ok=True)
    config = base / "prometheus.yml"
    config.write_text(
        "global:\n"
        f"  scrape_interval: {scrape_interval}\n"
        f"  evaluation_interval: {scrape_interval}\n"
        "scrape_configs:\n"
        "  - job_name: postgres\n"
        "    static_configs:\n"
        f"      - targets: [{', '.join(repr(t) for t in targets)}]\n"
    )
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    daemon = _spawn(
        "prometheus",
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        base / "prometheus.log",
        port,
    )
    wait_for(
        lambda: httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=5).status_code == 200,
        30,
        "Prometheus to be ready",
    )
    return daemon
