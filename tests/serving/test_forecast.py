"""POST /v1/forecast through a real uvicorn against a real MLflow champion."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest

from serving.http.app import create_app
from tests.serving.conftest import HORIZON, QUANTILES, Registry
from tests.serving.live import live_server, ready, wait_until


@pytest.fixture(scope="module")
def base(registry: Registry) -> Iterator[str]:
    app = create_app(registry.settings, configure_logs=False)
    with live_server(app) as url:
        wait_until(lambda: ready(url), timeout=60)
        yield url


def test_ready_names_the_champion(base: str) -> None:
    body = httpx.get(f"{base}/readyz").json()
    assert body["ready"] is True
    assert body["model"] == "replicast-load"
    assert body["model_version"]


def test_known_series_forecast_matches_the_model(base: str, registry: Registry) -> None:
    response = httpx.post(
        f"{base}/v1/forecast",
        json={"target": "qps_total", "series_ids": ["orders/us-east"], "horizon": 6},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == httpx.get(f"{base}/readyz").json()["model_version"]
    (series,) = body["forecasts"]
    assert series["series_id"] == "orders/us-east"
    assert series["step"] == [1, 2, 3, 4, 5, 6]
    assert set(series["values"]) == {f"q{q:g}" for q in QUANTILES}
    lo, hi = np.array(series["values"]["q0.5"]), np.array(series["values"]["q0.9"])
    assert np.all(lo <= hi)
    # the first target time is one hour after the last cached observation
    frame = registry.history["qps_total"]
    last = frame.loc[frame["series_id"] == "orders/us-east", "ts"].max()
    assert pd.Timestamp(series["ts"][0]) == last + pd.Timedelta("1h")
    # the same forecast straight from the pyfunc (pandas path) agrees
    from models.mlflow_registry import LOAD_MODEL, Registry

    pyfunc = Registry.from_settings(registry.settings).load_champion(LOAD_MODEL).pyfunc
    hist = frame[frame["series_id"] == "orders/us-east"].tail(21 * 24)
    expected = pyfunc.predict(hist, params={"target": "qps_total", "horizon": 6})
    np.testing.assert_allclose(lo, expected["q0.5"].to_numpy(), rtol=1e-9)


def test_adhoc_history_forecast(base: str) -> None:
    ts = pd.date_range("2026-11-01", periods=72, freq="1h", tz="UTC")
    y = (100 + 10 * np.sin(np.arange(72) * 2 * np.pi / 24)).tolist()
    y[5] = None
    response = httpx.post(
        f"{base}/v1/forecast",
        json={
            "target": "cpu_util",
            "history": {"series_id": "mine", "ts": [t.isoformat() for t in ts], "y": y},
            "quantiles": [0.9],
            "horizon": 3,
        },
    )
    assert response.status_code == 200, response.text
    (series,) = response.json()["forecasts"]
    assert series["series_id"] == "mine"
    assert list(series["values"]) == ["q0.9"]
    assert pd.Timestamp(series["ts"][0]) == ts[-1] + pd.Timedelta("1h")


def test_unknown_series_is_404(base: str) -> None:
    response = httpx.post(f"{base}/v1/forecast", json={"series_ids": ["orders/mars"]})
    assert response.status_code == 404
    assert "orders/mars" in response.json()["detail"]
    assert "orders/us-east" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"series_ids": ["orders/us-east"], "horizon": 0}, "horizon"),
        ({"series_ids": ["orders/us-east"], "target": "bogus"}, "target"),
        ({"series_ids": ["orders/us-east"], "quantiles": [1.5]}, "quantiles"),
        ({"series_ids": ["orders/us-east"], "extra": 1}, "extra"),
        ({"series_ids": []}, "series_ids"),
        ({}, "series_ids"),
        ({"history": {"ts": ["2026-11-01T00:00:00Z"], "y": [1.0, 2.0]}}, "history"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(base: str, body: dict, field: str) -> None:
    response = httpx.post(f"{base}/v1/forecast", json=body)
    assert response.status_code == 422, response.text
    assert field in response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"series_ids": ["orders/us-east"], "horizon": HORIZON + 1}, "horizon"),
        ({"series_ids": ["orders/us-east"], "quantiles": [0.25]}, "quantiles"),
        (
            {
                "history": {
                    "ts": ["2026-11-01T00:00:00Z", "2026-11-01T00:30:00Z"],
                    "y": [1.0, 2.0],
                }
            },
            "history.ts",
        ),
        (
            {"history": {"ts": ["2026-11-01T00:00:00Z", "2026-11-01T01:00:00Z"], "y": [1, 2]}},
            "values",
        ),
    ],
    ids=["horizon-beyond-trained", "untrained-quantile", "off-grid", "too-short"],
)
def test_model_rejections_are_422(base: str, body: dict, field: str) -> None:
    response = httpx.post(f"{base}/v1/forecast", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_malformed_json_is_422(base: str) -> None:
    response = httpx.post(
        f"{base}/v1/forecast", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_oversized_body_is_413(base: str) -> None:
    big = {"series_ids": ["orders/us-east"], "pad": "x" * 1_200_000}
    response = httpx.post(f"{base}/v1/forecast", json=big)
    assert response.status_code == 413


@pytest.mark.parametrize(
    "stamp",
    [
        "0001-01-01T00:00:00Z",
        "2262-04-12T00:00:00Z",
        "9999-12-31T23:00:00-05:00",
        "1969-12-31T23:00:00Z",
    ],
)
def test_out_of_range_timestamps_are_422_naming_the_index(base: str, stamp: str) -> None:
    body = {"history": {"ts": ["2026-01-01T22:00:00Z", stamp], "y": [1, 2]}}
    response = httpx.post(f"{base}/v1/forecast", json=body)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "history", "ts", 1]
    assert "1970-01-01 and 2200-01-01" in error["msg"]
