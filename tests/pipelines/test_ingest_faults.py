"""Ingest into a real full filesystem: a 2 MiB tmpfs as the lake (needs root to mount)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.durable import TMP_SUFFIX
from forecasting.lake import Lake
from pipelines.ingest import ingest_paths
from tests.conftest import require

NOW = pd.Timestamp("2026-12-01", tz="UTC")


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted under ``tmp_path`` (skipped where mount is not permitted)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    require(
        done.returncode == 0,
        f"cannot mount a tmpfs (root and CAP_SYS_ADMIN needed): {done.stderr.strip()}",
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _csv(path: Path, rows: int, start: str) -> Path:
    """A node_metrics CSV of random (incompressible) numbers, one row a minute."""
    rng = np.random.default_rng(rows)
    ts = pd.date_range(start, periods=rows, freq="1min", tz="UTC")
    numbers = {
        name: rng.random(rows) * scale
        for name, scale in [
            ("cpu_util", 1),
            ("qps_read", 1e4),
            ("qps_write", 1e3),
            ("disk_used_bytes", 1e12),
            ("repl_lag_s", 1),
            ("repl_bytes", 1e9),
            ("net_rtt_ms", 10),
        ]
    }
    frame = pd.DataFrame(
        {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cluster": "orders",
            "region": "us-east",
            "node": [f"n{i % 5}" for i in range(rows)],
            "role": "replica",
            **numbers,
        }
    )
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    """A small input, one that does not fit in 2 MiB, another small one."""
    return [
        _csv(tmp_path / "node_metrics-a.csv", 10, "2026-07-01"),
        _csv(tmp_path / "node_metrics-big.csv", 40_000, "2026-06-01"),
        _csv(tmp_path / "node_metrics-c.csv", 12, "2026-08-01"),
    ]


def test_disk_full_refuses_that_input_and_ingests_the_others(
    small_fs: Path, inputs: list[Path]
) -> None:
    lake = Lake(small_fs / "lake")
    reports = ingest_paths(inputs, lake=lake, now=NOW, on_error="report")
    assert [r.ok for r in reports] == [True, False, True]
    error = reports[1].error or ""
    assert error.startswith(f"{inputs[1]}: not ingested: writing the lake failed: ")
    assert "No space left on device" in error
    assert "\n" not in error
    assert not list(lake.root.rglob(f"*{TMP_SUFFIX}"))
    rows = lake.read("node_metrics")  # every file whole: the lake reads back
    days = set(rows["ts"].dt.strftime("%Y-%m-%d"))
    assert {"2026-07-01", "2026-08-01"} <= days
    assert rows["ts"].dt.strftime("%Y-%m").isin(["2026-06", "2026-07", "2026-08"]).all()


def test_the_command_exits_4_naming_the_input_in_one_line(
    small_fs: Path, inputs: list[Path]
) -> None:
    env = {**os.environ, "REPLICAST_DATA_DIR": str(small_fs / "var"), "COLUMNS": "400"}
    command = [sys.executable, "-c", "from serving.cli import app; app()", "ingest"]
    for path in inputs:
        command += ["-s", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert f"{inputs[1]}: not ingested" in errors[0]
    assert "No space left on device" in errors[0]
    rows = Lake(small_fs / "var" / "lake").read("node_metrics")
    assert len(rows[rows["ts"] >= "2026-07-01"]) == 10 + 12
