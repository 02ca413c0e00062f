"""`replicast plan`, `backtest-sizing` and `backtest-priority`: the decisions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forecasting.errors import ConfigError
from forecasting.lake import Lake
from forecasting.settings import get_settings
from serving.cli.errors import handle_errors

console = Console()


def _fmt(value: Any, digits: int = 3) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "-"
    if abs(number) >= 1e5:
        return f"{number:.4g}"
    return f"{number:.{digits}f}" if not number.is_integer() else f"{int(number)}"


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return value


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_json_safe(payload), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
    console.print(f"wrote {path}")


def sizing_table(metrics: dict[str, dict[str, float]], title: str) -> Table:
    """Policies x (node_hours, violation_rate, slack)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("policy", "node_hours", "violation_rate", "slack"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name, row in metrics.items():
        table.add_row(
            name,
            _fmt(row.get("node_hours")),
            _fmt(row.get("violation_rate"), 4),
            _fmt(row.get("slack")),
        )
    return table


def priority_table(metrics: dict[str, dict[str, float]], title: str) -> Table:
    """Policies x (exposure, captured)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("policy", "exposure", "captured"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name, row in metrics.items():
        table.add_row(name, _fmt(row.get("exposure"), 1), _fmt(row.get("captured")))
    return table


def plan_tables(result: Any, rows: int = 12) -> list[Table]:
    """The first step of the sizing plan and the head of the priority queue, as tables."""
    plan_rows = result.sizing_plans
    first = plan_rows[plan_rows["step"] == plan_rows["step"].min()]
    table = Table(
        title=f"sizing plan, first step ({result.sizing_source}); {len(plan_rows)} rows",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for col in ("cluster", "region", "node_type", "nodes", "cost/h", "link", "reason"):
        table.add_column(col, overflow="fold")
    for row in first.head(rows).itertuples():
        table.add_row(
            row.cluster,
            row.region,
            row.node_type,
            str(row.nodes),
            f"{row.cost_per_hour:.2f}",
            "SATURATED" if row.link_saturated else "ok",
            row.reason,
        )
    queue = result.priority_queue
    qtable = Table(
        title=f"priority queue (top {rows} of {len(queue)})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for col in ("cluster", "replica", "rank", "segment", "reads/s", "cost s", "waited s"):
        qtable.add_column(col)
    for row in queue.sort_values(["rank", "cluster", "replica"]).head(rows).itertuples():
        qtable.add_row(
            row.cluster,
            row.replica,
            str(row.rank),
            row.segment,
            _fmt(row.weight, 2),
            f"{row.cost_s:.3g}",
            _fmt(row.waited_s, 0),
        )
    return [table, qtable]


app = typer.Typer(add_completion=False)


@app.command("plan")
@handle_errors
def plan(
    json_out: Path | None = typer.Option(
        None,
        "--json",
        help=(
            "Also run both decision backtests (priority exposure, sizing replay) on the "
            "lake and write them to this JSON file."
        ),
    ),
    rows: int = typer.Option(
        12, help="Rows of each table to print (the whole plan is in the lake)."
    ),
) -> None:
    """Write sizing plans and per-replica priority queues to the lake and print them.

    Sizing uses the newest qps_total/repl_bytes forecasts in the lake (run `replicast
    forecast` first; without them it falls back to the replicast sizing policy).
    Priority ranks the segments changed in the last hour by predicted reads per
    second of link time (segment_scores from the hot-segment model).
    """
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
        _write_json(json_out, evaluation)


@app.command("backtest-sizing")
@handle_errors
def backtest_sizing_cmd(
    series: Path = typer.Option(
        ..., "--series", help="A CSV/Parquet series file or a directory of them."
    ),
    timestamp_col: str = typer.Option("timestamp", help="Timestamp column."),
    value_col: str = typer.Option("value", help="Demand column (resampled to hourly means)."),
    node_capacity: str = typer.Option(
        "auto",
        help="Demand one node carries at 100 %; 'auto' = warm-up week median / 4, per file.",
    ),
    target_util: float = typer.Option(0.7, help="Planned utilisation of a node, in (0, 1]."),
    risk: float | None = typer.Option(
        None, help="Risk quantile of the replicast policy. Default: sizing.risk_quantile."
    ),
    json_out: Path = typer.Option(
        ..., "--json", help="Write the per-file and overall figures here."
    ),
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
    with _progress() as progress:
        task = progress.add_task("sizing replay", total=len(files))
        result = backtest_sizing(
            series,
            timestamp_col=timestamp_col,
            value_col=value_col,
            node_capacity=capacity,
            target_util=target_util,
            risk_quantile=risk if risk is not None else settings.sizing.risk_quantile,
            progress=lambda name: progress.update(task, advance=1, description=name),
        )
    console.print(sizing_table(result["overall"], f"overall ({len(result['series'])} series)"))
    _write_json(json_out, result)


@app.command("backtest-priority")
@handle_errors
def backtest_priority_cmd(
    trace: Path = typer.Option(..., "--trace", help="CSV access trace, one row per access."),
    key_col: str = typer.Option("segment", help="Segment (key) column."),
    time_col: str = typer.Option("ts", help="Timestamp or logical position column."),
    window: str | None = typer.Option(
        None,
        help="Window: N rows (e.g. 5000) or a duration (e.g. 15min). Default: rows/100.",
    ),
    json_out: Path = typer.Option(..., "--json", help="Write the figures here."),
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
    with _progress() as progress:
        task = progress.add_task("sync windows", total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done + 1, total=total)

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
    _write_json(json_out, {"trace": trace.name, **result, **result["policies"]})
