"""Shared fixtures: a settings object and a lake rooted under ``tmp_path``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forecasting.lake import Lake
from forecasting.settings import Settings, get_settings

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "data" / "sample"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip when a real server/tool is missing; in CI (``CI=true``) fail loudly instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Every test gets its own data dir and no stray replicast.toml."""
    monkeypatch.setenv("REPLICAST_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("REPLICAST_CONFIG", raising=False)
    monkeypatch.delenv("REPLICAST_MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def settings() -> Settings:
    return get_settings()


@pytest.fixture
def lake(settings: Settings) -> Lake:
    return Lake(settings.lake_dir)
