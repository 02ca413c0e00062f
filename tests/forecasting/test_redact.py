"""redact: secrets in URIs, DSNs and messages are masked; everything else is kept as written."""

from __future__ import annotations

import pytest

from forecasting.redact import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://bob:s3cret@db:5432/x", "postgresql://bob:***@db:5432/x"),
        ("ftp://u:pw@host/x", "ftp://u:***@host/x"),  # any scheme, known or not
        (
            "postgresql://bob@db/x?password=pw&sslmode=require",
            "postgresql://bob@db/x?password=***&sslmode=require",
        ),
        ("https://h/x?token=abc", "https://h/x?token=***"),
        ("host=db user=bob password=secret dbname=x", "host=db user=bob password=*** dbname=x"),
        ("host=db password='a b c'", "host=db password=***"),
        (
            "could not connect to postgresql://u:pw@h/db: refused",
            "could not connect to postgresql://u:***@h/db: refused",
        ),
    ],
)
def test_secrets_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "prometheus://host:9090",
        "postgresql://bob@db:5432/x?sslmode=require",
        "sqlite:////abs/path/mlflow.db",
        "file:///var/data/nodes.csv",
        "no secret here",
        "",
    ],
)
def test_text_without_secret_is_unchanged(text: str) -> None:
    assert redact(text) == text
