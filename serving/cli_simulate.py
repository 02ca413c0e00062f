"""`replicast simulate`: generate a deterministic fleet and write it as Parquet files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forecasting.errors import ConfigError
from forecasting.lake import write_parquet_atomic
from forecasting.settings import Fleet, get_settings
from pipelines.simulate import SAMPLE, SimulatedFleet, scale_fleet, simulate_fleet
from serving.cli_errors import handle_errors

console = Console()

NODE_FILE = "node_metrics.parquet"
SEGMENT_FILE = "segment_access.parquet"


def simulate(
    out: Path = typer.Option(
        ..., "--out", help="directory for node_metrics.parquet and segment_access.parquet"
    ),
    days: int | None = typer.Option(
        None, "--days", help=f"days to generate (default: {SAMPLE.days})"
    ),
    clusters: int | None = typer.Option(
        None,
        "--clusters",
        help="number of clusters: the fleet's first N, or the fleet's plus extra ones "
        "(c003, c004, ...) spread over its regions (default: the fleet's)",
    ),
    nodes_per_region: int | None = typer.Option(
        None,
        "--nodes-per-region",
        help=f"nodes per cluster and region (default: {SAMPLE.nodes_per_region})",
    ),
    segments_per_cluster: int | None = typer.Option(
        None,
        "--segments-per-cluster",
        help=f"segments alive at once per cluster (default: {SAMPLE.segments_per_cluster})",
    ),
    seed: int | None = typer.Option(None, "--seed", help=f"random seed (default: {SAMPLE.seed})"),
    start: datetime | None = typer.Option(
        None, "--start", formats=["%Y-%m-%d"], help=f"first UTC day (default: {SAMPLE.start})"
    ),
    sample: bool = typer.Option(
        False,
        "--sample",
        help="the exact parameters of data/sample/ (the default fleet, ignoring replicast.toml); "
        "cannot be combined with the other generation options",
    ),
) -> None:
    """Generate node metrics (5 min) and segment access (15 min) for a simulated fleet.

    The same options and seed always give the same data. Files are written atomically.
    """
    given = {
        "--days": days,
        "--clusters": clusters,
        "--nodes-per-region": nodes_per_region,
        "--segments-per-cluster": segments_per_cluster,
        "--seed": seed,
        "--start": start,
    }
    if sample:
        clashing = [name for name, value in given.items() if value is not None]
        if clashing:
            raise ConfigError(
                f"--sample fixes every generation parameter; drop {', '.join(clashing)} "
                "or drop --sample"
            )
        fleet = Fleet()
    else:
        fleet = get_settings().fleet
        if clusters is not None:
            fleet = scale_fleet(fleet, clusters)
    with Progress(
        TextColumn("[bold]simulate[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("clusters", total=len(fleet.clusters))
        result = simulate_fleet(
            fleet,
            start=start or SAMPLE.start,
            days=_or(days, SAMPLE.days),
            seed=_or(seed, SAMPLE.seed),
            nodes_per_region=_or(nodes_per_region, SAMPLE.nodes_per_region),
            segments_per_cluster=_or(segments_per_cluster, SAMPLE.segments_per_cluster),
            progress=lambda name: bar.update(task, advance=1, description=name),
        )
        bar.update(task, description="writing Parquet")
        paths = write_fleet(result, out)
    console.print(_summary(result, paths))
    console.print(_load_table(result))
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}", highlight=False)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def write_fleet(result: SimulatedFleet, out: Path) -> dict[str, Path]:
    """Write both frames to ``out`` atomically; returns dataset name -> file."""
    paths = {"node_metrics": out / NODE_FILE, "segment_access": out / SEGMENT_FILE}
    frames = {"node_metrics": result.node_metrics, "segment_access": result.segment_access}
    for name, path in paths.items():
        write_parquet_atomic(pa.Table.from_pandas(frames[name], preserve_index=False), path)
    return paths


def _summary(result: SimulatedFleet, paths: dict[str, Path]) -> Table:
    nm, sa = result.node_metrics, result.segment_access
    table = Table(title="simulated fleet")
    for column in ("dataset", "rows", "clusters", "series", "from (UTC)", "to (UTC)", "MB"):
        table.add_column(column, justify="right" if column in {"rows", "series", "MB"} else "left")
    series = {
        "node_metrics": len(nm[["cluster", "region", "node"]].drop_duplicates()),
        "segment_access": len(sa[["cluster", "segment"]].drop_duplicates()),
    }
    for name, frame in (("node_metrics", nm), ("segment_access", sa)):
        table.add_row(
            name,
            f"{len(frame):,}",
            str(frame["cluster"].nunique()),
            f"{series[name]:,}",
            f"{frame['ts'].min():%Y-%m-%d %H:%M}",
            f"{frame['ts'].max():%Y-%m-%d %H:%M}",
            f"{paths[name].stat().st_size / 1e6:.2f}",
        )
    return table


def _load_table(result: SimulatedFleet, limit: int = 12) -> Table:
    """Per cluster and region: nodes, median and peak qps_total, peak mean CPU."""
    nm = result.node_metrics
    per_ts = (
        nm.assign(qps=nm["qps_read"] + nm["qps_write"])
        .groupby(["cluster", "region", "ts"], sort=True)
        .agg(qps=("qps", "sum"), cpu=("cpu_util", "mean"), nodes=("node", "nunique"))
    )
    stats = per_ts.groupby(level=["cluster", "region"]).agg(
        nodes=("nodes", "max"),
        qps_median=("qps", "median"),
        qps_peak=("qps", "max"),
        cpu_peak=("cpu", "max"),
    )
    table = Table(title=f"load per cluster and region (first {limit})")
    for column in ("cluster", "region", "nodes", "qps median", "qps peak", "cpu peak"):
        table.add_column(column, justify="left" if column in {"cluster", "region"} else "right")
    for (cluster, region), row in stats.head(limit).iterrows():
        table.add_row(
            cluster,
            region,
            str(int(row["nodes"])),
            f"{row['qps_median']:,.0f}",
            f"{row['qps_peak']:,.0f}",
            f"{row['cpu_peak']:.2f}",
        )
    return table


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("simulate")(handle_errors(simulate))
