"""The one generic MLflow module: tracking setup, the champion gate and champion loading.

Everything else in replicast that needs the registry goes through these functions
(the pyfunc wrappers live beside it in ``models/mlflow_*.py``).

Contract (``notes/contracts.md``):

- :func:`configure` points MLflow at ``settings.tracking_uri`` (default
  ``sqlite:///<data_dir>/mlflow.db``) and selects the experiment ``replicast``
  whose artifacts live under ``settings.artifact_root`` (a ``file://`` URI).
- :func:`register_with_gate` logs a pyfunc model inside the active run (signature
  inferred from the input example and the model's own prediction on it), registers
  it under ``name``, stores the score as the version tag ``score`` and moves the
  alias ``champion`` to it only if it beats the current champion's stored score;
  otherwise the new version gets ``challenger``.
- :func:`load_champion` loads ``models:/<name>@<alias>`` and raises
  :class:`~forecasting.errors.ModelNotFoundError` when it is absent or the
  registry is unreachable.
"""

from __future__ import annotations

import io
import logging
import math
import subprocess
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc import PyFuncModel, PythonModel
from mlflow.types.schema import AnyType, ColSpec, Schema

from forecasting.errors import ModelNotFoundError, ReplicastError
from forecasting.settings import Settings

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


def configure(settings: Settings) -> None:
    """Point MLflow at the settings' tracking store and select the ``replicast`` experiment.

    Creates the data directory (SQLite needs it) and the experiment with its
    artifact location under ``settings.artifact_root`` when missing.

    Raises:
        ModelNotFoundError: the tracking store cannot be reached or initialised.
    """
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    settings.artifact_root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            client.create_experiment(EXPERIMENT, artifact_location=settings.artifact_root.as_uri())
        mlflow.set_experiment(EXPERIMENT)
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"MLflow tracking store {uri} cannot be used: {exc.message}; "
            "check REPLICAST_MLFLOW_TRACKING_URI / data_dir"
        ) from exc


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
def _run() -> Iterator[mlflow.ActiveRun]:
    active = mlflow.active_run()
    if active is not None:
        yield active
        return
    with mlflow.start_run() as run:
        yield run


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
    raw = version.tags.get(SCORE_TAG)
    try:
        score = float(raw) if raw is not None else None
    except ValueError:
        score = None
    return str(version.version), score


def register_with_gate(
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

    Runs inside the active MLflow run (one is started if none is active). The
    signature is inferred from ``input_example`` and ``python_model.predict(None,
    input_example)``.

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
    configured_uri = mlflow.get_tracking_uri()
    client = MlflowClient()
    try:
        signature = _signature(python_model, input_example)
        with _run() as run, _stderr_to_log():
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
        previous_version, previous_score = _current_champion(client, name)
        version_tags = {
            SCORE_TAG: repr(float(score)),
            SCORE_NAME_TAG: score_name,
            LOWER_IS_BETTER_TAG: str(lower_is_better).lower(),
            "run_id": run_id,
            **(dict(tags) if tags else {}),
        }
        for key, value in version_tags.items():
            client.set_model_version_tag(name, version, key, str(value))
        alias: Literal["champion", "challenger"] = (
            CHAMPION if _beats(float(score), previous_score, lower_is_better) else CHALLENGER
        )
        client.set_registered_model_alias(name, alias, version)
    except MlflowException as exc:
        raise ReplicastError(
            f"registering {name!r} in {configured_uri} failed: {exc.message}"
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


def load_champion(
    name: str, alias: str = CHAMPION, *, settings: Settings | None = None
) -> LoadedModel:
    """Load ``models:/<name>@<alias>`` as pyfunc.

    Args:
        name: registered model name.
        alias: the alias to follow. Defaults to ``"champion"``.
        settings: when given, :func:`configure` is called first; otherwise the
            current MLflow tracking URI is used.

    Raises:
        ModelNotFoundError: no such model or alias, or the registry is unreachable.
    """
    if settings is not None:
        configure(settings)
    uri = mlflow.get_tracking_uri()
    try:
        client = MlflowClient()
        version = client.get_model_version_by_alias(name, alias)
        model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
    except (MlflowException, OSError) as exc:
        message = getattr(exc, "message", str(exc))
        raise ModelNotFoundError(
            f"no model {name!r} with alias {alias!r} in the MLflow registry at {uri} "
            f"({message}); run `replicast train` to register one"
        ) from exc
    except Exception as exc:  # sqlalchemy/driver errors of an unreachable store
        raise ModelNotFoundError(
            f"MLflow registry at {uri} is unreachable while loading {name!r}@{alias}: {exc}"
        ) from exc
    raw = version.tags.get(SCORE_TAG)
    try:
        score = float(raw) if raw is not None else None
    except ValueError:
        score = None
    return LoadedModel(
        name=name,
        version=str(version.version),
        pyfunc=model,
        score=score,
        tags=dict(version.tags),
    )


def champion_version(name: str) -> str | None:
    """The version the ``champion`` alias points at, or None."""
    version, _ = _current_champion(MlflowClient(), name)
    return version
