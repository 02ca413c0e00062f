"""`replicast schedule` and `replicast run`: the scheduled batch jobs."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from forecasting.errors import ReplicastError
from forecasting.settings import get_settings
from pipelines.jobs import JOBS, get_job
from serving.cli import APP_OPTIONS
from serving.cli.errors import handle_errors
from serving.cli.render import console, err_console

if TYPE_CHECKING:
    import pandas as pd

    from forecasting.lake import Lake
    from pipelines.job_runs import JobRun

#: Exit code of `replicast run` when another run of the job holds its lock (EX_TEMPFAIL).
EXIT_LOCKED = 75

ONCE_HELP = (
    "Wait for the next scheduled time of this job only, run it once and exit "
    "(the other jobs do not run)."
)
LIST_HELP = "Show each scheduled job's cron, next run times (UTC) and last run, then exit."
COUNT_HELP = "How many next run times --list shows per job."
JOB_HELP = f"The job to run: {', '.join(JOBS)}."


def _last_runs(lake: Lake) -> dict[str, pd.Series]:
    """Job name -> its newest ``job_runs`` row (empty if none or unreadable)."""
    # deferred: pandas (job_runs), not for --help
    from pipelines.job_runs import JOB_RUNS

    try:
        runs = lake.read(JOB_RUNS)
    except ReplicastError:
        return {}
    if runs.empty or "job" not in runs.columns:
        return {}
    newest = runs.sort_values("ts").groupby("job").tail(1)
    return {str(row["job"]): row for _, row in newest.iterrows()}


def schedule_table(schedule: dict[str, str], lake: Lake, *, now: datetime, count: int = 3) -> Table:
    """The schedule as a table: job, cron, next ``count`` runs, last recorded run."""
    # deferred: pandas and croniter, not for --help
    import pandas as pd

    from pipelines.schedule import next_runs

    last = _last_runs(lake)
    table = Table(
        title=f"schedule (UTC, now {now:%Y-%m-%d %H:%M})", title_justify="left", box=box.SIMPLE_HEAD
    )
    for col in ("job", "cron", "next runs (UTC)", "last run"):
        table.add_column(col, no_wrap=col != "next runs (UTC)")
    for name, cron in sorted(schedule.items()):
        times = ", ".join(f"{t:%m-%d %H:%M}" for t in next_runs(cron, now, count))
        row = last.get(name)
        if row is None:
            previous = "-"
        else:
            colour = {"ok": "green", "succeeded": "green", "failed": "red"}.get(
                str(row["state"]), "yellow"
            )
            previous = f"[{colour}]{row['state']}[/] {pd.Timestamp(row['ts']):%m-%d %H:%M}"
        table.add_row(name, cron, times, previous)
    return table


def _report(run: JobRun) -> None:
    """Print a run's outcome; a run that did not succeed exits non-zero."""
    if run.state == "ok":
        console.print(
            f"[green]{run.job} ok[/] in {run.seconds:.1f} s (run {run.run_id}) {run.detail}",
            highlight=False,
        )
        return
    if run.state == "skipped_locked":
        err_console.print(f"[yellow]{run.job} skipped:[/] {run.detail}", highlight=False)
        raise typer.Exit(EXIT_LOCKED)
    if isinstance(run.error, ReplicastError):
        raise run.error  # handle_errors prints it and picks the exit code
    err_console.print(f"[bold red]error:[/] {run.job} failed: {run.detail}", highlight=False)
    raise typer.Exit(1)


app = typer.Typer(**APP_OPTIONS)


@app.command("schedule")
@handle_errors
def schedule(
    once: Annotated[str | None, typer.Option("--once", metavar="JOB", help=ONCE_HELP)] = None,
    list_: Annotated[bool, typer.Option("--list", help=LIST_HELP)] = False,
    count: Annotated[int, typer.Option("--count", "-n", min=1, help=COUNT_HELP)] = 3,
) -> None:
    """Run the batch jobs at the cron times of the settings' [schedule] table.

    Cron expressions are in UTC (default: ingest every 15 minutes, forecast at
    :05 and plan at :10 every hour, train at 03:00). Jobs run one after the
    other in this process. Never two runs of a kind at once: each run takes a
    lock under <data_dir>/locks/, and a run that finds it held (another
    scheduler, `replicast run`) is skipped. Every run is recorded in the
    job_runs dataset. A failing job is logged and the scheduler goes on.
    SIGTERM or Ctrl-C stops after the running job; a second one interrupts it.
    """
    # deferred: the scheduler loads croniter, pandas and the lake
    from pipelines.schedule import Scheduler, utc_now
    from pipelines.signals import stop_on_signals

    settings = get_settings()
    if list_:
        scheduler = Scheduler(settings)  # validates the schedule
        console.print(
            schedule_table(
                {e.name: e.cron for e in scheduler.entries},
                scheduler.lake,
                now=utc_now(),
                count=count,
            )
        )
        return
    scheduler = Scheduler(settings)
    with stop_on_signals(scheduler):
        if once is not None:
            run = scheduler.run_once(once)
            if run is not None:
                _report(run)
            return
        runs = scheduler.run()
    failed = sum(r.state == "failed" for r in runs)
    console.print(f"scheduler stopped: {len(runs)} run(s), {failed} failed")


@app.command("run")
@handle_errors
def run(job: Annotated[str, typer.Argument(metavar="JOB", help=JOB_HELP)]) -> None:
    """Run one batch job now, under the same lock as the scheduler.

    The run is recorded in the job_runs dataset. Exit code 0 when it
    succeeded, 75 when another run of the same job holds the lock (nothing
    was done), otherwise the code of the job's error.
    """
    # deferred: the scheduler loads croniter, pandas and the lake
    from pipelines.schedule import run_job

    settings = get_settings()
    func = get_job(job)
    with console.status(f"running {job} ..."):
        outcome = run_job(job, settings, job=func)
    _report(outcome)
