"""The scheduler: runs the batch jobs of :mod:`pipelines.jobs` at the times of their cron.

``settings.schedule`` maps a job name to a cron expression, evaluated in UTC
(``"5 * * * *"``: five past every hour). :class:`Scheduler` runs the due jobs
in-process, one after the other, and sleeps until the next one is due. A job
whose time passed while another job ran runs once as soon as the loop gets to
it (missed times are coalesced, never replayed one by one).

Never two runs of a kind at once: every run takes an exclusive, non-blocking
``fcntl`` lock on ``<data_dir>/locks/<job>.lock``. A second scheduler process, a
manual ``replicast run JOB`` or a thread that finds the lock held does not wait:
its run is recorded as ``skipped_locked``. The OS drops the lock when its holder
exits, even on a crash, so a stale lock file never blocks anything.

Every run, whatever its outcome, is one row of the ``job_runs`` lake dataset:
``ts`` (start, UTC), ``job``, ``run_id``, ``state`` (``ok``, ``failed`` or
``skipped_locked``), ``seconds`` and ``detail`` (the job's JSON summary, the
error, or who holds the lock). A job that raises is logged and recorded as
``failed``; the scheduler goes on with the next one.

:meth:`Scheduler.stop` (or SIGTERM/SIGINT under :func:`pipelines.signals.stop_on_signals`) ends the
loop after the job that is running, if any, has finished and been recorded; a
second signal interrupts that job at once.

Clock and sleep are parameters, so tests drive the loop with a fake clock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from croniter import CroniterError, croniter

from forecasting.errors import ConfigError, ReplicastError
from forecasting.lake import Lake
from forecasting.settings import Settings
from pipelines.job_runs import JobRun, record_run
from pipelines.jobs import JOBS, Job, get_job

logger = logging.getLogger(__name__)

#: The longest single sleep, so that a clock jump (suspend, NTP) is noticed soon.
MAX_SLEEP_S = 60.0

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScheduledJob:
    """A job with its cron expression."""

    name: str
    cron: str
    job: Job


def next_run(cron: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that ``cron`` fires (UTC).

    Args:
        cron: a cron expression (``minute hour day month weekday``).
        after: a timezone-aware time (a naive one is taken as UTC).

    Raises:
        ConfigError: the expression is invalid.
    """
    after = after.replace(tzinfo=UTC) if after.tzinfo is None else after.astimezone(UTC)
    try:
        return croniter(cron, after).get_next(datetime).astimezone(UTC)
    except (CroniterError, ValueError) as exc:
        raise ConfigError(
            f"invalid cron expression {cron!r}: {exc}; use five fields "
            "'minute hour day-of-month month day-of-week', e.g. '5 * * * *'"
        ) from exc


def next_runs(cron: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` times ``cron`` fires after ``after`` (see :func:`next_run`)."""
    times: list[datetime] = []
    for _ in range(count):
        after = next_run(cron, after)
        times.append(after)
    return times


def scheduled_jobs(
    schedule: Mapping[str, str], jobs: Mapping[str, Job] | None = None
) -> list[ScheduledJob]:
    """Check ``schedule`` (job name -> cron) against the job table, in name order.

    Raises:
        ConfigError: an unknown job name or an invalid cron expression (named).
    """
    table = JOBS if jobs is None else jobs
    out = []
    for name, cron in sorted(schedule.items()):
        if name not in table:
            raise ConfigError(
                f"schedule.{name}: no such job; known jobs: {', '.join(sorted(table))} "
                "(fix the [schedule] table of replicast.toml)"
            )
        try:
            next_run(cron, utc_now())
        except ConfigError as exc:
            raise ConfigError(f"schedule.{name}: {exc}") from exc
        out.append(ScheduledJob(name, cron, table[name]))
    return out


def lock_path(data_dir: Path, job: str) -> Path:
    """The lock file of a job kind: ``<data_dir>/locks/<job>.lock``."""
    return Path(data_dir) / "locks" / f"{job}.lock"


@contextmanager
def job_lock(path: Path) -> Iterator[bool]:
    """Try to take the exclusive lock ``path`` without waiting.

    Yields ``True`` while holding it (the file then says which pid holds it since
    when), ``False`` if someone else holds it. The lock goes with the open file:
    released on exit from the block, or by the OS when the process dies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            held = False
        if not held:
            yield False
            return
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} since {utc_now():%Y-%m-%dT%H:%M:%SZ}\n".encode(), 0)
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "unknown holder"
    except OSError:
        return "unknown holder"


def run_job(
    name: str,
    settings: Settings,
    *,
    job: Job | None = None,
    lake: Lake | None = None,
    clock: Clock = utc_now,
) -> JobRun:
    """Run one job now under its lock and record the run in ``job_runs``.

    Args:
        name: the job name (its lock and its ``job_runs`` rows use it).
        settings: passed to the job; ``data_dir`` holds the lock and the lake.
        job: the callable; default: ``name`` in :data:`pipelines.jobs.JOBS`.
        lake: where ``job_runs`` goes; default: ``settings.lake_dir``.
        clock: the clock of the recorded start time.

    Returns:
        The run. A job that raises gives a ``failed`` run (the exception in
        ``error``); a held lock gives ``skipped_locked``. Nothing is raised.

    Raises:
        UnknownKeyError: ``job`` is None and ``name`` is no known job.
    """
    func = job if job is not None else get_job(name)
    lake = lake if lake is not None else Lake(settings.lake_dir)
    run_id = uuid.uuid4().hex
    path = lock_path(settings.data_dir, name)
    started = clock()
    with job_lock(path) as held:
        if not held:
            detail = f"another {name} run holds {path} ({_holder(path)})"
            logger.warning("job %s skipped: %s", name, detail)
            run = JobRun(name, run_id, "skipped_locked", started, 0.0, detail)
        else:
            run = _execute(name, func, settings, run_id, started)
    record_run(lake, run)
    return run


def _execute(name: str, func: Job, settings: Settings, run_id: str, started: datetime) -> JobRun:
    logger.info("job %s started (run %s)", name, run_id)
    t0 = time.perf_counter()
    try:
        detail = func(settings) or ""
    except Exception as exc:  # a failing job is recorded; the scheduler goes on
        seconds = time.perf_counter() - t0
        if isinstance(exc, ReplicastError):
            logger.error("job %s failed after %.1f s: %s", name, seconds, exc)
        else:
            logger.exception("job %s failed after %.1f s", name, seconds)
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        return JobRun(name, run_id, "failed", started, seconds, reason, error=exc)
    seconds = time.perf_counter() - t0
    logger.info("job %s ok in %.1f s: %s", name, seconds, detail)
    return JobRun(name, run_id, "ok", started, seconds, str(detail))


class Scheduler:
    """Runs scheduled jobs at their cron times until stopped.

    Args:
        settings: the settings (``schedule``, ``data_dir``); passed to every job.
        schedule: job name -> cron; default ``settings.schedule``.
        jobs: the job table; default :data:`pipelines.jobs.JOBS`.
        lake: where ``job_runs`` goes; default ``settings.lake_dir``.
        clock: returns the current UTC time; default :func:`utc_now`.
        sleep: sleeps so many seconds; default: a wait that :meth:`stop` cuts short.

    Raises:
        ConfigError: the schedule names an unknown job or has an invalid cron.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        schedule: Mapping[str, str] | None = None,
        jobs: Mapping[str, Job] | None = None,
        lake: Lake | None = None,
        clock: Clock = utc_now,
        sleep: Sleep | None = None,
    ) -> None:
        self.settings = settings
        self.entries = scheduled_jobs(settings.schedule if schedule is None else schedule, jobs)
        self.lake = lake if lake is not None else Lake(settings.lake_dir)
        self.clock = clock
        self._stopping = threading.Event()
        self._sleep = sleep if sleep is not None else self._stopping.wait

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask the loop to end after the running job (if any); safe from a signal handler."""
        self._stopping.set()

    def next_times(self, after: datetime | None = None) -> dict[str, datetime]:
        """Job name -> its next run time after ``after`` (default: now)."""
        after = self.clock() if after is None else after
        return {e.name: next_run(e.cron, after) for e in self.entries}

    def run(self, *, until: datetime | None = None, max_runs: int | None = None) -> list[JobRun]:
        """Run due jobs until :meth:`stop`, the clock reaches ``until``, or ``max_runs`` runs.

        Returns:
            The runs, in the order they started.
        """
        runs: list[JobRun] = []
        if not self.entries:
            logger.warning("the schedule is empty; nothing to run")
            return runs
        cron = {e.name: e.cron for e in self.entries}
        funcs = {e.name: e.job for e in self.entries}
        due = self.next_times()
        logger.info("scheduler started: %s", _describe(due))
        while not self.stopping:
            now = self.clock()
            if until is not None and now >= until:
                break
            ready = sorted((when, name) for name, when in due.items() if when <= now)
            for when, name in ready:
                if self.stopping:
                    break
                runs.append(
                    run_job(name, self.settings, job=funcs[name], lake=self.lake, clock=self.clock)
                )
                due[name] = next_run(cron[name], max(self.clock(), when))
                if max_runs is not None and len(runs) >= max_runs:
                    return runs
            if ready:
                continue
            wake = min(due.values()) if until is None else min(*due.values(), until)
            self._sleep(min(max((wake - now).total_seconds(), 0.0), MAX_SLEEP_S))
        logger.info("scheduler stopped after %d run(s)", len(runs))
        return runs

    def run_once(self, name: str) -> JobRun | None:
        """Wait for the next scheduled time of ``name``, run it once and return the run.

        Returns ``None`` when stopped before that time came.

        Raises:
            ConfigError: ``name`` is not in the schedule.
        """
        entry = next((e for e in self.entries if e.name == name), None)
        if entry is None:
            raise ConfigError(
                f"job {name!r} is not scheduled; scheduled jobs: "
                f"{', '.join(e.name for e in self.entries) or 'none'} "
                "(run it now with `replicast run JOB`)"
            )
        when = next_run(entry.cron, self.clock())
        logger.info("job %s waits for %s", name, f"{when:%Y-%m-%d %H:%M} UTC")
        while not self.stopping:
            now = self.clock()
            if now >= when:
                return run_job(name, self.settings, job=entry.job, lake=self.lake, clock=self.clock)
            self._sleep(min((when - now).total_seconds(), MAX_SLEEP_S))
        return None


def _describe(due: Mapping[str, datetime]) -> str:
    return ", ".join(f"{name} next at {when:%Y-%m-%d %H:%M} UTC" for name, when in due.items())
