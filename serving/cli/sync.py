"""`replicast sync`: replicate segments hot-first with the bundled executor."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from serving.cli import APP_OPTIONS
from serving.cli.errors import handle_errors

if TYPE_CHECKING:
    from rich.table import Table

    from replication.progress import ProgressSnapshot
    from replication.request import OrderName, SyncResult, TransportName

app = typer.Typer(**APP_OPTIONS)


def _table(result: SyncResult) -> Table:
    from rich.table import Table

    from serving.cli.render import human_bytes

    table = Table(title=f"sync {result.run_id}: {result.state}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("order", f"{result.order} — {result.order_note}")
    table.add_row("transport", result.transport)
    table.add_row(
        "segments",
        f"{result.count('copied')} copied, {result.count('skipped')} skipped, "
        f"{result.count('failed')} failed, {result.count('pending')} pending",
    )
    table.add_row(
        "files",
        f"{result.files_copied} copied, {result.files_skipped} skipped, "
        f"{result.files_deleted} deleted",
    )
    table.add_row(
        "bytes",
        f"read {human_bytes(result.bytes_read)}, sent {human_bytes(result.bytes_sent)}, "
        f"written {human_bytes(result.bytes_written)}",
    )
    table.add_row("time", f"{result.seconds:.2f} s")
    if result.stop_reason:
        table.add_row("stopped", result.stop_reason)
    for warning in result.warnings:
        table.add_row("warning", warning)
    for error in result.errors[:20]:
        table.add_row("[red]error[/]", error)
    if result.planned:
        shown = ", ".join(result.planned[:20]) + (" ..." if len(result.planned) > 20 else "")
        table.add_row("would change", f"{len(result.planned)}: {shown}")
    return table


@app.command("sync")
@handle_errors
def sync(
    source: Annotated[Path, typer.Option(help="Source root directory (segments below it).")],
    target: Annotated[
        str, typer.Option(help="Target directory, or host:path (rsync transport, over ssh).")
    ],
    transport: Annotated[
        str, typer.Option(help="delta (built in, local targets) or rsync (the real binary).")
    ] = "delta",
    order: Annotated[
        str,
        typer.Option(
            help="priority: newest priority_queue of the lake (alphabetical if none); alpha."
        ),
    ] = "priority",
    cluster: Annotated[
        str | None, typer.Option(help="Cluster whose priority queue applies.")
    ] = None,
    replica: Annotated[
        str | None, typer.Option(help="Replica region: its queue rows and its link (RTT, rate).")
    ] = None,
    pattern: Annotated[
        str | None, typer.Option(help="Glob naming the segments (default: top-level entries).")
    ] = None,
    budget_bytes: Annotated[
        str | None, typer.Option(help="Stop after sending this much (e.g. 500MB, 2GiB).")
    ] = None,
    budget_seconds: Annotated[
        float | None, typer.Option(help="Stop cleanly after this many seconds.")
    ] = None,
    bwlimit: Annotated[
        str | None, typer.Option(help="Link rate limit in bytes/s with a unit, e.g. 40MiB.")
    ] = None,
    checksum: Annotated[
        bool, typer.Option(help="Compare contents by hash instead of size + mtime.")
    ] = False,
    delete: Annotated[
        bool, typer.Option(help="Delete target files absent from the source (inside the target).")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Show what would change; write nothing.")] = False,
    whole_file: Annotated[
        bool | None,
        typer.Option(help="Force whole-file copies (or, negated, delta). Default: automatic."),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Transfers at once (default: by link RTT).")
    ] = None,
    rsh: Annotated[
        str | None, typer.Option(help="Remote shell for host:path, e.g. 'ssh -p 2222 -i key'.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full result as JSON here.")
    ] = None,
) -> None:
    """Replicate SOURCE to TARGET segment by segment, hottest first, safely and resumably."""
    # deferred: settings, sizes and the executor are not needed for --help
    from forecasting import jsonio
    from forecasting.errors import ConfigError
    from forecasting.settings import get_settings
    from forecasting.units import parse_rate, parse_size
    from replication.executor import run_sync
    from replication.request import SyncRequest
    from serving.cli.render import console, progress

    if json_out is not None and json_out.is_dir():  # refused before the run, not after it
        raise ConfigError(f"--json {json_out}: is a directory; give a file path")
    settings = get_settings()
    request = SyncRequest(
        source=source,
        target=target,
        transport=_choice(transport, ("delta", "rsync"), "--transport"),
        order=_choice(order, ("priority", "alpha"), "--order"),
        cluster=cluster,
        replica=replica,
        segment_pattern=pattern,
        budget_bytes=(
            parse_size(budget_bytes, what="--budget-bytes") if budget_bytes is not None else None
        ),
        budget_seconds=budget_seconds,
        bwlimit=parse_rate(bwlimit) if bwlimit is not None else None,
        checksum=checksum,
        delete=delete,
        dry_run=dry_run,
        whole_file=whole_file,
        concurrency=concurrency,
        rsh=rsh,
    )
    cancel = threading.Event()
    with progress(bytes=True) as bar:
        task = bar.add_task("planning", total=None)

        def show(snap: ProgressSnapshot) -> None:
            current = ", ".join(snap.current_segments[:3]) or snap.state
            bar.update(
                task,
                total=snap.bytes_total or None,
                completed=snap.bytes_done,
                description=f"{snap.segments_done}/{snap.segments_total} segments · {current}",
            )

        try:
            result = run_sync(request, settings=settings, progress=show, cancel=cancel)
        except KeyboardInterrupt:
            cancel.set()
            raise
    console.print(_table(result))
    if json_out is not None:
        jsonio.write_json(json_out, result.to_dict())
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _choice(value: str, allowed: tuple[str, ...], option: str) -> TransportName | OrderName:
    if value not in allowed:
        raise typer.BadParameter(
            f"{value!r}; choose one of {', '.join(allowed)}", param_hint=option
        )
    return value  # type: ignore[return-value]
