"""`replicast ingest`: files, the shipped sample or a source URI into the lake."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from forecasting.errors import ReplicastError
from forecasting.redact import redact
from forecasting.settings import Settings, get_settings
from serving.cli import APP_OPTIONS
from serving.cli.errors import handle_errors
from serving.cli.render import console, progress
from serving.cli.tables import ingest_table, short_path

if TYPE_CHECKING:
    from forecasting.lake import Lake
    from pipelines.ingest import IngestReport

SOURCE_HELP = (
    "What to ingest (repeatable): 'sample' (the shipped sample fleet), a CSV/Parquet file, "
    "a directory, a glob such as 'exports/*.csv' (quote it), or a source URI such as "
    "postgresql://user@host/db or prometheus://host:9090."
)
DATASET_HELP = (
    "The dataset the inputs hold (node_metrics or segment_access). Default: from each "
    "file's name, or else from its columns."
)


app = typer.Typer(**APP_OPTIONS)


@app.command("ingest")
@handle_errors
def ingest(
    source: Annotated[list[str], typer.Option("--source", "-s", help=SOURCE_HELP)] = ["sample"],  # noqa: B006  (never mutated)
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help=DATASET_HELP)] = None,
) -> None:
    """Validate inputs and load them into the lake; bad rows go to the quarantine.

    Rows that fail validation (missing or mistyped value, out of range, bad
    or far-future timestamp, malformed CSV line, duplicate) are written to
    the `quarantine` dataset with their file, row number and reason, and the
    good rows still land; every CSV line is counted once. An input that
    cannot be used at all (unreadable, corrupt, missing a required column)
    or cannot be written (disk full) is reported and the command exits 4
    after the others. Ingesting the same data twice gives the same lake.
    """
    # deferred (here and below): pandas, through the lake and the pipeline, not for --help
    from forecasting.lake import Lake
    from pipelines.ingest import schema_for

    if dataset is not None:
        schema_for(dataset)  # an unknown name is refused before any file is read
    settings = get_settings()
    lake = Lake(settings.lake_dir)
    reports, failures = run_ingest(source, lake=lake, settings=settings, dataset=dataset)
    console.print(ingest_table(reports))
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
    import pandas as pd

    from pipelines.ingest import failed_report, ingest_file, ingest_uri

    lake.clean_temp()
    now = pd.Timestamp.now(tz="UTC")
    reports: list[IngestReport] = []
    failures: list[ReplicastError] = []
    with progress() as bar:
        for item in _inputs(specs, failures, reports):
            label = short_path(item) if isinstance(item, Path) else redact(item)
            task = bar.add_task(label, total=None)

            def advance(done: int, total: int, task: int = task) -> None:
                bar.update(task, completed=done, total=total)

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
            bar.update(task, completed=1, total=1, visible=False)
    return reports, failures


def _inputs(
    specs: list[str], failures: list[ReplicastError], reports: list[IngestReport]
) -> list[Path | str]:
    """Files and URIs to ingest, in order; ``sample`` expands to the sample's files."""
    from pipelines.ingest import expand_paths, failed_report, is_uri, sample_paths

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
