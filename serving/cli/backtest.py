"""`replicast backtest`: every model on arbitrary series files, with replicast's own choice."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer
from rich.table import Table

from forecasting.errors import ConfigError
from forecasting.settings import ModelName, get_settings
from serving.cli import APP_OPTIONS
from serving.cli.errors import handle_errors
from serving.cli.render import console, progress, write_json

if TYPE_CHECKING:
    from pipelines.series_backtest import SeriesBacktestReport

#: The model names, for --help (the catalog itself loads pandas).
MODEL_NAMES = ", ".join(sorted(get_args(ModelName)))
#: Upper bounds of --horizon and --folds (ten years of hourly steps; a thousand windows).
MAX_HORIZON = 87_840
MAX_FOLDS = 1_000

app = typer.Typer(**APP_OPTIONS)


@app.command("backtest")
@handle_errors
def backtest_series(
    series: Annotated[
        list[Path],
        typer.Option(
            "--series", help="a series file (CSV/Parquet) or a directory of them; repeatable"
        ),
    ],
    timestamp_col: Annotated[
        str, typer.Option("--timestamp-col", help="timestamp column")
    ] = "timestamp",
    value_col: Annotated[
        str,
        typer.Option(
            "--value-col",
            help="value column; several comma-separated names = the first one each file has",
        ),
    ] = "value",
    horizon: Annotated[
        int, typer.Option("--horizon", min=1, max=MAX_HORIZON, help="steps per test window")
    ] = 24,
    folds: Annotated[
        int,
        typer.Option(
            "--folds", min=1, max=MAX_FOLDS, help="test windows (the last folds x horizon)"
        ),
    ] = 3,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models",
            help=f"models to run (repeatable; default: settings forecast.models). Known: "
            f"{MODEL_NAMES}",
        ),
    ] = None,
    candidates: Annotated[
        list[str] | None,
        typer.Option(
            "--candidates",
            help="models the champion is chosen from (repeatable; default: the models run, "
            "except the slow prophet)",
        ),
    ] = None,
    inner_folds: Annotated[
        int,
        typer.Option(
            "--inner-folds",
            min=1,
            max=MAX_FOLDS,
            help="training-part windows used to choose the champion",
        ),
    ] = 1,
    champion_scope: Annotated[
        str,
        typer.Option(
            "--champion-scope",
            help="run: one champion per fold for all series (as `replicast train` picks one per "
            "target); series: one per series",
        ),
    ] = "run",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the JSON report here")
    ] = None,
    show_progress: Annotated[bool, typer.Option("--progress", help="show a progress bar")] = False,
) -> None:
    """Backtest every model on univariate series files and write per-series scores.

    Each file is one series. Frequency is inferred from the timestamps; series
    finer than hourly are resampled to hourly means, intervals without samples
    stay missing (gaps are scored around, not filled). MASE is scaled by each
    training part's in-sample seasonal-naive error (season = one day). The
    `champion` entry is the model replicast picks from each fold's training part
    only (inner validation on its last window(s); by default one pick per fold for
    the whole run, as `replicast train` picks one per target), scored on the test
    window.
    """
    # deferred: the catalog and the series pipelines load pandas and the models
    from models.catalog import known_models
    from pipelines.series_backtest import run_series_backtest
    from pipelines.series_files import discover, load_series

    settings = get_settings()
    names = list(models or settings.forecast.models)
    chosen_from = list(candidates or [m for m in names if m != "prophet"] or names)
    if champion_scope not in ("run", "series"):
        raise ConfigError(f"--champion-scope: {champion_scope!r} is not one of run, series")
    unknown = [m for m in [*names, *chosen_from] if m not in known_models()]
    if unknown:
        raise ConfigError(f"--models: unknown {unknown}; known models: {', '.join(known_models())}")
    files = discover(series)
    loaded = load_series(files, timestamp_col=timestamp_col, value_col=value_col)
    fits = len(names) * folds + len(chosen_from) * folds * inner_folds
    label = f"backtesting {len(loaded)} series"
    with progress(disable=not show_progress) as bar:
        task = bar.add_task(label, total=fits * max(1, len({s.freq for s in loaded})))
        report = run_series_backtest(
            loaded,
            models=names,  # type: ignore[arg-type]
            horizon=horizon,
            folds=folds,
            quantiles=settings.forecast.quantiles,
            candidates=chosen_from,  # type: ignore[arg-type]
            inner_folds=inner_folds,
            champion_scope=champion_scope,  # type: ignore[arg-type]
            seed=settings.forecast.seed,
            progress=lambda model, fold: bar.update(
                task, advance=1, description=f"{label}: {model} fold {fold}"
            ),
        )
    _print_summary(report)
    if json_out is not None:
        write_json(json_out, report.to_json())


def _print_summary(report: SeriesBacktestReport) -> None:
    # deferred: the pipeline loads pandas
    from pipelines.series_backtest import CHAMPION

    table = Table(title="backtest summary (lower MASE is better)")
    for col in ("model", "MASE mean", "MASE median", "pinball", "coverage 90%", "fit s"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for model, row in report.summary().iterrows():
        style = "bold" if model == CHAMPION else None
        table.add_row(
            str(model),
            f"{row.mase_mean:.3f}",
            f"{row.mase_median:.3f}",
            f"{row.pinball_mean:.4g}",
            f"{row.coverage_90:.1%}",
            f"{row.fit_s:.1f}",
            style=style,
        )
    console.print(table)
