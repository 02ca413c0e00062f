from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from serving.cli import app
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
