"""`replicast ingest`: files, the shipped sample or a source URI into the lake."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forecasting.errors import ReplicastError
from forecasting.lake import Lake
from forecasting.settings import Settings, get_settings
from pipelines.ingest import (
    IngestReport,
    expand_paths,
    failed_report,
    ingest_file,
    ingest_uri,
    is_uri,
    redact,
    sample_paths,
    schema_for,
)
from serving.cli.errors import handle_errors

SOURCE_HELP = (
    "What to ingest (repeatable): 'sample' (the shipped sample fleet), a CSV/Parquet file, "
    "a directory, a glob such as 'exports/*.csv' (quote it), or a source URI such as "
    "postgresql://user@host/db or prometheus://host:9090."
)
DATASET_HELP = (
    "The dataset the inputs hold (node_metrics or segment_access). Default: from each "
    "file's name, or else from its columns."
)


app = typer.Typer(add_completion=False)


@app.command("ingest")
@handle_errors
def ingest(
    source: list[str] = typer.Option(["sample"], "--source", "-s", help=SOURCE_HELP),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help=DATASET_HELP),
) -> None:
    """Validate inputs and load them into the lake; bad rows go to the quarantine.

    Rows that fail validation (missing or mistyped value, out of range, bad
    timestamp, duplicate) are written to the `quarantine` dataset with their
    file, row number and reason, and the good rows still land. An input
    that cannot be used at all (unreadable, corrupt, missing a required
    column) is reported and the command exits non-zero after the others.
    Ingesting the same data twice gives the same lake.
    """
    if dataset is not None:
        schema_for(dataset)  # an unknown name is refused before any file is read
    settings = get_settings()
    console = Console()
    lake = Lake(settings.lake_dir)
    reports, failures = run_ingest(source, lake=lake, settings=settings, dataset=dataset)
    console.print(summary_table(reports))
    good = sum(r.rows_good for r in reports)
    bad = sum(r.rows_quarantined for r in reports)
    console.print(
        f"{good} row(s) written to {settings.lake_dir}, {bad} quarantined (dataset 'quarantine')."
    )
    if failures:
        first = failures[0]
        if len(failures) == 1:
            raise first
        raise type(first)(
            f"{len(failures)} of {len(reports)} input(s) refused (see the table); first: {first}"
        )


def run_ingest(
    specs: list[str], *, lake: Lake, settings: Settings, dataset: str | None
) -> tuple[list[IngestReport], list[ReplicastError]]:
    """Ingest every input with a progress bar; refused inputs are reported, not raised."""
    lake.clean_temp()
    now = pd.Timestamp.now(tz="UTC")
    reports: list[IngestReport] = []
    failures: list[ReplicastError] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        for item in _inputs(specs, failures, reports):
            label = _short(item) if isinstance(item, Path) else redact(item)
            task = progress.add_task(label, total=None)

            def advance(done: int, total: int, task: int = task) -> None:
                progress.update(task, completed=done, total=total)

            try:
                if isinstance(item, Path):
                    reports.append(
                        ingest_file(item, lake=lake, dataset=dataset, now=now, progress=advance)
                    )
                else:
                    reports.extend(
                        ingest_uri(item, lake=lake, settings=settings, dataset=dataset, now=now)
                    )
            except ReplicastError as exc:
                failures.append(exc)
                reports.append(failed_report(label, dataset, exc))
            progress.update(task, completed=1, total=1, visible=False)
    return reports, failures


def summary_table(reports: list[IngestReport]) -> Table:
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
            table.add_row(_short(r.source), r.dataset, "-", "-", "-", f"[red]refused:[/] {r.error}")
            continue
        notes = list(r.reasons[:3])
        if r.rows_quarantined > len(notes):
            notes.append(f"... {r.rows_quarantined - len(notes)} more")
        if r.dropped_columns:
            notes.append(f"dropped unknown column(s) {list(r.dropped_columns)}")
        table.add_row(
            _short(r.source),
            r.dataset,
            str(r.rows_in),
            str(r.rows_good),
            str(r.rows_quarantined),
            "\n".join(notes),
        )
    return table


def _inputs(
    specs: list[str], failures: list[ReplicastError], reports: list[IngestReport]
) -> list[Path | str]:
    """Files and URIs to ingest, in order; ``sample`` expands to the sample's files."""
    items: list[Path | str] = []
    for spec in specs:
        if spec == "sample":
            try:
                items.extend(sample_paths())
            except ReplicastError as exc:
                failures.append(exc)
                reports.append(failed_report("sample", None, exc))
        elif is_uri(spec):
            items.append(spec)
        else:
            items.extend(expand_paths([spec.removeprefix("file://")]))
    return items


def _short(source: str | Path) -> str:
    """A path relative to the working directory when it is under it."""
    text = str(source)
    if is_uri(text):
        return text
    try:
        return str(Path(text).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return text
