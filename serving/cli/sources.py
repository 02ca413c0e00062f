"""`replicast collect`: sample live PostgreSQL servers continuously into the lake."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated

import typer

from forecasting.errors import ConfigError
from forecasting.settings import get_settings
from serving.cli import APP_OPTIONS
from serving.cli.errors import handle_errors
from serving.cli.render import console

if TYPE_CHECKING:
    from pipelines.collect import TickReport

SOURCE_HELP = (
    "postgresql://user@host:port/db[?cluster=NAME&region=NAME&node=NAME&vcpus=N]; "
    "repeat for the primary and each replica."
)

app = typer.Typer(**APP_OPTIONS)


def _seconds(text: str, option: str) -> float:
    # deferred: pandas reads the duration; --help does not need it
    import pandas as pd

    try:
        value = pd.Timedelta(f"{text}s" if text.replace(".", "").isdigit() else text)
    except ValueError as exc:
        raise ConfigError(
            f"{option}: cannot read {text!r} as a duration; write e.g. 60s, 5m"
        ) from exc
    if value.total_seconds() <= 0:
        raise ConfigError(f"{option}: must be positive, got {text!r}")
    return value.total_seconds()


@app.command("collect")
@handle_errors
def collect(
    source: Annotated[list[str], typer.Option("--source", "-s", help=SOURCE_HELP)],
    interval: Annotated[str, typer.Option(help="sampling interval (e.g. 15s, 60s, 5m)")] = "60s",
    duration: Annotated[
        str | None,
        typer.Option(help="stop after this long (e.g. 10m); default: until SIGTERM or Ctrl-C"),
    ] = None,
) -> None:
    """Sample PostgreSQL statistics every interval into node_metrics and segment_access.

    Each interval's counters become rates (resets handled); the last sample is kept in
    <data_dir>/sources so a restart loses no interval. SIGTERM stops after the current tick.
    """
    # deferred: the collector loads pandas and the lake
    from forecasting.lake import Lake
    from pipelines.collect import Collector, stop_on_signals

    settings = get_settings()
    interval_s = _seconds(interval, "--interval")
    duration_s = None if duration is None else _seconds(duration, "--duration")
    collector = Collector(
        source, settings=settings, lake=Lake(settings.lake_dir), interval_s=interval_s
    )
    collector.check()
    console.print(
        f"collecting {len(collector.targets)} source(s) every {interval_s:g} s into "
        f"{settings.lake_dir}" + ("" if duration_s is None else f" for {duration_s:g} s")
    )

    def _show(tick: TickReport) -> None:
        written = ", ".join(f"{n} {d}" for d, n in sorted(tick.rows.items())) or "baseline"
        line = f"{tick.ts:%H:%M:%S} {written}"
        if tick.quarantined:
            line += f", {tick.quarantined} quarantined"
        for error in tick.errors:
            line += f"\n  [red]{error}[/]"
        console.print(line, highlight=False)

    with stop_on_signals(threading.Event()) as stop:
        total = collector.run(stop=stop, duration_s=duration_s, on_tick=_show)
    rows = ", ".join(f"{n} {d}" for d, n in sorted(total.rows.items())) or "no rows"
    console.print(
        f"[green]done[/]: {total.ticks} tick(s), {rows}, {total.quarantined} quarantined, "
        f"{len(total.errors)} error(s)"
    )
