"""The lazy command line: --help lists every command without importing it; each command
loads only its own module, and the sync path never pulls in the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from serving.cli import COMMANDS, app, load_command

HEAVY = ("pandas", "pyarrow", "scipy", "mlflow", "prophet", "matplotlib", "lightgbm", "dask")


def _imported_by(code: str) -> set[str]:
    """Top-level packages a fresh interpreter imports to run ``code`` (``-X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_root_help_lists_every_command_without_importing_one() -> None:
    code = (
        "import sys\n"
        "from serving.cli import app\n"
        "try:\n"
        "    app(['--help'], standalone_mode=False)\n"
        "finally:\n"
        "    loaded = [m for m in sys.modules if m.startswith('serving.cli.')]\n"
        "    print('LOADED', loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED []" in done.stdout
    for name in COMMANDS:
        assert name in done.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_listed_command_loads_under_its_name(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    assert command.callback is not None
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"replicast {name}" in result.output


def test_unknown_command_is_refused_with_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output


@pytest.mark.parametrize("command", ["--help", "sync --help"])
def test_fast_paths_import_no_heavy_library(command: str) -> None:
    args = command.split()
    loaded = _imported_by(f"from serving.cli import app\napp({args!r}, standalone_mode=False)")
    assert not loaded.intersection(HEAVY), sorted(loaded.intersection(HEAVY))


def test_sync_command_module_imports_no_heavy_library() -> None:
    loaded = _imported_by("from serving.cli import load_command\nload_command('sync')")
    assert not loaded.intersection(HEAVY), sorted(loaded.intersection(HEAVY))
