"""`replicast train`, `replicast forecast` and `replicast report`: the load models' job."""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from forecasting.errors import ModelNotFoundError
from forecasting.redact import redact
from forecasting.settings import Settings, get_settings
from serving.cli import APP_OPTIONS
from serving.cli.errors import handle_errors
from serving.cli.render import console, fmt, progress
from serving.cli.tables import (
    ingest_table,
    leaderboard_table,
    plan_tables,
    priority_table,
    sizing_table,
)

if TYPE_CHECKING:
    from forecasting.lake import Lake

MODELS_HELP = (
    "Models to backtest (repeatable): lightgbm, prophet, seasonal_naive_day, "
    "seasonal_naive_week, ets, ensemble. Default: forecast.models of the settings."
)
FOLDS_HELP = "Rolling-origin backtest folds (test windows of one horizon each). Default: settings."
INGEST_SAMPLE_HELP = (
    "First load the shipped sample fleet (data/sample/) into the lake, and "
    "after training write the next horizon of forecasts."
)
DECISIONS_HELP = (
    "With --ingest-sample: also train the hot-segment model, evaluate the "
    "priority and sizing decisions against the simple rules (logged to MLflow) and "
    "write today's sizing plan and priority queues."
)
DASK_HELP = (
    "Spread the per-target backtests over a Dask cluster: 'local' starts one "
    "on this machine (2 worker processes), tcp://scheduler:8786 uses a running one. "
    "Default: local worker processes, one per target."
)


def _quiet_libraries() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no usage pings from a CLI
    import mlflow  # noqa: F401  (configures its loggers on import; quiet them after)

    for name in ("mlflow", "alembic", "cmdstanpy", "prophet", "py.warnings"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)  # "Importing plotly failed"
    logging.captureWarnings(True)


def _lake(settings: Settings) -> Lake:
    # deferred: the lake loads pandas, which --help does not need
    from forecasting.lake import Lake

    return Lake(settings.lake_dir)


def _train_summary(report: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for target, tr in report.targets.items():
        out[target] = {
            "champion": tr.champion.model,
            "models": {
                str(model): {
                    k: row.get(k) for k in ("mase_mean", "pinball_mean", "coverage_90", "fit_s")
                }
                for model, row in tr.summary.iterrows()
            },
        }
    return out


def _ingest_sample(lake: Lake) -> None:
    from pipelines.ingest import ingest_sample

    with console.status("ingesting data/sample/ ..."):
        reports = ingest_sample(lake)
    console.print(ingest_table(reports))


def _run_forecast(settings: Settings, lake: Lake) -> Any:
    from pipelines.forecast import forecast

    with console.status("forecasting the next horizon with the champion ..."):
        report = forecast(settings, lake=lake)
    console.print(
        f"forecasts: {report.rows} rows for {report.series} series "
        f"(targets {', '.join(report.targets)}), model version {report.model_version}, "
        f"origin {report.origin:%Y-%m-%d %H:%M} UTC -> {report.path}"
    )
    return report


def _run_decisions(settings: Settings, lake: Lake) -> None:
    from pipelines.plan import run_decisions

    with console.status("hot-segment model, decision backtests, today's plan ..."):
        report = run_decisions(settings, lake=lake)
    hot = report.hot_segments
    console.print(
        f"registered [bold]replicast-hot-segments v{hot.version}[/] as [bold]{hot.alias}[/] "
        f"(1 - captured = {fmt(hot.score)}); {hot.scores_written} segment scores written"
    )
    console.print(priority_table(report.evaluation["priority"], "priority: stale-read exposure"))
    console.print(sizing_table(report.evaluation["sizing"], "sizing replay (qps_total)"))
    for table in plan_tables(report.plan, rows=9):
        console.print(table)


app = typer.Typer(**APP_OPTIONS)


@app.command("train")
@handle_errors
def train(
    ingest_sample: Annotated[
        bool, typer.Option("--ingest-sample", help=INGEST_SAMPLE_HELP)
    ] = False,
    models: Annotated[list[str] | None, typer.Option("--models", "-m", help=MODELS_HELP)] = None,
    folds: Annotated[int | None, typer.Option("--folds", "-k", min=1, help=FOLDS_HELP)] = None,
    decisions: Annotated[
        bool, typer.Option("--decisions/--no-decisions", help=DECISIONS_HELP)
    ] = True,
    dask: Annotated[
        str | None, typer.Option("--dask", metavar="local|tcp://HOST:PORT", help=DASK_HELP)
    ] = None,
) -> None:
    """Backtest the load models, pick a champion per target and register it in MLflow.

    For every target (qps_total, cpu_util, repl_bytes, disk_used_bytes) the
    hourly series of each cluster/region are built from node_metrics, every
    model is backtested on rolling origins (MASE, pinball loss, 90 % interval
    coverage), the best MASE wins and is refitted on all the data. The
    champions are registered together as `replicast-load`; the alias
    `champion` moves only if the new version beats the current champion's
    score (mean champion MASE), otherwise it becomes `challenger`.
    """
    from pipelines.train import train as run_train

    started = time.perf_counter()
    _quiet_libraries()
    settings = get_settings()
    lake = _lake(settings)
    if ingest_sample:
        _ingest_sample(lake)
    with progress() as bar:
        task = bar.add_task("training", total=None)

        def hook(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        report = run_train(
            settings,
            lake=lake,
            progress=hook,
            models=list(models) if models else None,  # type: ignore[arg-type]
            folds=folds,
            dask=dask,
        )
    console.print(
        leaderboard_table(
            _train_summary(report),
            title=f"backtest: {report.folds} folds x {settings.forecast.horizon} h, "
            f"data {report.data_start:%Y-%m-%d} .. {report.data_end:%Y-%m-%d}",
        )
    )
    gate = report.gate
    previous = (
        f"previous champion v{gate.previous_version} ({fmt(gate.previous_score)})"
        if gate.previous_version
        else "no previous champion"
    )
    console.print(
        f"registered [bold]replicast-load v{gate.version}[/] as [bold]{gate.alias}[/] "
        f"(mean champion MASE {fmt(report.score)}; {previous}); "
        f"MLflow run {report.run_id} at {redact(settings.tracking_uri)}"
    )
    if ingest_sample:
        _run_forecast(settings, lake)
        if decisions:
            _run_decisions(settings, lake)
    console.print(f"done in {time.perf_counter() - started:.0f} s.")


@app.command("forecast")
@handle_errors
def forecast() -> None:
    """Write the next horizon of load forecasts with the registered champion.

    Loads `models:/replicast-load@champion` from the MLflow registry, builds
    the recent hourly history of every cluster/region from the lake and
    writes the forecasts (every quantile, each step) to the `forecasts`
    dataset of the lake.
    """
    _quiet_libraries()
    settings = get_settings()
    _run_forecast(settings, _lake(settings))


@app.command("report")
@handle_errors
def report() -> None:
    """Show the latest training run: per-target model scores, champion, registry state."""
    _quiet_libraries()
    settings = get_settings()
    summary, run_id = latest_summary(settings)
    console.print(
        leaderboard_table(
            summary.get("targets", {}),
            title=f"latest training run {run_id} "
            f"(data {summary.get('data_start', '?')[:10]} .. "
            f"{summary.get('data_end', '?')[:10]}, {summary.get('folds', '?')} folds)",
        )
    )
    console.print(
        f"registered replicast-load v{summary.get('model_version')} as "
        f"{summary.get('alias')} (mean champion MASE {fmt(summary.get('score'))}); "
        f"current champion: v{_champion_version(settings)}"
    )


def latest_summary(settings: Settings) -> tuple[dict[str, Any], str]:
    """The ``summary.json`` of the newest finished training run, and its run id.

    Raises:
        ModelNotFoundError: no training run is recorded.
    """
    from models.mlflow_registry import Registry

    runs = Registry.from_settings(settings).latest_training_runs(limit=1)
    if not runs:
        raise ModelNotFoundError(
            f"no finished training run in {redact(settings.tracking_uri)}; "
            "run `replicast train` first"
        )
    return runs[0].summary, runs[0].run_id


def _champion_version(settings: Settings) -> str:
    from models.mlflow_registry import LOAD_MODEL, Registry

    return Registry.from_settings(settings).champion_version(LOAD_MODEL) or "none"
