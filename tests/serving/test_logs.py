"""Structured logs: JSON lines on whatever stderr is current."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from serving.logs import configure_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_go_to_the_current_stderr_even_after_a_swap(
    restore_root: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    at_config = io.StringIO()
    monkeypatch.setattr(sys, "stderr", at_config)
    configure_logging("INFO", json=True)
    at_config.close()  # e.g. a test runner's capture, gone when a late thread logs
    now = io.StringIO()
    monkeypatch.setattr(sys, "stderr", now)

    logging.getLogger("replicast.test").info("segment %s copied", "orders_p001")

    line = json.loads(now.getvalue().strip().splitlines()[-1])
    assert line["event"] == "segment orders_p001 copied"
    assert line["level"] == "info" and line["logger"] == "replicast.test"
    assert "timestamp" in line


def test_json_lines_carry_the_redacted_traceback(
    restore_root: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging("INFO", json=True)

    def connect() -> None:
        raise ConnectionError("cannot reach postgresql://u:SECRET@h/db")

    try:
        connect()
    except ConnectionError:
        logging.getLogger("replicast.test").exception("request failed")

    text = out.getvalue().strip().splitlines()[-1]
    assert "SECRET" not in text
    line = json.loads(text)
    assert line["event"] == "request failed"
    assert "exc_info" not in line
    assert "Traceback (most recent call last)" in line["exception"]
    assert "in connect" in line["exception"]
    assert "ConnectionError: cannot reach postgresql://" in line["exception"]
