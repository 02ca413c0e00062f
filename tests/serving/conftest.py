"""A real MLflow registry (SQLite under a temp dir) with a small load champion, and a lake.

The champion is a seasonal-naive model per target fitted on a simulated fleet,
wrapped in the real ``models.mlflow_load.LoadForecastModel`` and registered
through ``models.mlflow_registry.register_with_gate``: the same path training takes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from forecasting.lake import Lake
from forecasting.settings import Cluster, Fleet, Settings

TOKEN = "test-token-0123456789"
TARGETS = ("qps_total", "cpu_util", "repl_bytes")
QUANTILES = (0.5, 0.9)
HORIZON = 24


@dataclass
class Registry:
    """Settings pointing at a registry that has a champion, and a way to add versions."""

    settings: Settings
    lake: Lake
    history: dict  # target -> long frame series_id, ts, y
    best_score: float = float("inf")

    def register_better(self) -> str:
        """Register a version that beats the current champion (so it takes the alias)."""
        score = 1.0 if self.best_score == float("inf") else self.best_score / 2
        return self.register(score)

    def register(self, score: float) -> str:
        """Register a new version with ``score`` (lower wins the champion alias)."""
        from models.baselines import SeasonalNaive
        from models.mlflow_load import LoadForecastModel, TargetModel
        from models.mlflow_registry import LOAD_MODEL
        from models.mlflow_registry import Registry as MlflowRegistry

        registry = MlflowRegistry.connect(self.settings)
        models = {
            target: TargetModel("seasonal_naive_day", SeasonalNaive(24).fit(frame))
            for target, frame in self.history.items()
        }
        python_model = LoadForecastModel(models, horizon=HORIZON, quantiles=QUANTILES)
        frame = self.history[TARGETS[0]]
        first = frame[frame["series_id"] == frame["series_id"].iloc[0]].tail(48)
        with registry.run():
            gate = registry.register_with_gate(
                name=LOAD_MODEL,
                python_model=python_model,
                input_example=first.assign(target=TARGETS[0]).reset_index(drop=True),
                score=score,
                score_name="mase_mean",
            )
        self.best_score = min(self.best_score, score)
        return gate.version


def small_fleet() -> Fleet:
    """One cluster in two regions: small enough to simulate and train in seconds."""
    return Fleet(
        clusters=[Cluster(name="orders", primary_region="us-east", regions=["us-east", "eu-west"])]
    )


def make_settings(root: Path, **serve: object) -> Settings:
    return Settings(
        data_dir=root / "var",
        mlflow_tracking_uri=f"sqlite:///{root / 'var' / 'mlflow.db'}",
        fleet=small_fleet(),
        serve={"refresh_seconds": 3600, "api_token": TOKEN, **serve},
    )


@pytest.fixture(scope="session")
def blank_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its tables created (slow once), copied by the fixtures."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("blank-mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def _root_with_store(tmp_path_factory: pytest.TempPathFactory, name: str, blank: Path) -> Path:
    root = tmp_path_factory.mktemp(name)
    (root / "var").mkdir()
    shutil.copyfile(blank, root / "var" / "mlflow.db")
    return root


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, blank_mlflow_db: Path) -> Iterator[Registry]:
    from pipelines.load_series import read_series
    from pipelines.simulate import simulate_fleet

    root = _root_with_store(tmp_path_factory, "registry", blank_mlflow_db)
    settings = make_settings(root)
    sim = simulate_fleet(settings.fleet, start="2026-10-01", days=10, seed=7, nodes_per_region=1)
    lake = Lake(settings.lake_dir)
    lake.write("node_metrics", sim.node_metrics)
    history = read_series(lake, list(TARGETS))
    reg = Registry(settings=settings, lake=lake, history=history)
    reg.register_better()
    yield reg


@pytest.fixture(scope="session")
def empty_registry(tmp_path_factory: pytest.TempPathFactory, blank_mlflow_db: Path) -> Path:
    """A data dir whose MLflow store exists (tables created) but holds no model."""
    return _root_with_store(tmp_path_factory, "empty-registry", blank_mlflow_db)
