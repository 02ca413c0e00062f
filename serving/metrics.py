"""Prometheus metrics of the HTTP service, one registry per app (no import-time globals).

Request counts and latency histograms per route template, the loaded model
versions, whether the registry answered the last refresh, and sync bytes/runs.
With ``--workers > 1`` each worker exposes its own figures.
"""

from __future__ import annotations

import contextlib

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

#: Latency buckets (seconds) tuned for a hot path that answers in a few milliseconds.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class ServiceMetrics:
    """All metrics the service exports, registered on a private registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "replicast_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "replicast_http_request_duration_seconds",
            "Time from request start to the last response byte, by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_version = Gauge(
            "replicast_model_loaded",
            "1 for the model version currently serving (label version)",
            ["model", "version"],
            registry=r,
        )
        self.model_loaded_at = Gauge(
            "replicast_model_loaded_timestamp_seconds",
            "When the serving model version was loaded (unix time)",
            ["model"],
            registry=r,
        )
        self.registry_up = Gauge(
            "replicast_registry_up",
            "1 if the last refresh reached the model registry, else 0",
            registry=r,
        )
        self.refreshes = Counter(
            "replicast_model_refreshes",
            "Champion refresh attempts by outcome (swapped, unchanged, failed)",
            ["outcome"],
            registry=r,
        )
        self.known_series = Gauge(
            "replicast_known_series",
            "Series whose recent history is cached in memory, by target",
            ["target"],
            registry=r,
        )
        self.sync_runs = Counter(
            "replicast_sync_runs",
            "Sync runs finished through the API, by final state",
            ["state"],
            registry=r,
        )
        self.sync_active = Gauge(
            "replicast_sync_runs_active", "Sync runs executing now", registry=r
        )
        self.sync_bytes = Counter(
            "replicast_sync_bytes",
            "Bytes handled by finished sync runs (kind: read, sent, written)",
            ["kind"],
            registry=r,
        )
        self.registry_up.set(0)

    def set_model(self, name: str, version: str, previous: str | None, loaded_at: float) -> None:
        """Point the version gauge at ``version`` (dropping ``previous``)."""
        if previous is not None and previous != version:
            with contextlib.suppress(KeyError):
                self.model_version.remove(name, previous)
        self.model_version.labels(name, version).set(1)
        self.model_loaded_at.labels(name).set(loaded_at)

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
