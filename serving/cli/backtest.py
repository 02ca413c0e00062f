"""`replicast backtest`: every model on arbitrary series files, with replicast's own choice."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forecasting.errors import ConfigError
from forecasting.settings import get_settings
from models.catalog import known_models
from pipelines.series_backtest import CHAMPION, SeriesBacktestReport, run_series_backtest
from pipelines.series_files import discover, load_series, write_json_atomic
from serving.cli.errors import handle_errors

console = Console()


@handle_errors
def backtest_series(
    series: list[Path] = typer.Option(
        ..., "--series", help="a series file (CSV/Parquet) or a directory of them; repeatable"
    ),
    timestamp_col: str = typer.Option("timestamp", "--timestamp-col", help="timestamp column"),
    value_col: str = typer.Option(
        "value",
        "--value-col",
        help="value column; several comma-separated names = the first one each file has",
    ),
    horizon: int = typer.Option(24, "--horizon", min=1, help="steps per test window"),
    folds: int = typer.Option(3, "--folds", min=1, help="test windows (the last folds x horizon)"),
    models: list[str] = typer.Option(
        None,
        "--models",
        help=f"models to run (repeatable; default: settings forecast.models). Known: "
        f"{', '.join(known_models())}",
    ),
    candidates: list[str] = typer.Option(
        None,
        "--candidates",
        help="models the champion is chosen from (repeatable; default: the models run, "
        "except the slow prophet)",
    ),
    inner_folds: int = typer.Option(
        1, "--inner-folds", min=1, help="training-part windows used to choose the champion"
    ),
    champion_scope: str = typer.Option(
        "run",
        "--champion-scope",
        help="run: one champion per fold for all series (as `replicast train` picks one per "
        "target); series: one per series",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="write the JSON report here"),
    progress: bool = typer.Option(False, "--progress", help="show a progress bar"),
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
    with Progress(
        TextColumn(f"backtesting {len(loaded)} series"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
    ) as bar:
        task = bar.add_task("", total=fits * max(1, len({s.freq for s in loaded})))
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
                task, advance=1, description=f"{model} fold {fold}"
            ),
        )
    _print_summary(report)
    if json_out is not None:
        write_json_atomic(report.to_json(), json_out)
        console.print(f"wrote {json_out}")


def _print_summary(report: SeriesBacktestReport) -> None:
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


app = typer.Typer(add_completion=False)


app.command("backtest")(backtest_series)
