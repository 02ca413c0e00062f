"""`replicast simulate`: generate a deterministic fleet and write it as Parquet files."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from forecasting.errors import ConfigError
from forecasting.settings import Fleet, get_settings
from pipelines.sample_spec import SAMPLE
from serving.cli import APP_OPTIONS
from serving.cli.errors import handle_errors
from serving.cli.render import console, progress

if TYPE_CHECKING:
    from pipelines.simulate import SimulationSummary

app = typer.Typer(**APP_OPTIONS)

#: Bounds of the generation options (a fleet this big already exceeds the row limit).
MAX_DAYS = 3_660
MAX_CLUSTERS = 10_000
MAX_NODES_PER_REGION = 1_000
MAX_SEGMENTS_PER_CLUSTER = 100_000
MAX_SEED = 2**32 - 1
FIRST_START = datetime(2000, 1, 1)
LAST_START = datetime(2100, 1, 1)


def _check_start(value: datetime | None) -> datetime | None:
    if value is not None and not FIRST_START <= value <= LAST_START:
        raise typer.BadParameter(
            f"{value.date().isoformat()} is not between "
            f"{FIRST_START:%Y-%m-%d} and {LAST_START:%Y-%m-%d}"
        )
    return value


def _check_out(out: Path) -> None:
    """Create ``out`` now, so a bad ``--out`` fails before minutes of generation.

    Raises:
        ConfigError: ``out`` is not a directory, cannot be created or is not writable.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} exists and is not a directory; pass a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out: cannot create directory {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"--out: directory {out} is not writable")


@app.command("simulate")
@handle_errors
def simulate(
    out: Annotated[
        Path,
        typer.Option("--out", help="directory for node_metrics.parquet and segment_access.parquet"),
    ],
    days: Annotated[
        int | None,
        typer.Option(
            "--days", min=1, max=MAX_DAYS, help=f"days to generate (default: {SAMPLE.days})"
        ),
    ] = None,
    clusters: Annotated[
        int | None,
        typer.Option(
            "--clusters",
            max=MAX_CLUSTERS,
            help="number of clusters: the fleet's first N, or the fleet's plus extra ones "
            "(c003, c004, ...) spread over its regions (default: the fleet's)",
        ),
    ] = None,
    nodes_per_region: Annotated[
        int | None,
        typer.Option(
            "--nodes-per-region",
            min=1,
            max=MAX_NODES_PER_REGION,
            help=f"nodes per cluster and region (default: {SAMPLE.nodes_per_region})",
        ),
    ] = None,
    segments_per_cluster: Annotated[
        int | None,
        typer.Option(
            "--segments-per-cluster",
            min=1,
            max=MAX_SEGMENTS_PER_CLUSTER,
            help=f"segments alive at once per cluster (default: {SAMPLE.segments_per_cluster})",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", min=0, max=MAX_SEED, help=f"random seed (default: {SAMPLE.seed})"),
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(
            "--start",
            formats=["%Y-%m-%d"],
            callback=_check_start,
            help=f"first UTC day, {FIRST_START:%Y-%m-%d} to {LAST_START:%Y-%m-%d} "
            f"(default: {SAMPLE.start})",
        ),
    ] = None,
    sample: Annotated[
        bool,
        typer.Option(
            "--sample",
            help="the exact parameters of data/sample/ (the default fleet, ignoring "
            "replicast.toml); cannot be combined with the other generation options",
        ),
    ] = False,
) -> None:
    """Generate node metrics (5 min) and segment access (15 min) for a simulated fleet.

    The same options and seed always give the same data. Files are written atomically.
    """
    # deferred: the simulator loads numpy, pandas, pyarrow and scipy
    from pipelines.simulate import iter_clusters, scale_fleet, write_simulation

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
    parts = iter_clusters(  # checks the size before anything is generated
        fleet,
        start=start or SAMPLE.start,
        days=_or(days, SAMPLE.days),
        seed=_or(seed, SAMPLE.seed),
        nodes_per_region=_or(nodes_per_region, SAMPLE.nodes_per_region),
        segments_per_cluster=_or(segments_per_cluster, SAMPLE.segments_per_cluster),
    )
    _check_out(out)
    with progress() as bar:
        task = bar.add_task("simulate clusters", total=len(fleet.clusters))
        summary = write_simulation(
            parts,
            out,
            progress=lambda name: bar.update(task, advance=1, description=f"simulate {name}"),
        )
    console.print(_files_table(summary))
    console.print(_load_table(summary))
    console.print(f"wrote {', '.join(str(p) for p in summary.paths.values())}", highlight=False)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _files_table(summary: SimulationSummary) -> Table:
    table = Table(title=f"simulated fleet: {summary.clusters} clusters")
    for column in ("dataset", "rows", "series", "from (UTC)", "to (UTC)", "MB"):
        table.add_column(column, justify="right" if column in {"rows", "series", "MB"} else "left")
    for name, path in summary.paths.items():
        first, last = summary.span[name]
        table.add_row(
            name,
            f"{summary.rows[name]:,}",
            f"{summary.series[name]:,}",
            f"{first:%Y-%m-%d %H:%M}",
            f"{last:%Y-%m-%d %H:%M}",
            f"{path.stat().st_size / 1e6:.2f}",
        )
    return table


def _load_table(summary: SimulationSummary, limit: int = 12) -> Table:
    """Per cluster and region: nodes, median and peak qps_total, peak mean CPU."""
    stats = summary.load
    shown = f" (first {limit} of {len(stats)})" if len(stats) > limit else ""
    table = Table(title=f"load per cluster and region{shown}")
    for column in ("cluster", "region", "nodes", "qps median", "qps peak", "cpu peak"):
        table.add_column(column, justify="left" if column in {"cluster", "region"} else "right")
    for row in stats.head(limit).itertuples():
        table.add_row(
            row.cluster,
            row.region,
            str(int(row.nodes)),
            f"{row.qps_median:,.0f}",
            f"{row.qps_peak:,.0f}",
            f"{row.cpu_peak:.2f}",
        )
    return table
