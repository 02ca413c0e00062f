"""The training job: lake -> load series -> backtest -> champion per target -> MLflow registry.

For each configured target the job builds the hourly load series
(:mod:`pipelines.load_series`), backtests every configured model with rolling
origins (``settings.forecast.folds``), picks the champion (best mean MASE, ties
on pinball; :mod:`forecasting.champion`) and refits it on all the data. One MLflow
run records params, metrics per target and model (``<target>.<model>.mase``,
``.pinball``, ``.coverage_90``), the data window, the code version, a
forecast-vs-actual PNG per target and ``summary.json``; the combined champions are
registered as ``replicast-load`` through the champion gate (score = mean champion
MASE across targets, lower is better). A ``job_runs`` row records the outcome.
"""

from __future__ import annotations

import logging
import math
import os
import reprlib
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import mlflow
import pandas as pd

from features.seasonality import season_length
from forecasting.backtest import BacktestResult, backtest
from forecasting.champion import ChampionChoice, choose_champion
from forecasting.errors import ConfigError, DataValidationError
from forecasting.forecaster import SERIES, TS, Forecaster, Y
from forecasting.lake import Lake
from forecasting.settings import ForecastConfig, ModelName, Settings, Target
from models import catalog
from models.fit_cache import FitCache
from models.mlflow_load import LoadForecastModel, TargetModel
from models.mlflow_registry import (
    LOAD_MODEL,
    GateResult,
    Registry,
    log_provenance,
)
from pipelines import load_series
from pipelines.dask_runner import make_runner, note
from pipelines.job_runs import recorded_job
from pipelines.plots import forecast_vs_actual

logger = logging.getLogger(__name__)

#: ``progress(stage, done, total)``: called as the job advances.
Progress = Callable[[str, int, int], None]

SCORE_NAME = "mase_mean_champions"
METRICS = ("mase", "pinball", "coverage_90")


@dataclass(frozen=True)
class TargetReport:
    """What training found for one target."""

    target: str
    summary: pd.DataFrame  # one row per model (index ``model``): mase_mean, pinball_mean, ...
    champion: ChampionChoice
    n_series: int
    plot: Path | None = None


@dataclass(frozen=True)
class TrainReport:
    """The outcome of :func:`train`."""

    run_id: str
    targets: dict[str, TargetReport]
    gate: GateResult
    score: float
    data_start: pd.Timestamp
    data_end: pd.Timestamp
    seconds: float
    models: list[str] = field(default_factory=list)
    folds: int = 0


def _metric_key(*parts: str) -> str:
    return ".".join(p.replace("/", "_") for p in parts)


def _check_models(models: Sequence[str]) -> list[str]:
    if not models:
        raise ConfigError("no models to train; set forecast.models or pass --models")
    unknown = [m for m in models if m not in catalog.known_models()]
    if unknown:
        raise ConfigError(
            f"unknown model(s) {unknown}; known models: {', '.join(catalog.known_models())}"
        )
    return list(dict.fromkeys(models))


def _input_example(frames: dict[str, pd.DataFrame], steps: int) -> pd.DataFrame:
    """A plain history frame of one series of the first target (the pyfunc input example)."""
    target, frame = next(iter(frames.items()))
    first = sorted(frame[SERIES].unique())[0]
    part = frame.loc[frame[SERIES] == first, [SERIES, TS, Y]].tail(steps)
    return part.assign(target=target).reset_index(drop=True)


@dataclass(frozen=True)
class _TargetJob:
    target: str
    frame: pd.DataFrame
    models: tuple[str, ...]
    config: ForecastConfig
    folds: int


@dataclass(frozen=True)
class _TargetOutcome:
    target: str
    result: BacktestResult
    choice: ChampionChoice
    forecaster: Forecaster


def _fit_target(job: _TargetJob) -> _TargetOutcome:
    """Backtest every model on one target, choose the champion and refit it on all data.

    Each fold and the refit are reported with :func:`pipelines.dask_runner.note`.
    """
    config = job.config
    logger.info(
        "backtesting %s: %d series, %d rows",
        job.target,
        job.frame[SERIES].nunique(),
        len(job.frame),
    )
    fits = FitCache()  # one memo per target: the ensemble reuses the stand-alone fits
    factories = {name: catalog.factory(name, config, fit_cache=fits) for name in job.models}  # type: ignore[arg-type]
    result = backtest(
        job.frame,
        factories,
        horizon=config.horizon,
        folds=job.folds,
        quantiles=config.quantiles,
        season_length=season_length(config.freq, "day"),
        progress=lambda name, fold: note(f"{job.target}: {name} fold {fold + 1}/{job.folds}"),
    )
    if result.scores.empty:
        raise DataValidationError(
            f"{job.target}: the series are too short for a {job.folds}-fold backtest of "
            f"horizon {config.horizon}; ingest more history or lower --folds"
        )
    choice = choose_champion(result.summary())
    forecaster = catalog.build(choice.model, config, fit_cache=fits).fit(job.frame)  # type: ignore[arg-type]
    note(f"{job.target}: refit {choice.model}")
    return _TargetOutcome(job.target, result, choice, forecaster)


#: loggers whose levels a worker process copies from the parent (the root is "")
_WORKER_LOGGERS = ("", "cmdstanpy", "prophet", "prophet.plot", "lightgbm", "statsforecast")


def _workers(requested: int | None, jobs: int) -> int:
    if requested is not None:
        return max(1, min(requested, jobs))
    return max(1, min(jobs, os.cpu_count() or 1))


def _run_targets(
    jobs: list[_TargetJob],
    *,
    dask: str | None,
    workers: int | None,
    tick: Callable[[str, int], None],
) -> list[_TargetOutcome]:
    """Fit the targets: in this process (1 worker), in spawned processes, or on Dask.

    Locally every fold and refit ticks; Dask reports each finished target (all its steps).
    """
    steps = len(jobs[0].models) * jobs[0].folds + 1 if jobs else 0

    def finished(done: int, total: int) -> None:
        tick(f"{done}/{total} targets done on Dask ({dask})", steps)

    runner = make_runner(dask, workers=_workers(workers, len(jobs)), loggers=_WORKER_LOGGERS)
    with runner:
        return runner.map(_fit_target, jobs, progress=finished if dask else None, on_note=tick)


def train(
    settings: Settings,
    *,
    lake: Lake,
    progress: Progress | None = None,
    models: Sequence[ModelName] | None = None,
    folds: int | None = None,
    targets: Sequence[Target] | None = None,
    workers: int | None = None,
    record: bool = True,
    dask: str | None = None,
) -> TrainReport:
    """Backtest, pick and register the load champions of every target.

    Args:
        settings: the settings (forecast config, fleet, MLflow location).
        lake: the lake holding ``node_metrics``.
        progress: optional ``progress(stage, done, total)`` hook.
        models: models to backtest; defaults to ``settings.forecast.models``.
        folds: rolling-origin folds; defaults to ``settings.forecast.folds``.
        targets: targets to train; defaults to ``settings.forecast.targets``.
        workers: processes the targets are spread over (one per target at most);
            defaults to the CPU count. 1 runs everything in this process.
        record: append the run to ``job_runs`` (False when the scheduler, which records
            its runs itself, calls it).
        dask: spread the targets over a Dask cluster instead of local processes:
            ``"local"`` (a local cluster) or a scheduler address ``tcp://host:8786``.

    Returns:
        A :class:`TrainReport` (per-target summaries, champions, the registry gate).

    Raises:
        ConfigError: unknown models or no targets.
        DataValidationError: the lake has no usable ``node_metrics``.
    """
    work = partial(_train, settings, lake, progress, models, folds, targets, workers, dask)
    if not record:
        return work()
    return recorded_job(
        lake,
        "train",
        work,
        lambda report: (
            report.run_id,
            {
                "model_version": report.gate.version,
                "alias": report.gate.alias,
                SCORE_NAME: report.score,
                "champions": {t: r.champion.model for t, r in report.targets.items()},
            },
        ),
    )


def _check_history_length(frames: dict[str, pd.DataFrame], *, needed: int, freq: str) -> None:
    """Fail before any backtest when a series is too short to backtest and register."""
    for target, frame in frames.items():
        counts = frame.dropna(subset=[Y]).groupby(SERIES).size()
        short = counts[counts < needed]
        if not short.empty:
            raise DataValidationError(
                f"{target}: series {reprlib.repr(list(short.index))} have only "
                f"{int(short.min())} observed values at {freq}; training needs at least "
                f"{needed} per series (forecast.min_history, default two days, and "
                "folds + 2 horizons). Collect longer history, or lower --folds, "
                "forecast.horizon or forecast.min_history."
            )


def _train(
    settings: Settings,
    lake: Lake,
    progress: Progress | None,
    models: Sequence[ModelName] | None,
    folds: int | None,
    targets: Sequence[Target] | None,
    workers: int | None,
    dask: str | None = None,
) -> TrainReport:
    started = time.perf_counter()
    config = settings.forecast
    model_names = _check_models(list(models or config.models))
    folds = int(folds or config.folds)
    targets = list(targets or config.targets)
    if not targets:
        raise ConfigError("no targets to train; set forecast.targets")
    day = season_length(config.freq, "day")
    for name in model_names:
        catalog.factory(name, config)  # unknown names fail now, not in a worker

    frames = load_series.read_series(lake, targets, config.freq)
    min_history = config.min_history or 2 * day
    _check_history_length(
        frames, needed=max(min_history, (folds + 2) * config.horizon), freq=config.freq
    )
    total = len(targets) * (len(model_names) * folds + 1) + 1
    done = 0

    def tick(stage: str, steps: int = 1) -> None:
        nonlocal done
        done += steps
        if progress is not None:
            progress(stage, done, total)

    if progress is not None:
        progress("reading series", 0, total)
    registry = Registry.connect(settings)
    results: dict[str, BacktestResult] = {}
    choices: dict[str, ChampionChoice] = {}
    fitted: dict[str, TargetModel] = {}
    jobs = [
        _TargetJob(target, frames[target], tuple(model_names), config, folds) for target in targets
    ]
    outcomes = _run_targets(jobs, dask=dask, workers=workers, tick=tick)
    for outcome in outcomes:
        results[outcome.target] = outcome.result
        choices[outcome.target] = outcome.choice
        fitted[outcome.target] = TargetModel(
            model_name=outcome.choice.model, forecaster=outcome.forecaster, mase=outcome.choice.mase
        )

    data_start = min(f[TS].min() for f in frames.values())
    data_end = max(f[TS].max() for f in frames.values())
    score = float(sum(c.mase for c in choices.values()) / len(choices))
    python_model = LoadForecastModel(
        fitted,
        horizon=config.horizon,
        quantiles=config.quantiles,
        freq=config.freq,
        min_history=min_history,
    )
    example = _input_example(frames, steps=season_length(config.freq, "week") + 2 * day)
    reports: dict[str, TargetReport] = {}
    with registry.run("train") as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tag("job", "train")
        mlflow.log_params(
            {
                "targets": ",".join(targets),
                "models": ",".join(model_names),
                "folds": folds,
                "horizon": config.horizon,
                "quantiles": ",".join(f"{q:g}" for q in config.quantiles),
                "freq": config.freq,
                "seed": config.seed,
            }
        )
        log_provenance(data_start=data_start, data_end=data_end)
        summary_json: dict[str, dict] = {}
        for target in targets:
            summary = results[target].summary()
            choice = choices[target]
            metrics = {}
            for model, row in summary.iterrows():
                for name, col in (
                    ("mase", "mase_mean"),
                    ("pinball", "pinball_mean"),
                    ("coverage_90", "coverage_90"),
                ):
                    value = float(row[col])
                    if math.isfinite(value):
                        metrics[_metric_key(target, str(model), name)] = value
            metrics[_metric_key(target, "champion", "mase")] = choice.mase
            mlflow.log_metrics(metrics)
            plotted = [
                choice.model,
                *(m for m in ("seasonal_naive_day",) if m != choice.model and m in model_names),
            ]
            png = forecast_vs_actual(
                frames[target],
                results[target].forecasts,
                target=target,
                models=plotted,
                path=Path(tmp) / f"forecast_vs_actual_{target}.png",
            )
            mlflow.log_artifact(str(png), artifact_path="plots")
            n_series = int(frames[target][SERIES].nunique())
            reports[target] = TargetReport(
                target=target,
                summary=summary,
                champion=choice,
                n_series=n_series,
                plot=Path(run.info.artifact_uri.removeprefix("file://")) / "plots" / png.name,
            )
            summary_json[target] = {
                "champion": choice.model,
                "reason": choice.reason,
                "n_series": n_series,
                "models": {
                    str(m): {
                        k: _finite(row[k])
                        for k in ("mase_mean", "pinball_mean", "coverage_90", "fit_s")
                        if k in row
                    }
                    for m, row in summary.iterrows()
                },
            }
        mlflow.log_metric(SCORE_NAME, score)
        tick("registering replicast-load")
        gate = registry.register_with_gate(
            name=LOAD_MODEL,
            python_model=python_model,
            input_example=example,
            score=score,
            score_name=SCORE_NAME,
            tags={f"champion.{t}": c.model for t, c in choices.items()},
        )
        mlflow.set_tags({"model_version": gate.version, "alias": gate.alias})
        mlflow.log_dict(
            {
                "targets": summary_json,
                "score": score,
                "score_name": SCORE_NAME,
                "model_version": gate.version,
                "alias": gate.alias,
                "previous_version": gate.previous_version,
                "previous_score": gate.previous_score,
                "data_start": data_start.isoformat(),
                "data_end": data_end.isoformat(),
                "folds": folds,
            },
            "summary.json",
        )
        run_id = run.info.run_id
    return TrainReport(
        run_id=run_id,
        targets=reports,
        gate=gate,
        score=score,
        data_start=data_start,
        data_end=data_end,
        seconds=time.perf_counter() - started,
        models=model_names,
        folds=folds,
    )


def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
