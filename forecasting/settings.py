"""Settings: one pydantic-settings class, read from ``replicast.toml`` and ``REPLICAST_*``.

Nothing is built at import time: call :func:`get_settings` (cached) or
:func:`load_settings` (explicit file and environment, for tests).
Nested fields are set from the environment with ``__``, e.g.
``REPLICAST_FORECAST__HORIZON=48`` or ``REPLICAST_SERVE__API_TOKEN=...``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from forecasting.errors import ConfigError, UnknownKeyError
from forecasting.sync_endpoints import SyncConfig, local_store_path

Target = Literal["qps_total", "cpu_util", "repl_bytes", "disk_used_bytes"]
ModelName = Literal[
    "lightgbm", "prophet", "seasonal_naive_day", "seasonal_naive_week", "ets", "ensemble"
]


class Region(BaseModel):
    """A region and the replication link that reaches it from the primary region."""

    name: str
    timezone: str
    bandwidth_bytes_s: float = Field(gt=0, description="link bandwidth from the primary region")
    rtt_ms: float = Field(ge=0)
    min_nodes: int = Field(default=2, ge=0, description="never plan fewer nodes than this")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r} (use an IANA name)") from exc
        return value


@dataclass(frozen=True)
class Link:
    """The replication link from the primary region to one region."""

    bandwidth_bytes_s: float
    rtt_ms: float


class NodeType(BaseModel):
    """A machine type a region can run, with what it can carry and what it costs."""

    name: str
    vcpus: int = Field(gt=0)
    qps_capacity: float = Field(gt=0, description="queries/s one node carries at 100 %")
    disk_bytes: float = Field(gt=0)
    hourly_cost: float = Field(gt=0)


class Cluster(BaseModel):
    """A replicated database: a primary region and replica regions."""

    name: str
    primary_region: str
    regions: list[str] = Field(min_length=1)


def _default_regions() -> list[Region]:
    return [
        Region(name="us-east", timezone="America/New_York", bandwidth_bytes_s=1.25e9, rtt_ms=1),
        Region(name="eu-west", timezone="Europe/Dublin", bandwidth_bytes_s=2.5e8, rtt_ms=75),
        Region(name="cn-north", timezone="Asia/Shanghai", bandwidth_bytes_s=4.0e7, rtt_ms=230),
    ]


def _default_node_types() -> list[NodeType]:
    return [
        NodeType(name="db.small", vcpus=2, qps_capacity=1500, disk_bytes=5e11, hourly_cost=0.17),
        NodeType(name="db.medium", vcpus=4, qps_capacity=3200, disk_bytes=1e12, hourly_cost=0.34),
        NodeType(name="db.large", vcpus=8, qps_capacity=6800, disk_bytes=2e12, hourly_cost=0.68),
        NodeType(name="db.xlarge", vcpus=16, qps_capacity=14000, disk_bytes=4e12, hourly_cost=1.36),
    ]


def _default_clusters() -> list[Cluster]:
    all_regions = ["us-east", "eu-west", "cn-north"]
    return [
        Cluster(name="orders", primary_region="us-east", regions=all_regions),
        Cluster(name="users", primary_region="us-east", regions=all_regions),
        Cluster(name="events", primary_region="eu-west", regions=all_regions),
    ]


class Fleet(BaseModel):
    """What runs where: regions (with links), node types and clusters."""

    regions: list[Region] = Field(default_factory=_default_regions, min_length=1)
    node_types: list[NodeType] = Field(default_factory=_default_node_types, min_length=1)
    clusters: list[Cluster] = Field(default_factory=_default_clusters, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Fleet:
        known = {r.name for r in self.regions}
        for i, cluster in enumerate(self.clusters):
            unknown = [r for r in [cluster.primary_region, *cluster.regions] if r not in known]
            if unknown:
                raise ValueError(
                    f"clusters[{i}] ({cluster.name}): unknown region(s) {unknown}; "
                    f"known regions are {sorted(known)}"
                )
        return self

    def region(self, name: str) -> Region:
        for region in self.regions:
            if region.name == name:
                return region
        raise UnknownKeyError(f"unknown region {name!r}; known: {[r.name for r in self.regions]}")

    def link(self, region: str) -> Link:
        """The link from the primary region to ``region`` (bandwidth and round-trip time).

        Raises:
            UnknownKeyError: no such region.
        """
        found = self.region(region)
        return Link(bandwidth_bytes_s=found.bandwidth_bytes_s, rtt_ms=found.rtt_ms)

    def cluster(self, name: str) -> Cluster:
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        raise UnknownKeyError(f"unknown cluster {name!r}; known: {[c.name for c in self.clusters]}")

    def node_type(self, name: str) -> NodeType:
        for node_type in self.node_types:
            if node_type.name == name:
                return node_type
        raise UnknownKeyError(
            f"unknown node type {name!r}; known: {[n.name for n in self.node_types]}"
        )


class ForecastConfig(BaseModel):
    """What the load models forecast and how they are judged."""

    # cast: mypy infers a lambda's list literal as list[str] against Field's union of factories
    targets: list[Target] = Field(
        default_factory=lambda: cast(
            "list[Target]", ["qps_total", "cpu_util", "repl_bytes", "disk_used_bytes"]
        )
    )
    freq: str = Field(default="1h", description="resolution of the load series (pandas alias)")
    horizon: int = Field(default=24, gt=0, description="steps ahead, at `freq`")
    quantiles: list[float] = Field(default_factory=lambda: [0.05, 0.5, 0.9, 0.95, 0.99])
    folds: int = Field(default=3, ge=1, description="rolling-origin backtest folds")
    min_history: int | None = Field(
        default=None,
        ge=1,
        description="fewest observed values per series to train and forecast from "
        "(default: two daily seasons at `freq`); lower it to try minutes of collected data",
    )
    models: list[ModelName] = Field(
        default_factory=lambda: cast(
            "list[ModelName]",
            [
                "lightgbm",
                "prophet",
                "seasonal_naive_day",
                "seasonal_naive_week",
                "ets",
                "ensemble",
            ],
        )
    )
    seed: int = 0

    @field_validator("quantiles")
    @classmethod
    def _quantiles_in_range(cls, value: list[float]) -> list[float]:
        bad = [q for q in value if not 0 < q < 1]
        if bad:
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {bad}")
        return sorted(set(value))


class SizingConfig(BaseModel):
    """How forecasts become node counts."""

    risk_quantile: float = Field(default=0.99, gt=0, lt=1)
    target_util: float = Field(default=0.7, gt=0, le=1)
    redundancy: int = Field(default=1, ge=0, description="spare nodes (N+redundancy)")
    hold_hours: int = Field(default=6, ge=0, description="scale down only after this long")


class PriorityConfig(BaseModel):
    """How pending (segment, replica) pairs are ordered."""

    max_wait_s: float = Field(
        default=6 * 3600, gt=0, description="ageing bound: no segment waits longer than this"
    )


class IngestConfig(BaseModel):
    """Which row timestamps ingest accepts; rows outside go to the quarantine."""

    ts_floor: datetime = Field(
        default=datetime(2000, 1, 1, tzinfo=UTC),
        description="earlier timestamps are quarantined (zeros, epoch values in the wrong unit)",
    )
    ts_future_tolerance: timedelta = Field(
        default=timedelta(days=1),
        ge=timedelta(0),
        description="timestamps later than now + this are quarantined (clock skew allowance)",
    )

    @field_validator("ts_floor")
    @classmethod
    def _floor_in_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ServeConfig(BaseModel):
    """The HTTP service."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, gt=0, lt=65536)
    workers: int = Field(default=1, ge=1)
    api_token: str = Field(default="", description="bearer token of the mutating routes")
    dev_mode: bool = Field(default=False, description="allow mutating routes without a token")
    refresh_seconds: float = Field(default=60, gt=0)


#: Kernel file systems no ``data_dir`` may be in.
SYSTEM_DIRS = (Path("/proc"), Path("/sys"), Path("/dev"))


class Settings(BaseSettings):
    """Everything replicast is configured with; embedded defaults need no file at all."""

    model_config = SettingsConfigDict(
        env_prefix="REPLICAST_",
        env_nested_delimiter="__",
        env_ignore_empty=True,
        extra="ignore",
        toml_file="replicast.toml",
    )

    data_dir: Path = Field(default=Path("var"), description="lake, MLflow db and artifacts")
    mlflow_tracking_uri: str | None = Field(
        default=None, description="default: sqlite:///<data_dir>/mlflow.db"
    )
    fleet: Fleet = Field(default_factory=Fleet)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    sizing: SizingConfig = Field(default_factory=SizingConfig)
    priority: PriorityConfig = Field(default_factory=PriorityConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    sync: SyncConfig = Field(
        default_factory=SyncConfig, description="named endpoints of HTTP sync runs"
    )
    schedule: dict[str, str] = Field(
        default_factory=lambda: {
            "ingest": "*/15 * * * *",
            "train": "0 3 * * *",
            "forecast": "5 * * * *",
            "plan": "10 * * * *",
        },
        description="job name -> cron expression",
    )
    ingest_sources: list[str] = Field(
        default_factory=lambda: ["sample"],
        description="what the scheduled ingest job reads: 'sample', file paths or globs, "
        "postgresql:// or prometheus:// URIs",
    )

    @field_validator("data_dir")
    @classmethod
    def _data_dir_usable(cls, value: Path) -> Path:
        """A directory (or one that can be made), never in the kernel's /proc, /sys, /dev."""
        resolved = value.expanduser().resolve()
        for system in SYSTEM_DIRS:
            if resolved.is_relative_to(system):
                raise ValueError(f"{resolved} is inside {system} (a kernel file system)")
        existing = next(p for p in (resolved, *resolved.parents) if p.exists())
        if not existing.is_dir():
            raise ValueError(f"{existing} exists and is not a directory")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @model_validator(mode="after")
    def _sync_endpoints_clear(self) -> Settings:
        self.sync.check(self.protected_paths, [r.name for r in self.fleet.regions])
        return self

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.data_dir.resolve() / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.data_dir.resolve() / "mlartifacts"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def protected_paths(self) -> dict[str, Path]:
        """replicast's own state, which no sync endpoint may be, hold or lie inside."""
        paths = {"lake": self.lake_dir, "model artifacts": self.artifact_root}
        store = local_store_path(self.tracking_uri)
        if store is not None:
            paths["MLflow store (mlflow_tracking_uri)"] = store
        paths["data dir (data_dir)"] = self.data_dir
        return paths


def load_settings(path: str | Path | None = None) -> Settings:
    """Build settings from a TOML file and ``REPLICAST_*`` environment variables.

    Args:
        path: the TOML file. Defaults to ``$REPLICAST_CONFIG`` or ``replicast.toml``;
            a default file that does not exist is fine (embedded defaults), a named one
            that does not exist is an error.

    Raises:
        ConfigError: the file or a value is invalid; the message names the field.
    """
    toml = Path(path or os.environ.get("REPLICAST_CONFIG", "replicast.toml"))
    if (path or "REPLICAST_CONFIG" in os.environ) and not toml.is_file():
        raise ConfigError(f"{toml}: settings file not found")

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=toml)

    try:
        return _FromFile()
    except ValidationError as exc:
        # a model-level error's input is the whole model (secrets included): not echoed
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            if err["loc"]
            else err["msg"]
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings ({toml} and REPLICAST_* env): {problems}") from exc
    except ValueError as exc:  # TOML syntax errors
        raise ConfigError(f"{toml}: invalid settings file: {exc}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return load_settings()
