"""``Infinity``, ``-Infinity`` and ``NaN`` in a JSON body: 422 naming the field, on every POST.

Python's JSON reader accepts these tokens, so the request models must refuse them
(``allow_inf_nan=False``). The numeric fields are read from the live OpenAPI schema,
so a new numeric field of any POST body is covered (or this test says it is not).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from serving.http.app import create_app
from tests.serving.conftest import TOKEN, Registry
from tests.serving.live import live_server, ready, wait_until

AUTH = {"Authorization": f"Bearer {TOKEN}"}
HISTORY = {"target": "qps_total", "history": {"ts": ["2026-10-10T23:00:00Z"], "y": [1.0]}}
#: route -> (a valid body, the numeric fields it carries); ``0`` is the first list item.
BODIES: dict[str, list[tuple[dict[str, Any], list[tuple[str, ...]]]]] = {
    "/v1/forecast": [
        (
            {"target": "qps_total", "series_ids": ["orders/us-east"], "quantiles": [0.5]},
            [("horizon",), ("quantiles", "0")],
        ),
        (HISTORY, [("history", "y", "0")]),
    ],
    "/v1/sizing": [({}, [("horizon",), ("risk",), ("target_util",)])],
    "/v1/sync/runs": [
        (
            {"source": "primary", "target": "replica"},
            [("budget_bytes",), ("budget_seconds",), ("bwlimit",), ("concurrency",)],
        )
    ],
}
TOKENS = ("Infinity", "-Infinity", "NaN")


@pytest.fixture(scope="module")
def base(registry: Registry) -> Iterator[str]:
    app = create_app(registry.settings, configure_logs=False)
    with live_server(app) as url:
        wait_until(lambda: ready(url), timeout=60)
        yield url


def _numeric_fields(schema: dict[str, Any], spec: dict[str, Any]) -> set[tuple[str, ...]]:
    """Every number/integer leaf of ``schema`` ($ref, anyOf, arrays and objects followed)."""
    refs = spec["components"]["schemas"]

    def walk(node: dict[str, Any], at: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        if "$ref" in node:
            yield from walk(refs[node["$ref"].rsplit("/", 1)[1]], at)
        for option in node.get("anyOf", []):
            yield from walk(option, at)
        if node.get("type") in ("number", "integer"):
            yield at
        if node.get("type") == "array":
            yield from walk(node["items"], (*at, "0"))
        for name, prop in node.get("properties", {}).items():
            yield from walk(prop, (*at, name))

    return set(walk(schema, ()))


def test_every_numeric_field_of_every_post_body_is_covered(base: str) -> None:
    spec = httpx.get(f"{base}/openapi.json").json()
    with_body = {
        path: op["post"]["requestBody"]["content"]["application/json"]["schema"]
        for path, op in spec["paths"].items()
        if "post" in op and "requestBody" in op["post"]
    }
    assert set(with_body) == set(BODIES)
    for path, schema in with_body.items():
        covered = {field for _, fields in BODIES[path] for field in fields}
        assert _numeric_fields(schema, spec) == covered, path


CASES = [
    pytest.param(path, body, field, token, id=f"{path}:{'.'.join(field)}={token}")
    for path, variants in BODIES.items()
    for body, fields in variants
    for field in fields
    for token in TOKENS
]


def _with(body: dict[str, Any], field: tuple[str, ...], token: str) -> str:
    """``body`` as JSON text with the bare token ``token`` at ``field``."""
    out = json.loads(json.dumps(body))
    node: Any = out
    keys: list[Any] = [int(k) if k.isdigit() else k for k in field]
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = "__TOKEN__"
    return json.dumps(out).replace('"__TOKEN__"', token)


@pytest.mark.parametrize(("path", "body", "field", "token"), CASES)
def test_non_finite_numbers_are_422_naming_the_field(
    base: str, path: str, body: dict[str, Any], field: tuple[str, ...], token: str
) -> None:
    text = _with(body, field, token)
    assert token in text
    response = httpx.post(
        f"{base}{path}", content=text, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    locs = [err["loc"] for err in response.json()["detail"]]
    expected = ["body", *(int(p) if p.isdigit() else p for p in field)]
    assert expected in locs, locs
