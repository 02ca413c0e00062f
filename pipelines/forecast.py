"""The batch forecast job: champion from the registry -> next horizon of each series -> lake.

Loads ``models:/replicast-load@champion``, builds each target's recent hourly
history from ``node_metrics`` (the last ``history_days`` days in the lake) and
writes the next ``horizon`` steps of every series to the ``forecasts`` dataset
(columns of ``forecasting.schemas.FORECASTS``: ``ts`` target time, ``target``,
``series_id``, ``origin`` (last observed hour), ``step``, ``model``,
``model_version`` and one ``q<level>`` column per quantile). The write is
idempotent: the same champion on the same data rewrites the same rows.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path

import pandas as pd

from forecasting.errors import DataValidationError
from forecasting.forecaster import SERIES, STEP, TS
from forecasting.lake import Lake
from forecasting.settings import Settings
from models.mlflow_registry import LOAD_MODEL, LoadedModel, Registry
from pipelines import load_series
from pipelines.job_runs import recorded_job

logger = logging.getLogger(__name__)

FORECASTS = "forecasts"


@dataclass(frozen=True)
class ForecastReport:
    """The outcome of :func:`forecast`."""

    model_version: str
    rows: int
    series: int
    targets: list[str]
    origin: pd.Timestamp
    path: Path
    seconds: float


def _latest_day(lake: Lake, dataset: str) -> date:
    parts = lake.partitions(dataset)
    if not parts:
        raise DataValidationError(
            f"{lake.path(dataset)}: no {dataset} rows; ingest some first "
            "(replicast ingest --source sample)"
        )
    return date.fromisoformat(parts[-1].parent.name.removeprefix("date="))


def forecast(
    settings: Settings,
    *,
    lake: Lake,
    loaded: LoadedModel | None = None,
    history_days: int = 21,
    record: bool = True,
) -> ForecastReport:
    """Forecast the next horizon of every load series with the registered champion.

    Args:
        settings: the settings (MLflow location, forecast config).
        lake: the lake to read ``node_metrics`` from and write ``forecasts`` to.
        loaded: an already loaded model (e.g. just trained); default: the champion.
        history_days: days of recent history fed to the model.
        record: append the run to ``job_runs`` (False when the scheduler, which records
            its runs itself, calls it).

    Returns:
        A :class:`ForecastReport` (rows written, model version, where).

    Raises:
        ModelNotFoundError: no champion is registered (run ``replicast train``).
        DataValidationError: the lake holds no ``node_metrics``.
    """
    started = time.perf_counter()
    work = partial(_forecast, settings, lake, loaded, history_days, started)
    if not record:
        return work()
    return recorded_job(
        lake,
        "forecast",
        work,
        lambda report: (
            uuid.uuid4().hex,
            {"model_version": report.model_version, "rows": report.rows, "series": report.series},
        ),
    )


def _forecast(
    settings: Settings,
    lake: Lake,
    loaded: LoadedModel | None,
    history_days: int,
    started: float,
) -> ForecastReport:
    if loaded is None:
        loaded = Registry.from_settings(settings).load_champion(LOAD_MODEL)
    model = loaded.pyfunc.unwrap_python_model()
    targets = list(getattr(model, "targets", settings.forecast.targets))
    last_day = _latest_day(lake, load_series.NODE_METRICS)
    start = pd.Timestamp(last_day, tz="UTC") - pd.Timedelta(days=history_days)
    frames = load_series.read_series(lake, targets, settings.forecast.freq, start=start)
    parts = []
    for target in targets:
        history = frames[target]
        if history.empty:
            logger.warning("%s: no recent history, skipped", target)
            continue
        origins = history.dropna(subset=["y"]).groupby(SERIES)[TS].max()
        # forecast from the last observed hour of each series
        history = history.loc[history[TS] <= history[SERIES].map(origins)]
        pred = loaded.pyfunc.predict(history, params={"target": target})
        model_name = model.models[target].model_name if hasattr(model, "models") else ""
        parts.append(
            pred.assign(
                origin=pred[SERIES].map(origins),
                model=model_name,
                model_version=str(loaded.version),
            )
        )
    if not parts:
        raise DataValidationError("no series had recent history to forecast from")
    out = pd.concat(parts, ignore_index=True)
    qcols = [c for c in out.columns if c.startswith("q")]
    out = out[[TS, "target", SERIES, "origin", STEP, "model", "model_version", *qcols]]
    out[STEP] = out[STEP].astype("int64")
    lake.write(FORECASTS, out)
    logger.info("wrote %d forecast rows (model version %s)", len(out), loaded.version)
    return ForecastReport(
        model_version=str(loaded.version),
        rows=len(out),
        series=int(out[[SERIES, "target"]].drop_duplicates().shape[0]),
        targets=sorted(out["target"].unique()),
        origin=pd.Timestamp(out["origin"].max()),
        path=lake.path(FORECASTS),
        seconds=time.perf_counter() - started,
    )
