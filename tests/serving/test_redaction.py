"""Every boundary redacts: log lines (message, args, traceback), caplog records, HTTP error
bodies, ``job_runs`` rows and CLI error lines never carry a password."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import typer
from fastapi import FastAPI

from forecasting.errors import ModelNotFoundError, ReplicastError, UnknownKeyError
from forecasting.lake import Lake
from pipelines.job_runs import JOB_RUNS, JobRun, record_run
from serving.cli.errors import handle_errors
from serving.http.errors import install_error_handlers
from serving.logs import configure_logging

SECRET = "pw-Zq81-secret"
URI = f"postgresql+psycopg://mlflow:{SECRET}@db.internal:5432/mlflow"
DSN = f"host=db.internal password={SECRET} dbname=mlflow"
QUERY = f"postgresql://db.internal/mlflow?user=mlflow&password={SECRET}"


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_log_lines_and_records_are_redacted(
    restore_root: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging("INFO", json=True)
    root = logging.getLogger()
    root.addHandler(caplog.handler)
    log = logging.getLogger("replicast.test")
    log.warning("store %s failed", URI)
    log.warning("dsn %s / %s", DSN, QUERY)
    try:
        raise RuntimeError(f"cannot connect to {URI}")
    except RuntimeError:
        log.exception("refresh failed")
    text = out.getvalue()
    assert "db.internal" in text and "cannot connect" in text  # the lines are there
    assert SECRET not in text
    assert SECRET not in caplog.text
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_http_error_bodies_are_redacted() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/missing")
    async def missing() -> None:
        raise UnknownKeyError(f"no series in {QUERY}")

    @app.get("/down")
    async def down() -> None:
        raise ModelNotFoundError(f"registry {URI} is unreachable ({DSN})")

    transport = httpx.ASGITransport(app=app)

    async def get(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path)

    import asyncio

    for path, code in (("/missing", 404), ("/down", 503)):
        response = asyncio.run(get(path))
        assert response.status_code == code
        assert "db.internal" in response.text and SECRET not in response.text


def test_job_run_rows_are_redacted(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    run = JobRun("train", "r1", "failed", datetime.now(UTC), 1.0, f"ModelNotFoundError: {URI}")
    record_run(lake, run)
    detail = lake.read(JOB_RUNS)["detail"].iloc[0]
    assert "db.internal" in detail and SECRET not in detail


def test_cli_error_lines_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    @handle_errors
    def command() -> None:
        raise ReplicastError(f"reading training runs from {URI} failed ({DSN})")

    with pytest.raises(typer.Exit):
        command()
    err = capsys.readouterr().err
    assert "db.internal" in err and SECRET not in err
