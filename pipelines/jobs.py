"""The job table: every batch job the scheduler and ``replicast run`` know, by name.

A job is a callable ``job(settings) -> str | None``; the string it returns is stored
as the ``detail`` of its ``job_runs`` row (a short JSON summary). Each job imports
its pipeline inside the callable: the pipelines pull in MLflow, LightGBM and Prophet
(seconds of imports) that the scheduler and ``replicast jobs`` must not pay at start,
and a broken pipeline is then an error of that job only.

| name | does |
|---|---|
| ``ingest`` | every input of ``settings.ingest_sources`` (``sample``, paths/globs, URIs) -> lake |
| ``train`` | backtest the load models, register the champion (:func:`pipelines.train.train`) |
| ``forecast`` | next horizon -> ``forecasts`` (:func:`pipelines.forecast.forecast`) |
| ``plan`` | sizing plans and priority queues -> lake (:func:`pipelines.plan.run_plan`) |
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from forecasting.errors import ConfigError, DataValidationError, ReplicastError, UnknownKeyError
from forecasting.lake import Lake
from forecasting.settings import Settings

#: A batch job: runs with the settings, returns the detail recorded in ``job_runs``.
Job = Callable[[Settings], "str | None"]


def ingest_job(settings: Settings) -> str:
    """Ingest every input named by ``settings.ingest_sources``.

    Inputs that are refused (unreadable, missing columns, source down) do not stop
    the others; the job then fails with the first refusal once all were tried.

    Raises:
        ConfigError: ``ingest_sources`` is empty.
        ReplicastError: an input was refused (the type of the first refusal).
    """
    # deferred: keeps the heavy pipeline imports off the scheduler start-up
    from pipelines.ingest import (
        failed_report,
        ingest_paths,
        ingest_sample,
        ingest_uri,
        is_uri,
        time_bounds,
    )

    if not settings.ingest_sources:
        raise ConfigError(
            "ingest_sources is empty; name at least one input in replicast.toml, "
            'e.g. ingest_sources = ["sample"]'
        )
    lake = Lake(settings.lake_dir)
    bounds = time_bounds(settings)  # the settings of this run, not the process's
    reports = []
    first_error: ReplicastError | None = None
    for spec in settings.ingest_sources:
        try:
            if spec == "sample":
                reports.extend(ingest_sample(lake, bounds=bounds))
            elif is_uri(spec):
                reports.extend(ingest_uri(spec, lake=lake, settings=settings))
            else:
                reports.extend(
                    ingest_paths(
                        [spec.removeprefix("file://")], lake=lake, on_error="report", bounds=bounds
                    )
                )
        except ReplicastError as exc:
            first_error = first_error or exc
            reports.append(failed_report(spec, None, exc))
    refused = [r for r in reports if not r.ok]
    if refused:
        kind = type(first_error) if first_error is not None else DataValidationError
        raise kind(
            f"ingest: {len(refused)} of {len(reports)} input(s) refused; "
            f"first: {refused[0].source}: {refused[0].error}"
        )
    return json.dumps(
        {
            "inputs": len(reports),
            "rows_good": sum(r.rows_good for r in reports),
            "rows_quarantined": sum(r.rows_quarantined for r in reports),
        }
    )


def train_job(settings: Settings) -> str:
    """Backtest and register the load champions (:func:`pipelines.train.train`)."""
    # deferred: keeps the heavy pipeline imports off the scheduler start-up
    from pipelines.train import train

    report = train(settings, lake=Lake(settings.lake_dir), record=False)  # run_job records
    return json.dumps(
        {
            "mlflow_run_id": report.run_id,
            "model_version": report.gate.version,
            "alias": report.gate.alias,
            "score": report.score,
        }
    )


def forecast_job(settings: Settings) -> str:
    """Forecast the next horizon with the champion (:func:`pipelines.forecast.forecast`)."""
    # deferred: keeps the heavy pipeline imports off the scheduler start-up
    from pipelines.forecast import forecast

    report = forecast(settings, lake=Lake(settings.lake_dir), record=False)  # run_job records
    return json.dumps(
        {"model_version": report.model_version, "rows": report.rows, "series": report.series}
    )


def plan_job(settings: Settings) -> str:
    """Write sizing plans and priority queues (:func:`pipelines.plan.run_plan`)."""
    # deferred: keeps the heavy pipeline imports off the scheduler start-up
    from pipelines.plan import run_plan

    result = run_plan(settings, lake=Lake(settings.lake_dir))
    return json.dumps(
        {
            "sizing_rows": len(result.sizing_plans),
            "queue_rows": len(result.priority_queue),
            "sizing_source": result.sizing_source,
        }
    )


JOBS: Mapping[str, Job] = {
    "ingest": ingest_job,
    "train": train_job,
    "forecast": forecast_job,
    "plan": plan_job,
}


def get_job(name: str, jobs: Mapping[str, Job] | None = None) -> Job:
    """The job called ``name``.

    Raises:
        UnknownKeyError: no such job; the message lists the known ones.
    """
    table = JOBS if jobs is None else jobs
    if name not in table:
        raise UnknownKeyError(f"unknown job {name!r}; known jobs: {', '.join(sorted(table))}")
    return table[name]
