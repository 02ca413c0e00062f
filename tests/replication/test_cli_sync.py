from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from replication.paths import Endpoint
from replication.rsync_transport import _dst_spec, _src_spec
from serving.cli import app
from tests.conftest import require
from tests.replication.helpers import make_tree, tree_digests


def test_cli_sync_copies_prints_table_and_writes_json(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src, {"a/x.db": 50_000, "b/y.db": 20_000})
    out = tmp_path / "run.json"
    result = CliRunner().invoke(
        app,
        ["sync", "--source", str(src), "--target", str(dst), "--bwlimit", "40MiB",
         "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "fell back to alphabetical" in result.output and "2 copied" in result.output
    assert tree_digests(dst) == tree_digests(src)
    data = json.loads(out.read_text())
    assert data["state"] == "finished" and data["segments_copied"] == 2
    assert data["bytes_written"] == 70_000


def test_cli_sync_errors_are_one_line_and_non_zero(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["sync", "--source", str(tmp_path / "missing"), "--target", str(tmp_path / "d")]
    )
    assert result.exit_code != 0 and "not a directory" in " ".join(result.output.split())
    bad = CliRunner().invoke(
        app, ["sync", "--source", str(tmp_path), "--target", "x", "--bwlimit", "fast"]
    )
    assert bad.exit_code != 0 and "--bwlimit" in " ".join(bad.output.split())


def test_cli_sync_failed_segment_exits_non_zero(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src, {"a/x.db": 1000, "b/y.db": 1000})
    dst.mkdir()
    (dst / "b").write_text("blocks the directory")
    result = CliRunner().invoke(app, ["sync", "--source", str(src), "--target", str(dst)])
    assert result.exit_code == 1
    assert "1 copied" in result.output and "1 failed" in result.output


def _sync(*args: str) -> Result:
    return CliRunner().invoke(app, ["sync", *args])


def _one_line(result: Result) -> str:
    """The output on one line; the command must have exited (no exception, no traceback)."""
    assert isinstance(result.exception, SystemExit | None), result.exception
    assert "Traceback" not in result.output, result.output
    return " ".join(result.output.split())


@pytest.mark.parametrize("target", ["var", "var/lake", "var/lake/x", ".", "var/mlflow.db"])
def test_cli_sync_refuses_replicast_own_state_and_touches_nothing(
    tmp_path: Path, target: str
) -> None:
    src = tmp_path / "src"
    make_tree(src, {"lake/x.db": 100, "a/y.db": 100})
    lake = tmp_path / "var" / "lake"
    make_tree(lake, {"metrics/part.parquet": 10})
    (tmp_path / "var" / "mlflow.db").write_bytes(b"db")
    before = tree_digests(tmp_path / "var")
    result = _sync("--source", str(src), "--target", target, "--delete")
    assert result.exit_code == 3, result.output
    text = _one_line(result)
    assert "--target" in text and ("data dir" in text or "lake" in text or "MLflow" in text)
    assert tree_digests(tmp_path / "var") == before


def test_cli_sync_refuses_source_and_target_that_overlap(tmp_path: Path) -> None:
    src = tmp_path / "work" / "src"
    make_tree(src, {"a/x.db": 100})
    for target in (src / "inner", tmp_path / "work", src):
        result = _sync("--source", str(src), "--target", str(target))
        assert result.exit_code == 3 and "overlaps --source" in _one_line(result)
    assert not (src / "inner").exists()


def test_cli_sync_bad_target_pattern_and_json_are_one_line_errors(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src, {"a/x.db": 100})
    (tmp_path / "file").write_text("x")
    result = _sync("--source", str(src), "--target", str(tmp_path / "file"))
    assert result.exit_code == 3 and "not a directory" in _one_line(result)
    for pattern in ("/etc/*", "../*", "a/../../*", "~/x"):
        result = _sync("--source", str(src), "--target", "dst", "--pattern", pattern)
        assert result.exit_code == 3 and "--pattern" in _one_line(result), pattern
    (tmp_path / "out").mkdir()
    result = _sync("--source", str(src), "--target", "dst", "--json", str(tmp_path / "out"))
    assert result.exit_code == 3 and "--json" in _one_line(result)
    assert not (tmp_path / "dst").exists()  # refused before the run


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--budget-seconds", "nan"),
        ("--budget-seconds", "inf"),
        ("--budget-seconds", "-1"),
        ("--budget-seconds", "0"),
        ("--budget-bytes", "0"),
        ("--budget-bytes", ""),
        ("--budget-bytes", "1.5B"),
        ("--budget-bytes", "99999999999999999999999EiB"),
        ("--bwlimit", ""),
        ("--bwlimit", "1 PB/s"),
        ("--bwlimit", "99999999999999999999999EiB"),
        ("--concurrency", "99999999999"),
    ],
)
def test_cli_sync_refuses_garbage_limits_naming_the_option(
    tmp_path: Path, option: str, value: str
) -> None:
    make_tree(tmp_path / "src", {"a/x.db": 100})
    result = _sync("--source", "src", "--target", "dst", option, value)
    assert result.exit_code != 0 and option in _one_line(result)
    assert not (tmp_path / "dst").exists()


def test_cli_sync_refuses_a_host_that_is_an_ssh_option(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", {"a/x.db": 100})
    result = _sync("--source", "src", "--target", "-oProxyCommand:/x", "--transport", "rsync")
    assert result.exit_code == 3 and "may not start with '-'" in _one_line(result)


def test_cli_sync_rsync_reads_a_dash_target_as_a_path_not_an_option(tmp_path: Path) -> None:
    require(shutil.which("rsync") is not None, "rsync binary not installed")
    make_tree(tmp_path / "src", {"a/x.db": 1000})
    result = _sync("--source", "src", "--target", "./-e=x:y", "--transport", "rsync")
    assert result.exit_code == 0, result.output
    assert tree_digests(tmp_path / "-e=x:y") == tree_digests(tmp_path / "src")
    assert _dst_spec(Endpoint("-oProxyCommand=x:/y")) == "./-oProxyCommand=x:/y/"
    assert _src_spec(Path("-src")) == "./-src/"
