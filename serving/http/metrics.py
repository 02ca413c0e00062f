"""Prometheus metrics of the HTTP service, one registry per app (no import-time globals).

Request counts and latency histograms per route template, the loaded model
versions, whether (and since when not) the registry answered the last refresh,
whether the lake's series history read, refused champions, and sync bytes/runs.

With ``--workers > 1`` the workers share their figures through prometheus_client's
multiprocess mode: ``replicast serve`` points :data:`MULTIPROC_ENV` at a fresh
directory before the workers start, each worker writes its values there, and
``/metrics`` on any worker adds up every live worker's counters and histograms
(gauges: see each one's ``multiprocess_mode``).
"""

from __future__ import annotations

import contextlib
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

#: prometheus_client's multiprocess directory (set before the workers import it).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The shared metrics directory of a multi-worker server, if this is one."""
    return os.environ.get(MULTIPROC_ENV) or None


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
            multiprocess_mode="livemax",  # 1 if any live worker serves that version
        )
        self.model_loaded_at = Gauge(
            "replicast_model_loaded_timestamp_seconds",
            "When the serving model version was loaded (unix time)",
            ["model"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.registry_up = Gauge(
            "replicast_registry_up",
            "1 if the last refresh reached the model registry, else 0",
            registry=r,
            multiprocess_mode="livemin",  # 0 as soon as one worker cannot reach it
        )
        self.registry_unreachable_since = Gauge(
            "replicast_registry_unreachable_since_seconds",
            "Since when (unix time) the registry has been unreachable; 0 while it answers",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.lake_read_up = Gauge(
            "replicast_lake_read_up",
            "1 if the last read of the series history from the lake succeeded, else 0",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.model_refused = Counter(
            "replicast_model_integrity_failures",
            "Champion versions refused because their artifacts differ from their manifest",
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
            multiprocess_mode="livemax",
        )
        self.sync_runs = Counter(
            "replicast_sync_runs",
            "Sync runs finished through the API, by final state",
            ["state"],
            registry=r,
        )
        self.sync_active = Gauge(
            "replicast_sync_runs_active",
            "Sync runs executing now",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.sync_bytes = Counter(
            "replicast_sync_bytes",
            "Bytes handled by finished sync runs (kind: read, sent, written)",
            ["kind"],
            registry=r,
        )
        self.registry_up.set(0)
        self.lake_read_up.set(1)

    def set_model(self, name: str, version: str, previous: str | None, loaded_at: float) -> None:
        """Point the version gauge at ``version`` (dropping ``previous``)."""
        if previous is not None and previous != version:
            if multiprocess_dir():  # a removed child stays in the shared file: zero it
                self.model_version.labels(name, previous).set(0)
            with contextlib.suppress(KeyError):
                self.model_version.remove(name, previous)
        self.model_version.labels(name, version).set(1)
        self.model_loaded_at.labels(name).set(loaded_at)

    def render(self) -> bytes:
        """The text exposition format of every metric (of every live worker, if several)."""
        if directory := multiprocess_dir():
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=directory)
            return generate_latest(registry)
        return generate_latest(self.registry)

    @staticmethod
    def worker_exit() -> None:
        """Drop this worker's live gauges from the shared directory (on shutdown)."""
        if directory := multiprocess_dir():
            mark_process_dead(os.getpid(), directory)
