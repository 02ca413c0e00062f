"""`replicast plan`, `backtest-sizing` and `backtest-priority`: the decisions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from forecasting.errors import ConfigError
from forecasting.settings import get_settings
from serving.cli import APP_OPTIONS
from serving.cli.errors import handle_errors
from serving.cli.render import console, progress, write_json
from serving.cli.tables import plan_tables, priority_table, sizing_table

app = typer.Typer(**APP_OPTIONS)


@app.command("plan")
@handle_errors
def plan(
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help=(
                "Also run both decision backtests (priority exposure, sizing replay) on the "
                "lake and write them to this JSON file."
            ),
        ),
    ] = None,
    rows: Annotated[
        int, typer.Option(help="Rows of each table to print (the whole plan is in the lake).")
    ] = 12,
) -> None:
    """Write sizing plans and per-replica priority queues to the lake and print them.

    Sizing uses the newest qps_total/repl_bytes forecasts in the lake (run `replicast
    forecast` first; without them it falls back to the replicast sizing policy).
    Priority ranks the segments changed in the last hour by predicted reads per
    second of link time (segment_scores from the hot-segment model).
    """
    from forecasting.lake import Lake
    from pipelines.plan import evaluate_decisions, run_plan

    settings = get_settings()
    lake = Lake(settings.lake_dir)
    result = run_plan(settings, lake=lake)
    for table in plan_tables(result, rows):
        console.print(table)
    if json_out is not None:
        with console.status("running the decision backtests"):
            evaluation = evaluate_decisions(settings, lake=lake)
        console.print(priority_table(evaluation["priority"], "priority: stale-read exposure"))
        console.print(sizing_table(evaluation["sizing"], "sizing replay"))
        write_json(json_out, evaluation)


@app.command("backtest-sizing")
@handle_errors
def backtest_sizing_cmd(
    *,
    series: Annotated[
        Path, typer.Option("--series", help="A CSV/Parquet series file or a directory of them.")
    ],
    timestamp_col: Annotated[str, typer.Option(help="Timestamp column.")] = "timestamp",
    value_col: Annotated[
        str, typer.Option(help="Demand column (resampled to hourly means).")
    ] = "value",
    node_capacity: Annotated[
        str,
        typer.Option(
            help="Demand one node carries at 100 %; 'auto' = warm-up week median / 4, per file."
        ),
    ] = "auto",
    target_util: Annotated[
        float, typer.Option(help="Planned utilisation of a node, in (0, 1].")
    ] = 0.7,
    risk: Annotated[
        float | None,
        typer.Option(help="Risk quantile of the replicast policy. Default: sizing.risk_quantile."),
    ] = None,
    json_out: Annotated[
        Path, typer.Option("--json", help="Write the per-file and overall figures here.")
    ],
) -> None:
    """Replay static, VPA-style, replicast and oracle sizing on any demand series.

    At each daily origin after a 7-day warm-up every policy plans the next 24 hourly
    steps from the history before it; the plans are scored against the real load:
    node_hours, violation_rate (real load > nodes x capacity x util), slack.
    """
    from pipelines.decision_backtests import backtest_sizing, series_files

    settings = get_settings()
    capacity: float | str = "auto"
    if node_capacity != "auto":
        try:
            capacity = float(node_capacity)
        except ValueError:
            raise ConfigError(
                f"--node-capacity must be a number or 'auto', got {node_capacity!r}"
            ) from None
        if not (capacity > 0 and math.isfinite(capacity)):
            raise ConfigError(f"--node-capacity must be > 0, got {node_capacity}")
    files = series_files(series)
    with progress() as bar:
        task = bar.add_task("sizing replay", total=len(files))
        result = backtest_sizing(
            series,
            timestamp_col=timestamp_col,
            value_col=value_col,
            node_capacity=capacity,
            target_util=target_util,
            risk_quantile=risk if risk is not None else settings.sizing.risk_quantile,
            progress=lambda name: bar.update(task, advance=1, description=name),
        )
    console.print(sizing_table(result["overall"], f"overall ({len(result['series'])} series)"))
    write_json(json_out, result)


@app.command("backtest-priority")
@handle_errors
def backtest_priority_cmd(
    *,
    trace: Annotated[Path, typer.Option("--trace", help="CSV access trace, one row per access.")],
    key_col: Annotated[str, typer.Option(help="Segment (key) column.")] = "segment",
    time_col: Annotated[str, typer.Option(help="Timestamp or logical position column.")] = "ts",
    window: Annotated[
        str | None,
        typer.Option(
            help="Window: N rows (e.g. 5000) or a duration (e.g. 15min). Default: rows/100."
        ),
    ] = None,
    json_out: Annotated[Path, typer.Option("--json", help="Write the figures here.")],
) -> None:
    """Score replication orderings by stale-read exposure on a real access trace.

    At each window boundary after warm-up the segments touched in the window just
    ended are pending; they are copied one by one at the bandwidth that finishes
    the set in one window. Exposure = accesses of the next window arriving before
    their segment is copied. Orderings: alphabetical, last-window, replicast, oracle.
    """
    from pipelines.decision_backtests import backtest_priority

    if not trace.is_file():
        raise ConfigError(f"{trace}: no such trace file")
    with progress() as bar:
        task = bar.add_task("sync windows", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done + 1, total=total)

        result = backtest_priority(
            trace, key_col=key_col, time_col=time_col, window=window, progress=tick
        )
    console.print(
        priority_table(
            result["policies"],
            f"{trace.name}: {result['boundaries']} sync runs, windows of {result['window']}",
        )
    )
    # the policies also at the top level, for quick access (same figures)
    write_json(json_out, {"trace": trace.name, **result, **result["policies"]})
