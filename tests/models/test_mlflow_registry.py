"""The champion gate and champion loading against a real SQLite MLflow store under tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.pyfunc import PythonModel

from forecasting.errors import ModelNotFoundError
from forecasting.settings import Settings
from models.mlflow_registry import (
    CHAMPION,
    SCORE_TAG,
    code_version,
    configure,
    load_champion,
    log_provenance,
    register_with_gate,
)

NAME = "replicast-test-gate"


class Scaler(PythonModel):
    """A tiny pyfunc: y * factor (the factor tells versions apart)."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({"out": model_input["y"].astype(float) * self.factor})


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its tables created once (migrations are slow)."""
    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture(autouse=True)
def _fresh_store(settings: Settings, migrated_db: Path) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(migrated_db, settings.data_dir / "mlflow.db")


EXAMPLE = pd.DataFrame({"y": [1.0, 2.0, 3.0]})


def _register(factor: float, score: float, **kwargs):
    with mlflow.start_run():
        return register_with_gate(
            name=NAME,
            python_model=Scaler(factor),
            input_example=EXAMPLE,
            score=score,
            score_name="mase",
            **kwargs,
        )


def _champion_factor() -> float:
    return float(load_champion(NAME).pyfunc.predict(EXAMPLE)["out"].iloc[0])


def test_configure_uses_sqlite_and_artifacts_under_data_dir(settings: Settings) -> None:
    configure(settings)
    assert mlflow.get_tracking_uri() == settings.tracking_uri
    assert settings.tracking_uri.startswith("sqlite:///")
    assert (settings.data_dir / "mlflow.db").is_file()
    experiment = MlflowClient().get_experiment_by_name("replicast")
    assert experiment is not None
    assert experiment.artifact_location == settings.artifact_root.as_uri()


def test_better_score_moves_champion_worse_gets_challenger(settings: Settings) -> None:
    configure(settings)
    first = _register(1.0, score=1.0)
    assert (first.alias, first.previous_version, first.previous_score) == (CHAMPION, None, None)
    assert _champion_factor() == 1.0

    worse = _register(2.0, score=1.5)
    assert worse.alias == "challenger"
    assert (worse.previous_version, worse.previous_score) == (first.version, 1.0)
    assert load_champion(NAME).version == first.version
    assert load_champion(NAME, "challenger").version == worse.version
    assert _champion_factor() == 1.0

    better = _register(3.0, score=0.8)
    assert better.alias == CHAMPION
    assert better.previous_version == first.version
    loaded = load_champion(NAME)
    assert (loaded.version, loaded.score) == (better.version, 0.8)
    assert _champion_factor() == 3.0
    tags = MlflowClient().get_model_version(NAME, better.version).tags
    assert float(tags[SCORE_TAG]) == 0.8
    assert tags["score_name"] == "mase"


def test_higher_is_better_direction(settings: Settings) -> None:
    configure(settings)
    _register(1.0, score=0.5, lower_is_better=False)
    assert _register(2.0, score=0.4, lower_is_better=False).alias == "challenger"
    assert _register(3.0, score=0.9, lower_is_better=False).alias == CHAMPION


def test_signature_and_input_example_are_logged(settings: Settings) -> None:
    configure(settings)
    _register(1.0, score=1.0)
    info = mlflow.models.get_model_info(f"models:/{NAME}@champion")
    assert info.signature is not None
    assert info.signature.inputs.input_names() == ["y"]
    assert info.signature.outputs.input_names() == ["out"]
    assert info.saved_input_example_info is not None


def test_missing_model_or_alias_is_a_clear_error(settings: Settings) -> None:
    configure(settings)
    with pytest.raises(ModelNotFoundError, match="no model 'replicast-load'.*replicast train"):
        load_champion("replicast-load")
    _register(1.0, score=1.0)
    with pytest.raises(ModelNotFoundError, match="'nope'"):
        load_champion(NAME, "nope")


def test_unreachable_registry_is_model_not_found(settings: Settings, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    mlflow.set_tracking_uri(f"sqlite:///{blocker}/sub/mlflow.db")
    try:
        with pytest.raises(ModelNotFoundError):
            load_champion("replicast-load")
    finally:
        configure(settings)


def test_provenance_logs_code_version_and_window(settings: Settings) -> None:
    configure(settings)
    assert code_version()
    with mlflow.start_run() as run:
        values = log_provenance(
            data_start=pd.Timestamp("2026-01-01", tz="UTC"),
            data_end=pd.Timestamp("2026-02-01", tz="UTC"),
        )
    params = MlflowClient().get_run(run.info.run_id).data.params
    assert params["data_start"].startswith("2026-01-01")
    assert params["data_end"].startswith("2026-02-01")
    assert params["code_version"] == values["code_version"]
