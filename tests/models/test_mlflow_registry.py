"""The registry, the champion gate and champion loading against a real SQLite MLflow store
under tmp_path; no test relies on (or leaves) MLflow's process-wide tracking URI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.pyfunc import PythonModel

from forecasting.errors import ModelNotFoundError, ReplicastError
from forecasting.settings import Settings
from models.artifact_manifest import MANIFEST_TAG, ModelIntegrityError
from models.mlflow_registry import (
    CHAMPION,
    PROBE_TIMEOUT_S,
    SCORE_TAG,
    Registry,
    code_version,
    log_provenance,
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


@pytest.fixture
def registry(settings: Settings) -> Registry:
    return Registry.connect(settings)


EXAMPLE = pd.DataFrame({"y": [1.0, 2.0, 3.0]})


def _register(registry: Registry, factor: float, score: float, **kwargs):
    with registry.run():
        return registry.register_with_gate(
            name=NAME,
            python_model=Scaler(factor),
            input_example=EXAMPLE,
            score=score,
            score_name="mase",
            **kwargs,
        )


def _champion_factor(registry: Registry) -> float:
    return float(registry.load_champion(NAME).pyfunc.predict(EXAMPLE)["out"].iloc[0])


def _fluent_state() -> tuple[str | None, str | None, str | None, str | None]:
    from mlflow.tracking._model_registry import utils as registry_state
    from mlflow.tracking._tracking_service import utils as tracking_state

    return (
        tracking_state._tracking_uri,
        registry_state._registry_uri,
        os.environ.get("MLFLOW_TRACKING_URI"),
        os.environ.get("MLFLOW_REGISTRY_URI"),
    )


def test_connect_uses_sqlite_and_artifacts_under_data_dir(settings: Settings) -> None:
    before = _fluent_state()
    registry = Registry.connect(settings)
    assert registry.tracking_uri == settings.tracking_uri
    assert settings.tracking_uri.startswith("sqlite:///")
    assert (settings.data_dir / "mlflow.db").is_file()
    experiment = registry.client.get_experiment_by_name("replicast")
    assert experiment is not None
    assert experiment.artifact_location == settings.artifact_root.as_uri()
    assert _fluent_state() == before


def test_better_score_moves_champion_worse_gets_challenger(registry: Registry) -> None:
    first = _register(registry, 1.0, score=1.0)
    assert (first.alias, first.previous_version, first.previous_score) == (CHAMPION, None, None)
    assert _champion_factor(registry) == 1.0

    worse = _register(registry, 2.0, score=1.5)
    assert worse.alias == "challenger"
    assert (worse.previous_version, worse.previous_score) == (first.version, 1.0)
    assert registry.load_champion(NAME).version == first.version
    assert registry.load_champion(NAME, "challenger").version == worse.version
    assert _champion_factor(registry) == 1.0

    better = _register(registry, 3.0, score=0.8)
    assert better.alias == CHAMPION
    assert better.previous_version == first.version
    loaded = registry.load_champion(NAME)
    assert (loaded.version, loaded.score) == (better.version, 0.8)
    assert _champion_factor(registry) == 3.0
    assert registry.champion_version(NAME) == better.version
    tags = registry.client.get_model_version(NAME, better.version).tags
    assert float(tags[SCORE_TAG]) == 0.8
    assert tags["score_name"] == "mase"


def test_higher_is_better_direction(registry: Registry) -> None:
    _register(registry, 1.0, score=0.5, lower_is_better=False)
    assert _register(registry, 2.0, score=0.4, lower_is_better=False).alias == "challenger"
    assert _register(registry, 3.0, score=0.9, lower_is_better=False).alias == CHAMPION


def test_registration_outside_a_run_starts_one_and_leaves_no_global_uri(
    registry: Registry,
) -> None:
    before = _fluent_state()
    gate = registry.register_with_gate(
        name=NAME, python_model=Scaler(1.0), input_example=EXAMPLE, score=1.0, score_name="mase"
    )
    assert gate.alias == CHAMPION and gate.run_id
    assert mlflow.active_run() is None
    assert registry.client.get_run(gate.run_id).info.status == "FINISHED"
    assert _fluent_state() == before


def test_the_fluent_store_is_restored_after_a_failed_run(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    before = _fluent_state()
    with pytest.raises(RuntimeError), registry.run("boom"):
        assert mlflow.get_tracking_uri() == registry.tracking_uri
        raise RuntimeError("boom")
    assert _fluent_state() == before


def test_signature_and_input_example_are_logged(registry: Registry) -> None:
    _register(registry, 1.0, score=1.0)
    info = registry.load_champion(NAME).pyfunc.metadata
    assert info.signature is not None
    assert info.signature.inputs.input_names() == ["y"]
    assert info.signature.outputs.input_names() == ["out"]
    assert info.saved_input_example_info is not None


def test_missing_model_or_alias_is_a_clear_error(registry: Registry) -> None:
    with pytest.raises(ModelNotFoundError, match="no model 'replicast-load'.*replicast train"):
        registry.load_champion("replicast-load")
    assert registry.champion_version("replicast-load") is None
    _register(registry, 1.0, score=1.0)
    with pytest.raises(ModelNotFoundError, match="'nope'"):
        registry.load_champion(NAME, "nope")


def test_unreachable_registry_is_model_not_found(settings: Settings, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    registry = Registry(f"sqlite:///{blocker}/sub/mlflow.db", settings.artifact_root)
    with pytest.raises(ModelNotFoundError):
        registry.load_champion("replicast-load")
    with pytest.raises(ModelNotFoundError):
        registry.champion_version("replicast-load")


def test_errors_never_carry_the_password(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mlflow.store.db.utils.MAX_RETRY_COUNT", 1)  # fail at once
    uri = "postgresql://replicast:s3cret-pw@127.0.0.1:9/mlflow"
    registry = Registry(uri, settings.artifact_root)
    assert "s3cret-pw" not in repr(registry)
    for call in (
        registry.experiment_id,
        lambda: registry.champion_version(NAME),
        lambda: registry.load_champion(NAME),
        registry.latest_training_runs,
    ):
        with pytest.raises(ReplicastError) as info:
            call()
        assert "s3cret-pw" not in str(info.value)
        assert "127.0.0.1" in str(info.value)


def test_latest_training_runs_are_plain_data(registry: Registry) -> None:
    assert registry.latest_training_runs() == []
    for score in (1.0, 2.0):
        with registry.run("train"):
            mlflow.set_tag("job", "train")
            mlflow.log_dict({"score": score}, "summary.json")
    with registry.run("other"):
        mlflow.set_tag("job", "decisions")
    runs = registry.latest_training_runs(limit=5)
    assert [r.summary["score"] for r in runs] == [2.0, 1.0]
    assert runs[0].started >= runs[1].started and runs[0].run_id


def test_provenance_logs_code_version_and_window(registry: Registry) -> None:
    assert code_version()
    with registry.run() as run:
        values = log_provenance(
            data_start=pd.Timestamp("2026-01-01", tz="UTC"),
            data_end=pd.Timestamp("2026-02-01", tz="UTC"),
        )
    params = registry.client.get_run(run.info.run_id).data.params
    assert params["data_start"].startswith("2026-01-01")
    assert params["data_end"].startswith("2026-02-01")
    assert params["code_version"] == values["code_version"]


def _artifact_dir(registry: Registry, version: str) -> Path:
    location = registry.client.get_model_version_download_uri(NAME, version)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=location))


def test_registration_records_the_sha256_of_every_artifact_file(registry: Registry) -> None:
    gate = _register(registry, 2.0, score=1.0)
    tags = registry.client.get_model_version(NAME, gate.version).tags
    manifest = json.loads(tags[MANIFEST_TAG])
    directory = _artifact_dir(registry, gate.version)
    assert "python_model.pkl" in manifest and "MLmodel" in manifest
    for name, digest in manifest.items():
        assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == digest


def test_a_tampered_champion_is_refused_naming_the_version_and_the_file(
    registry: Registry,
) -> None:
    gate = _register(registry, 2.0, score=1.0)
    pickled = _artifact_dir(registry, gate.version) / "python_model.pkl"
    data = bytearray(pickled.read_bytes())
    data[len(data) // 2] ^= 0x01
    pickled.write_bytes(bytes(data))
    with pytest.raises(
        ModelIntegrityError, match=rf"{NAME} version {gate.version}.*python_model.pkl"
    ):
        registry.load_champion(NAME)
    data[len(data) // 2] ^= 0x01  # restored: loads again
    pickled.write_bytes(bytes(data))
    assert _champion_factor(registry) == 2.0


def test_an_added_or_removed_artifact_file_is_refused(registry: Registry) -> None:
    gate = _register(registry, 2.0, score=1.0)
    directory = _artifact_dir(registry, gate.version)
    (directory / "extra.pkl").write_bytes(b"x")
    with pytest.raises(ModelIntegrityError, match="extra.pkl"):
        registry.load_champion(NAME)
    (directory / "extra.pkl").unlink()
    (directory / "requirements.txt").unlink()
    with pytest.raises(ModelIntegrityError, match="requirements.txt.*missing"):
        registry.load_champion(NAME)


def test_an_unreachable_network_store_fails_within_seconds(settings: Settings) -> None:
    from tests.integration.servers import free_port

    registry = Registry(
        f"postgresql+psycopg://u:pw-secret@127.0.0.1:{free_port()}/mlflow", settings.artifact_root
    )
    started = time.monotonic()
    for call in (lambda: registry.champion_version(NAME), lambda: registry.load_champion(NAME)):
        with pytest.raises(ModelNotFoundError, match="unreachable") as info:
            call()
        assert "pw-secret" not in str(info.value)
    assert time.monotonic() - started < 2 * PROBE_TIMEOUT_S
