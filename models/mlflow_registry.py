"""The one generic MLflow module: the tracking store, the champion gate and champion loading.

Everything else in replicast that needs MLflow goes through a :class:`Registry`
(the pyfunc wrappers live beside it in ``models/mlflow_*.py``). A registry holds
one ``MlflowClient`` built with the explicit URI of the settings; no registry
operation reads or sets MLflow's process-wide tracking URI.

Contract (``notes/contracts.md``):

- :meth:`Registry.from_settings` targets ``settings.tracking_uri`` (default
  ``sqlite:///<data_dir>/mlflow.db``) and the experiment ``replicast`` whose
  artifacts live under ``settings.artifact_root`` (a ``file://`` URI);
  :meth:`Registry.connect` also checks the store and creates the experiment.
- :meth:`Registry.run` is the one place that points MLflow's fluent API
  (``mlflow.start_run``, ``mlflow.log_*``, ``log_model``) at the store: for the
  duration of the run only, then it restores what was there (see
  :func:`_fluent_store`).
- :meth:`Registry.register_with_gate` logs a pyfunc model inside the active run
  (signature inferred from the input example and the model's own prediction on
  it), registers it under ``name``, stores the score as the version tag ``score``
  and moves the alias ``champion`` to it only if it beats the current champion's
  stored score; otherwise the new version gets ``challenger``.
  It also records the SHA-256 of every artifact file as the version tag
  ``artifact_sha256`` (:mod:`models.artifact_manifest`).
- :meth:`Registry.load_champion` loads the version ``<name>@<alias>`` points at and
  raises :class:`~forecasting.errors.ModelNotFoundError` when it is absent or the
  registry is unreachable, and :class:`~models.artifact_manifest.ModelIntegrityError`
  (a ``ModelNotFoundError``) when its artifacts differ from the recorded manifest;
  nothing is unpickled before the check. A version registered before manifests
  existed loads with a warning.
- A network store (PostgreSQL, MySQL, an MLflow server) is checked before use with
  one TCP connect and, for a SQL store, one database connection, each bounded by
  :data:`PROBE_TIMEOUT_S`: an unreachable store fails in seconds instead of going
  through MLflow's connection retries (~100 s).
- :meth:`Registry.latest_training_runs` returns the newest finished training runs
  with their ``summary.json``, as plain data.

Error messages of this module never carry a password (:func:`forecasting.redact.redact`).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import socket
import subprocess
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc import PyFuncModel, PythonModel
from mlflow.types.schema import AnyType, ColSpec, Schema

from forecasting.errors import ModelNotFoundError, ReplicastError
from forecasting.redact import redact
from forecasting.settings import Settings
from models.artifact_manifest import (
    MANIFEST_TAG,
    ModelIntegrityError,
    build_manifest,
    dumps_manifest,
    verify_manifest,
)

logger = logging.getLogger(__name__)

LOAD_MODEL = "replicast-load"
HOT_SEGMENTS_MODEL = "replicast-hot-segments"
EXPERIMENT = "replicast"
CHAMPION = "champion"
CHALLENGER = "challenger"
SCORE_TAG = "score"
SCORE_NAME_TAG = "score_name"
LOWER_IS_BETTER_TAG = "lower_is_better"
MODEL_ARTIFACT = "model"

_REPO = Path(__file__).resolve().parents[1]

#: Seconds the TCP check of a network store may take before the store counts as unreachable.
PROBE_TIMEOUT_S = 3.0

#: Default ports of the network stores checked before use (scheme prefix -> port).
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433, "http": 80, "https": 443}

#: SQL stores whose drivers take ``connect_timeout`` (seconds).
_SQL_STORES = frozenset({"postgresql", "mysql"})


def _connect_once(uri: str) -> None:
    """Open and close one database connection to ``uri`` (no pool, bounded connect)."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(
        uri, poolclass=NullPool, connect_args={"connect_timeout": int(PROBE_TIMEOUT_S)}
    )
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


@dataclass(frozen=True)
class GateResult:
    """What :func:`register_with_gate` did."""

    version: str
    alias: Literal["champion", "challenger"]
    previous_version: str | None
    previous_score: float | None
    score: float = math.nan
    run_id: str | None = None


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version loaded as pyfunc."""

    name: str
    version: str
    pyfunc: PyFuncModel
    score: float | None = None
    tags: dict[str, str] = field(default_factory=dict)


def code_version(repo: Path = _REPO) -> str:
    """The git commit of the code (``<sha>`` or ``<sha>-dirty``), else the package version."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        if sha:
            return f"{sha}-dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"replicast=={metadata.version('replicast')}"
    except metadata.PackageNotFoundError:
        return "unknown"


def log_provenance(
    *, data_start: pd.Timestamp, data_end: pd.Timestamp, code: str | None = None
) -> dict[str, str]:
    """Record the code version and the data window on the active run (params and tags).

    Returns:
        The values logged (``code_version``, ``data_start``, ``data_end``).
    """
    values = {
        "code_version": code or code_version(),
        "data_start": pd.Timestamp(data_start).isoformat(),
        "data_end": pd.Timestamp(data_end).isoformat(),
    }
    mlflow.log_params(values)
    mlflow.set_tags(values)
    return values


@contextmanager
def _stderr_to_log() -> Iterator[None]:
    """MLflow prints registration notes to stderr; route them to the log instead."""
    buffer = io.StringIO()
    with redirect_stderr(buffer):
        yield
    for line in buffer.getvalue().splitlines():
        if line.strip():
            logger.info("mlflow: %s", line.strip())


def _signature(python_model: PythonModel, input_example: pd.DataFrame) -> Any:
    """Signature from the example and the model's prediction on it.

    A python model may declare ``optional_input_columns`` (input columns it can do
    without) and ``default_params`` (the params it accepts, with defaults).
    MLflow's ``datetime`` type rejects timezone-aware values, so a timezone-aware
    column of the example is declared ``AnyType`` (the model parses it itself).
    """
    params = getattr(python_model, "default_params", None)
    output = python_model.predict(None, input_example, params=None)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        signature = infer_signature(input_example, output, params=params)
    optional = set(getattr(python_model, "optional_input_columns", ()))
    tz_aware = {
        str(c)
        for c in input_example.columns
        if isinstance(input_example[c].dtype, pd.DatetimeTZDtype)
    }
    if signature.inputs is not None:
        signature.inputs = Schema(
            [
                ColSpec(
                    type=AnyType() if c.name in tz_aware else c.type,
                    name=c.name,
                    required=c.name not in optional,
                )
                for c in signature.inputs.inputs
            ]
        )
    return signature


def _pip_requirements() -> list[str]:
    wanted = ["mlflow", "pandas", "numpy", "cloudpickle", "lightgbm", "scikit-learn", "prophet"]
    out = []
    for dist in wanted:
        try:
            out.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return out


def _beats(score: float, previous: float | None, lower_is_better: bool) -> bool:
    if previous is None or math.isnan(previous):
        return True
    if math.isnan(score):
        return False
    return score < previous if lower_is_better else score > previous


def _current_champion(client: MlflowClient, name: str) -> tuple[str | None, float | None]:
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None
    return str(version.version), _score(version.tags)


def _score(tags: Mapping[str, str]) -> float | None:
    raw = tags.get(SCORE_TAG)
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class TrainingRun:
    """A finished ``replicast train`` run: its id, start and ``summary.json``."""

    run_id: str
    started: datetime
    summary: dict[str, Any]


_FLUENT_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
_fluent_lock = threading.RLock()


@contextmanager
def _fluent_store(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at ``uri`` for the duration, then put back what was there.

    ``mlflow.start_run``, ``mlflow.log_*`` and ``mlflow.pyfunc.log_model`` read only
    process-wide state: the module globals behind ``mlflow.set_tracking_uri`` /
    ``set_registry_uri`` (read back here through their private names, since MLflow
    has no public way to tell "unset" from its default) and the
    ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI`` environment variables that
    those setters also write. This is the only code of replicast that sets them.
    Re-entrant; another thread waits until the outermost use ends (the fluent
    state is one per process).
    """
    from mlflow.tracking._model_registry import utils as registry_state
    from mlflow.tracking._tracking_service import utils as tracking_state

    with _fluent_lock:
        saved_tracking = tracking_state._tracking_uri
        saved_registry = registry_state._registry_uri
        saved_env = {key: os.environ.get(key) for key in _FLUENT_ENV}
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(saved_tracking)  # type: ignore[arg-type]  # None = unset
            mlflow.set_registry_uri(saved_registry)  # type: ignore[arg-type]
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


class Registry:
    """The MLflow tracking store and model registry at one URI, behind one client.

    Args:
        tracking_uri: the tracking store, also used as the registry (e.g.
            ``sqlite:///var/mlflow.db`` or ``postgresql://…``).
        artifact_root: where the ``replicast`` experiment keeps its artifacts
            (used when the experiment is created).
    """

    def __init__(self, tracking_uri: str, artifact_root: Path) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self._experiment_id: str | None = None

    @cached_property
    def client(self) -> MlflowClient:
        """The client of every operation (built at first use: it opens the store)."""
        self._prepare()
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        """The registry at ``settings.tracking_uri`` (nothing is opened yet)."""
        return cls(settings.tracking_uri, settings.artifact_root)

    @classmethod
    def connect(cls, settings: Settings) -> Registry:
        """:meth:`from_settings`, checked: the store opens and the experiment exists.

        Raises:
            ModelNotFoundError: the tracking store cannot be reached or initialised.
        """
        registry = cls.from_settings(settings)
        registry.experiment_id()
        return registry

    def __repr__(self) -> str:
        return f"Registry({redact(self.tracking_uri)!r})"

    def _where(self) -> str:
        return redact(self.tracking_uri)

    def _check_reachable(self) -> None:
        """Fail fast when a network store does not answer, instead of MLflow's retries.

        MLflow retries opening a database store about ten times with exponential
        back-off (~100 s). One TCP connect, then for a SQL store one database
        connection, each bounded by :data:`PROBE_TIMEOUT_S`, tell first.

        Raises:
            ModelNotFoundError: the store refuses, does not answer in time, or its
                database does not accept connections.
        """
        try:
            parts = urlsplit(self.tracking_uri)
            scheme = parts.scheme.split("+", 1)[0].lower()
            host, port = parts.hostname, parts.port
        except ValueError:
            return  # MLflow reports a malformed URI itself
        if scheme not in _DEFAULT_PORTS:
            return  # file or sqlite
        try:
            if host:
                address = (host, port or _DEFAULT_PORTS[scheme])
                socket.create_connection(address, PROBE_TIMEOUT_S).close()
            if scheme in _SQL_STORES:
                _connect_once(self.tracking_uri)
        except Exception as exc:  # OS, sqlalchemy and driver errors
            reason = getattr(exc, "orig", None) or exc
            raise ModelNotFoundError(
                redact(f"MLflow registry at {self.tracking_uri} is unreachable: {reason}")
            ) from exc

    def _prepare(self) -> None:
        """Create the directories a SQLite store and the local artifact root need."""
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        self.artifact_root.mkdir(parents=True, exist_ok=True)

    def experiment_id(self) -> str:
        """The id of the ``replicast`` experiment, created (with its artifact root) when missing.

        Raises:
            ModelNotFoundError: the tracking store cannot be reached or initialised.
        """
        if self._experiment_id is not None:
            return self._experiment_id
        self._check_reachable()
        try:
            experiment = self.client.get_experiment_by_name(EXPERIMENT)
            if experiment is not None:
                found = str(experiment.experiment_id)
            else:
                found = self.client.create_experiment(
                    EXPERIMENT, artifact_location=self.artifact_root.as_uri()
                )
        except MlflowException as exc:
            raise ModelNotFoundError(
                redact(
                    f"MLflow tracking store {self.tracking_uri} cannot be used: {exc.message}; "
                    "check REPLICAST_MLFLOW_TRACKING_URI / data_dir"
                )
            ) from exc
        except Exception as exc:  # OS, sqlalchemy and driver errors of an unreachable store
            raise ModelNotFoundError(
                redact(f"MLflow tracking store {self.tracking_uri} cannot be used: {exc}")
            ) from exc
        self._experiment_id = found
        return found

    @contextmanager
    def run(self, run_name: str | None = None) -> Iterator[mlflow.ActiveRun]:
        """An MLflow run of the ``replicast`` experiment in this store, as the active run.

        Inside it MLflow's fluent API (``mlflow.log_params``, ``log_metrics``,
        ``log_artifact``, ``log_model``...) writes to this store; outside it MLflow's
        process-wide URIs are what they were (:func:`_fluent_store`). When a run is
        already active it is reused (and not ended here).

        Raises:
            ModelNotFoundError: the tracking store cannot be reached or initialised.
        """
        experiment_id = self.experiment_id()
        with _fluent_store(self.tracking_uri):
            active = mlflow.active_run()
            if active is not None:
                yield active
                return
            with mlflow.start_run(run_name=run_name, experiment_id=experiment_id) as run:
                yield run

    def register_with_gate(
        self,
        *,
        name: str,
        python_model: PythonModel,
        input_example: pd.DataFrame,
        score: float,
        score_name: str,
        lower_is_better: bool = True,
        artifacts: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> GateResult:
        """Log ``python_model`` as pyfunc, register it and gate the ``champion`` alias on ``score``.

        Runs inside the active MLflow run (:meth:`run`; one is started if none is
        active). The signature is inferred from ``input_example`` and
        ``python_model.predict(None, input_example)``.

        Args:
            name: registered model name (``LOAD_MODEL`` or ``HOT_SEGMENTS_MODEL``).
            python_model: the pyfunc wrapper to log.
            input_example: a small input the model predicts from.
            score: the backtest score of this version.
            score_name: what the score is (e.g. ``"mase_mean"``), stored as a tag.
            lower_is_better: direction of the score. Defaults to True.
            artifacts: extra pyfunc artifacts (name -> local path).
            tags: extra model-version tags.

        Returns:
            The new version, the alias it got, and the previous champion's version and score.

        Raises:
            ReplicastError: logging or registration failed (the message says why).
        """
        try:
            signature = _signature(python_model, input_example)
            with self.run() as run, _stderr_to_log():
                info = mlflow.pyfunc.log_model(
                    name=MODEL_ARTIFACT,
                    python_model=python_model,
                    artifacts=dict(artifacts) if artifacts else None,
                    signature=signature,
                    input_example=input_example,
                    registered_model_name=name,
                    pip_requirements=_pip_requirements(),
                )
                run_id = run.info.run_id
            version = str(info.registered_model_version)
            previous_version, previous_score = _current_champion(self.client, name)
            version_tags = {
                SCORE_TAG: repr(float(score)),
                SCORE_NAME_TAG: score_name,
                LOWER_IS_BETTER_TAG: str(lower_is_better).lower(),
                "run_id": run_id,
                **(dict(tags) if tags else {}),
            }
            version_tags[MANIFEST_TAG] = dumps_manifest(
                build_manifest(self._download(name, version))
            )
            for key, value in version_tags.items():
                self.client.set_model_version_tag(name, version, key, str(value))
            alias: Literal["champion", "challenger"] = (
                CHAMPION if _beats(float(score), previous_score, lower_is_better) else CHALLENGER
            )
            self.client.set_registered_model_alias(name, alias, version)
        except (MlflowException, OSError) as exc:
            message = getattr(exc, "message", str(exc))
            raise ReplicastError(
                redact(f"registering {name!r} in {self.tracking_uri} failed: {message}")
            ) from exc
        logger.info(
            "registered %s version %s (%s=%.4g) as %s; previous champion %s (%s)",
            name,
            version,
            score_name,
            score,
            alias,
            previous_version,
            previous_score,
        )
        return GateResult(
            version=version,
            alias=alias,
            previous_version=previous_version,
            previous_score=previous_score,
            score=float(score),
            run_id=run_id,
        )

    def _download(self, name: str, version: str) -> Path:
        """The local directory of a version's artifacts (the directory itself for ``file://``).

        Uses the artifacts' own location (file://, s3://...): a ``models:/`` URI would
        be resolved against MLflow's process-wide registry URI.
        """
        location = self.client.get_model_version_download_uri(name, version)
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=location, tracking_uri=self.tracking_uri
            )
        )

    def load_champion(self, name: str, alias: str = CHAMPION) -> LoadedModel:
        """Load the version ``<name>@<alias>`` points at, as pyfunc, after checking its files.

        Raises:
            ModelIntegrityError: the artifacts differ from the manifest recorded at
                registration (names the version and the file); nothing was unpickled.
            ModelNotFoundError: no such model or alias, or the registry is unreachable.
        """
        self._check_reachable()
        try:
            version = self.client.get_model_version_by_alias(name, alias)
            local = self._download(name, str(version.version))
            recorded = version.tags.get(MANIFEST_TAG)
            what = f"{name} version {version.version}"
            if recorded is None:
                logger.warning(
                    "%s has no artifact manifest (registered before integrity checks); "
                    "loading it unverified: retrain to register a verified version",
                    what,
                )
            else:
                verify_manifest(local, recorded, what)
            model = mlflow.pyfunc.load_model(str(local))
        except ModelIntegrityError:
            raise
        except (MlflowException, OSError) as exc:
            message = getattr(exc, "message", str(exc))
            raise ModelNotFoundError(
                redact(
                    f"no model {name!r} with alias {alias!r} in the MLflow registry at "
                    f"{self.tracking_uri} ({message}); run `replicast train` to register one"
                )
            ) from exc
        except Exception as exc:  # sqlalchemy/driver errors of an unreachable store
            raise ModelNotFoundError(
                redact(
                    f"MLflow registry at {self.tracking_uri} is unreachable while loading "
                    f"{name!r}@{alias}: {exc}"
                )
            ) from exc
        return LoadedModel(
            name=name,
            version=str(version.version),
            pyfunc=model,
            score=_score(version.tags),
            tags=dict(version.tags),
        )

    def champion_version(self, name: str) -> str | None:
        """The version the ``champion`` alias of ``name`` points at, or None.

        Raises:
            ModelNotFoundError: the registry is unreachable.
        """
        self._check_reachable()
        try:
            version, _ = _current_champion(self.client, name)
        except Exception as exc:  # sqlalchemy/driver/OS errors of an unreachable store
            raise ModelNotFoundError(
                redact(f"MLflow registry at {self.tracking_uri} is unreachable: {exc}")
            ) from exc
        return version

    def latest_training_runs(self, limit: int = 1) -> list[TrainingRun]:
        """The newest finished ``replicast train`` runs (newest first), with their summary.

        Raises:
            ModelNotFoundError: the tracking store is unreachable or a summary is unreadable.
        """
        self._check_reachable()
        try:
            experiment = self.client.get_experiment_by_name(EXPERIMENT)
            if experiment is None:
                return []
            runs = self.client.search_runs(
                [experiment.experiment_id],
                filter_string="tags.job = 'train' and attributes.status = 'FINISHED'",
                order_by=["attributes.start_time DESC"],
                max_results=limit,
            )
            out = []
            for run in runs:
                path = mlflow.artifacts.download_artifacts(
                    run_id=run.info.run_id,
                    artifact_path="summary.json",
                    tracking_uri=self.tracking_uri,
                )
                out.append(
                    TrainingRun(
                        run_id=run.info.run_id,
                        started=datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC),
                        summary=json.loads(Path(path).read_text()),
                    )
                )
        except Exception as exc:  # MlflowException, OSError, driver errors, bad JSON
            raise ModelNotFoundError(
                redact(f"reading training runs from {self.tracking_uri} failed: {exc}")
            ) from exc
        return out
