"""The tables that more than one command prints: ingest, backtest leaderboard, decisions."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table

from serving.cli.render import fmt

if TYPE_CHECKING:
    from pipelines.ingest import IngestReport
    from pipelines.plan import PlanResult


def ingest_table(reports: list[IngestReport]) -> Table:
    """One line per input: counts, and the first reasons or the error."""
    table = Table(title="ingest", title_justify="left")
    table.add_column("input", overflow="fold")
    table.add_column("dataset")
    table.add_column("rows in", justify="right")
    table.add_column("good", justify="right")
    table.add_column("quarantined", justify="right")
    table.add_column("first reasons / error", overflow="fold")
    for r in reports:
        if r.error is not None:
            table.add_row(
                short_path(r.source), r.dataset, "-", "-", "-", f"[red]refused:[/] {r.error}"
            )
            continue
        notes = list(r.reasons[:3])
        if r.rows_quarantined > len(notes):
            notes.append(f"... {r.rows_quarantined - len(notes)} more")
        if r.dropped_columns:
            notes.append(f"dropped unknown column(s) {list(r.dropped_columns)}")
        table.add_row(
            short_path(r.source),
            r.dataset,
            str(r.rows_in),
            str(r.rows_good),
            str(r.rows_quarantined),
            "\n".join(notes),
        )
    return table


def short_path(source: str | Path) -> str:
    """A path relative to the working directory when it is under it; URIs as they are."""
    # deferred: pipelines.ingest loads pandas; the tables are drawn after an ingest ran
    from pipelines.ingest import is_uri

    text = str(source)
    if is_uri(text):
        return text
    try:
        return str(Path(text).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop
        return text


def leaderboard_table(targets: Mapping[str, Mapping[str, Any]], title: str) -> Table:
    """Per target and model: MASE, pinball, coverage_90, fit seconds; the champion marked.

    Args:
        targets: target -> ``{"champion": name, "models": {model: {"mase_mean": ...,
            "pinball_mean": ..., "coverage_90": ..., "fit_s": ...}}}`` (``summary.json``).
        title: the table title.
    """
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("target", no_wrap=True)
    table.add_column("model (* champion)", no_wrap=True)
    for col in ("MASE", "pinball", "cov90", "fit s"):
        table.add_column(col, justify="right", no_wrap=True)
    for target, info in targets.items():
        models = info.get("models", {})
        ranked = sorted(models.items(), key=lambda kv: _sort_key(kv[1].get("mase_mean")))
        for i, (model, row) in enumerate(ranked):
            champion = model == info.get("champion")
            table.add_row(
                target if i == 0 else "",
                f"[bold green]{model} *[/]" if champion else model,
                fmt(row.get("mase_mean")),
                fmt(row.get("pinball_mean")),
                fmt(row.get("coverage_90"), 2),
                fmt(row.get("fit_s"), 1),
                end_section=i == len(ranked) - 1,
            )
    return table


def _sort_key(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.inf
    return number if math.isfinite(number) else math.inf


def sizing_table(metrics: dict[str, dict[str, float]], title: str) -> Table:
    """Policies x (node_hours, violation_rate, slack)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("policy", "node_hours", "violation_rate", "slack"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name, row in metrics.items():
        table.add_row(
            name,
            fmt(row.get("node_hours")),
            fmt(row.get("violation_rate"), 4),
            fmt(row.get("slack")),
        )
    return table


def priority_table(metrics: dict[str, dict[str, float]], title: str) -> Table:
    """Policies x (exposure, captured)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("policy", "exposure", "captured"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name, row in metrics.items():
        table.add_row(name, fmt(row.get("exposure"), 1), fmt(row.get("captured")))
    return table


def plan_tables(result: PlanResult, rows: int = 12) -> list[Table]:
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
            fmt(row.weight, 2),
            f"{row.cost_s:.3g}",
            fmt(row.waited_s, 0),
        )
    return [table, qtable]
