"""The rsync transport to a ``host:path`` target through a real sshd on a loopback port."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from replication.executor import run_sync
from replication.request import SyncRequest
from tests.conftest import require
from tests.replication.helpers import make_tree, tree_digests

pytestmark = pytest.mark.integration
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[str]:
    """sshd on 127.0.0.1:<port> accepting a throw-away key; yields the ``-e`` command for rsync."""
    require(os.access(SSHD, os.X_OK), "sshd not installed (apt-get install openssh-server)")
    require(shutil.which("rsync") is not None, "rsync not installed (apt-get install rsync)")
    require(shutil.which("ssh") is not None, "ssh client not installed")
    home = tmp_path / "ssh"
    home.mkdir(mode=0o700)
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / name)],
                       check=True, stdin=subprocess.DEVNULL)  # fmt: skip
    auth = home / "authorized_keys"
    shutil.copy(home / "client.pub", auth)
    auth.chmod(0o600)
    port = _free_port()
    config = home / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {home / 'host'}\n"
        f"AuthorizedKeysFile {auth}\nPidFile {home / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation dir (Debian)
    log = open(home / "sshd.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    rsh = (f"ssh -p {port} -i {home / 'client'} -o BatchMode=yes -o StrictHostKeyChecking=no "
           f"-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, (home / "sshd.log").read_text()
            assert time.monotonic() < deadline, "sshd did not start listening"
            time.sleep(0.05)
        yield rsh
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_rsync_over_ssh_to_host_path(tmp_path: Path, sshd: str, settings) -> None:
    src, dst = tmp_path / "src", tmp_path / "remote"
    make_tree(src, {"hot/a.db": 200_000, "cold/b.db": 100_000, "warm/c.wal": 50_000})
    target = f"{getpass.getuser()}@127.0.0.1:{dst}"
    request = SyncRequest(source=src, target=target, transport="rsync", rsh=sshd, order="alpha")
    first = run_sync(request, settings=settings)
    assert first.state == "finished", first.errors
    assert first.target == target and first.count("copied") == 3
    assert tree_digests(dst) == tree_digests(src)
    hot = src / "hot" / "a.db"
    before = hot.stat().st_mtime_ns
    data = bytearray(hot.read_bytes())
    data[50_000:50_100] = b"x" * 100
    hot.write_bytes(bytes(data))
    # same size, same second, another nanosecond: rsync's default quick check would skip it
    same_second = before - before % 10**9 + (before % 10**9 + 1) % 10**9
    os.utime(hot, ns=(same_second, same_second))
    second = run_sync(request, settings=settings)  # the journal skips what already shipped
    assert [s.name for s in second.segments if s.state == "copied"] == ["hot"]
    assert second.literal_bytes < 20_000  # delta over ssh, not the whole 200 kB
    assert tree_digests(dst) == tree_digests(src)
