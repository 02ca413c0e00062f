"""`replicast serve --dev` on a non-loopback address without a token is refused (exit 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from serving.cli.serve import is_loopback
from tests.serving.live import free_port


def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REPLICAST_SERVE__")}
    environ.update(REPLICAST_DATA_DIR=str(tmp_path / "var"), **env)
    replicast = str(Path(sys.executable).parent / "replicast")
    return subprocess.run(
        [replicast, "serve", "--port", str(free_port()), *args],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "db1.example.com"])
def test_dev_without_token_on_a_network_address_is_refused(tmp_path: Path, host: str) -> None:
    done = _serve(tmp_path, "--dev", "--host", host)
    assert done.returncode == 3, done.stderr
    assert "error:" in done.stderr and "--dev without an API token" in done.stderr
    assert "Traceback" not in done.stderr


def test_dev_mode_from_the_settings_is_refused_too(tmp_path: Path) -> None:
    done = _serve(tmp_path, REPLICAST_SERVE__DEV_MODE="true", REPLICAST_SERVE__HOST="0.0.0.0")
    assert done.returncode == 3, done.stderr
    assert "--dev without an API token on --host 0.0.0.0" in done.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True)]
    + [("localhost", True), ("LOCALHOST", True), ("0.0.0.0", False), ("::", False)]
    + [("10.0.0.1", False), ("", False), ("db1", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
