"""POST /v1/sizing and GET /v1/priorities through a real uvicorn."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pandas as pd
import pytest

from serving.http.app import create_app
from tests.serving.conftest import Registry
from tests.serving.live import live_server, ready, wait_until


@pytest.fixture(scope="module")
def base(registry: Registry) -> Iterator[str]:
    origin = pd.Timestamp("2026-10-10T12:00:00Z")
    older = origin - pd.Timedelta("1h")
    rows = []
    for ts, names in ((older, ["old-a", "old-b"]), (origin, ["seg-c", "seg-a", "seg-b"])):
        for rank, segment in enumerate(names, start=1):
            for replica in ("eu-west", "us-east"):
                rows.append(
                    {
                        "ts": ts,
                        "origin": ts,
                        "cluster": "orders",
                        "replica": replica,
                        "segment": segment,
                        "rank": rank,
                        "weight": 10.0 / rank,
                        "cost_s": 1.5,
                        "score": 10.0 / rank / 1.5,
                        "waited_s": 60.0,
                    }
                )
    registry.lake.write("priority_queue", pd.DataFrame(rows))
    app = create_app(registry.settings, configure_logs=False)
    with live_server(app) as url:
        wait_until(lambda: ready(url), timeout=60)
        yield url


def test_priorities_newest_queue_in_rank_order(base: str) -> None:
    response = httpx.get(
        f"{base}/v1/priorities", params={"cluster": "orders", "replica": "eu-west", "limit": 2}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert pd.Timestamp(body["origin"]) == pd.Timestamp("2026-10-10T12:00:00Z")
    assert [i["segment"] for i in body["items"]] == ["seg-c", "seg-a"]
    assert [i["rank"] for i in body["items"]] == [1, 2]
    assert {i["replica"] for i in body["items"]} == {"eu-west"}


def test_priorities_all_replicas(base: str) -> None:
    body = httpx.get(f"{base}/v1/priorities", params={"cluster": "orders"}).json()
    assert len(body["items"]) == 6
    assert body["replica"] is None


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cluster": "nope"}, 404),
        ({"cluster": "orders", "replica": "cn-north"}, 404),
        ({"cluster": "orders", "limit": 0}, 422),
        ({}, 422),
    ],
)
def test_priorities_bad_queries(base: str, params: dict, code: int) -> None:
    response = httpx.get(f"{base}/v1/priorities", params=params)
    assert response.status_code == code
    if code == 422:
        assert "cluster" in response.text or "limit" in response.text


def test_sizing_plans_every_region_with_reasons(base: str, registry: Registry) -> None:
    response = httpx.post(
        f"{base}/v1/sizing",
        json={"clusters": ["orders"], "horizon": 6, "risk": 0.9, "target_util": 0.5},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    rows = pd.DataFrame(body["rows"])
    assert set(rows["region"]) == {"us-east", "eu-west"}
    assert len(rows) == 12
    assert (rows["quantile"] == 0.9).all()
    fleet = registry.settings.fleet
    capacity = {n.name: n.qps_capacity for n in fleet.node_types}
    # every step carries its forecast at the risk quantile within the planned capacity
    usable = rows["node_type"].map(capacity) * rows["nodes"] * 0.5
    assert (rows["forecast_q"] <= usable + 1e-6).all()
    assert rows["reason"].str.contains("q0.9").all()
    assert body["total_cost"] == pytest.approx(rows["cost_per_hour"].sum())


def test_sizing_restricted_node_types(base: str) -> None:
    body = httpx.post(
        f"{base}/v1/sizing", json={"clusters": ["orders"], "horizon": 3, "node_types": ["db.small"]}
    ).json()
    assert {r["node_type"] for r in body["rows"]} == {"db.small"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"clusters": ["nope"]}, 404),
        ({"node_types": ["db.huge"]}, 404),
        ({"risk": 1.5}, 422),
        ({"horizon": 500}, 422),
        ({"clusters": []}, 422),
    ],
)
def test_sizing_bad_requests(base: str, body: dict, code: int) -> None:
    response = httpx.post(f"{base}/v1/sizing", json=body)
    assert response.status_code == code, response.text
