"""The scheduler: cron times, the per-job lock, failures, job_runs rows, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from forecasting.errors import ConfigError
from forecasting.lake import Lake
from forecasting.settings import Settings
from pipelines.job_runs import JOB_RUNS
from pipelines.schedule import (
    Scheduler,
    job_lock,
    lock_path,
    next_run,
    next_runs,
    run_job,
    scheduled_jobs,
)
from tests.conftest import REPO

START = datetime(2026, 3, 2, 10, 7, 30, tzinfo=UTC)  # a Monday


class FakeClock:
    """A clock that only moves when the scheduler sleeps (or a job says it took time)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


def _runs_in_lake(lake: Lake) -> pd.DataFrame:
    return lake.read(JOB_RUNS).sort_values("ts").reset_index(drop=True)


# ---------------------------------------------------------------- cron times


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("*/15 * * * *", START, datetime(2026, 3, 2, 10, 15, tzinfo=UTC)),
        (
            "*/15 * * * *",
            datetime(2026, 3, 2, 10, 15, tzinfo=UTC),
            START.replace(minute=30, second=0),
        ),
        ("5 * * * *", START, datetime(2026, 3, 2, 11, 5, tzinfo=UTC)),
        ("0 3 * * *", START, datetime(2026, 3, 3, 3, 0, tzinfo=UTC)),
        ("0 9 * * 1", START, datetime(2026, 3, 9, 9, 0, tzinfo=UTC)),  # next Monday
        ("0 0 1 * *", START, datetime(2026, 4, 1, 0, 0, tzinfo=UTC)),
    ],
    ids=["quarter-hour", "strictly-after", "hourly", "daily", "weekly", "monthly"],
)
def test_next_run_follows_the_cron_expression(cron: str, after: datetime, expected: datetime):
    assert next_run(cron, after) == expected


def test_next_run_is_utc_whatever_the_input_zone():
    tokyo = START.astimezone(timezone(timedelta(hours=9)))  # the same instant
    naive = START.replace(tzinfo=None)
    assert next_run("0 3 * * *", tokyo) == next_run("0 3 * * *", START)
    assert next_run("0 3 * * *", naive) == next_run("0 3 * * *", START)
    assert next_run("0 3 * * *", tokyo).utcoffset() == timedelta(0)


def test_next_runs_are_increasing_and_spaced_by_the_cron():
    times = next_runs("*/15 * * * *", START, 5)
    assert len(times) == 5
    assert all(b - a == timedelta(minutes=15) for a, b in zip(times, times[1:], strict=False))
    assert times[0] > START


@pytest.mark.parametrize("cron", ["61 * * * *", "every hour", "* * *"])
def test_an_invalid_cron_is_a_config_error_naming_it(cron: str):
    with pytest.raises(ConfigError, match="invalid cron expression") as info:
        next_run(cron, START)
    assert repr(cron) in str(info.value)


def test_the_schedule_is_checked_against_the_job_table():
    jobs = {"ingest": lambda s: None}
    with pytest.raises(ConfigError, match=r"schedule\.bogus: no such job; known jobs: ingest"):
        scheduled_jobs({"bogus": "* * * * *"}, jobs)
    with pytest.raises(ConfigError, match=r"schedule\.ingest: invalid cron"):
        scheduled_jobs({"ingest": "99 * * * *"}, jobs)


def test_the_default_settings_schedule_names_real_jobs(settings: Settings):
    names = [e.name for e in scheduled_jobs(settings.schedule)]
    assert names == sorted(settings.schedule)


# ---------------------------------------------------------------- the loop


def test_jobs_run_at_their_cron_times_and_each_run_is_a_job_runs_row(
    settings: Settings, lake: Lake
):
    clock = FakeClock(START)
    seen: dict[str, list[datetime]] = {"quarter": [], "hourly": []}

    def job_for(name: str):
        def job(_settings: Settings) -> str:
            seen[name].append(clock())
            return f'{{"job": "{name}"}}'

        return job

    scheduler = Scheduler(
        settings,
        schedule={"quarter": "*/15 * * * *", "hourly": "0 * * * *"},
        jobs={"quarter": job_for("quarter"), "hourly": job_for("hourly")},
        clock=clock,
        sleep=clock.sleep,
    )
    runs = scheduler.run(until=START + timedelta(hours=1))

    quarter_hours = [datetime(2026, 3, 2, 10, m, tzinfo=UTC) for m in (15, 30, 45)]
    assert seen["quarter"] == [*quarter_hours, datetime(2026, 3, 2, 11, 0, tzinfo=UTC)]
    assert seen["hourly"] == [datetime(2026, 3, 2, 11, 0, tzinfo=UTC)]
    assert all(0 < s <= 60 for s in clock.slept)  # never one long blind sleep

    rows = _runs_in_lake(lake)
    assert len(rows) == len(runs) == 5
    assert set(rows["state"]) == {"ok"}
    assert rows["run_id"].is_unique
    assert sorted(rows["ts"]) == sorted(pd.Timestamp(r.started) for r in runs)
    assert set(rows.loc[rows["job"] == "hourly", "detail"]) == {'{"job": "hourly"}'}
    assert list(rows.columns) == ["ts", "job", "run_id", "state", "seconds", "detail"]


def test_a_failing_job_is_recorded_failed_and_the_loop_goes_on(settings: Settings, lake: Lake):
    clock = FakeClock(START)
    good_runs: list[datetime] = []

    def bad(_settings: Settings) -> str:
        raise RuntimeError("disk on fire")

    def good(_settings: Settings) -> str:
        good_runs.append(clock())
        return "fine"

    scheduler = Scheduler(
        settings,
        schedule={"bad": "*/10 * * * *", "good": "*/10 * * * *"},
        jobs={"bad": bad, "good": good},
        clock=clock,
        sleep=clock.sleep,
    )
    runs = scheduler.run(until=START + timedelta(minutes=30))

    assert [r.state for r in runs if r.job == "bad"] == ["failed"] * 3
    assert len(good_runs) == 3
    assert isinstance(next(r for r in runs if r.job == "bad").error, RuntimeError)
    rows = _runs_in_lake(lake)
    failed = rows[rows["state"] == "failed"]
    assert set(failed["job"]) == {"bad"} and len(failed) == 3
    assert all("RuntimeError: disk on fire" in d for d in failed["detail"])
    assert (rows["state"] == "ok").sum() == 3


def test_a_long_job_makes_missed_times_run_once_not_replayed(settings: Settings, lake: Lake):
    clock = FakeClock(START)
    calls: list[datetime] = []

    def slow(_settings: Settings) -> None:
        calls.append(clock())
        clock.now += timedelta(minutes=50)  # the job took 50 minutes

    scheduler = Scheduler(
        settings,
        schedule={"slow": "*/10 * * * *"},
        jobs={"slow": slow},
        clock=clock,
        sleep=clock.sleep,
    )
    scheduler.run(until=START + timedelta(hours=2))
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert calls[0] == datetime(2026, 3, 2, 10, 10, tzinfo=UTC)
    assert gaps and all(gap <= timedelta(hours=1) for gap in gaps)
    assert all(gap >= timedelta(minutes=50) for gap in gaps)  # never two at once


def test_stop_ends_the_loop_after_the_running_job(settings: Settings, lake: Lake):
    clock = FakeClock(START)
    scheduler: Scheduler

    def stopper(_settings: Settings) -> str:
        scheduler.stop()
        return "asked to stop"

    scheduler = Scheduler(
        settings,
        schedule={"stopper": "* * * * *"},
        jobs={"stopper": stopper},
        clock=clock,
        sleep=clock.sleep,
    )
    runs = scheduler.run(until=START + timedelta(hours=1))
    assert [r.state for r in runs] == ["ok"]
    assert len(_runs_in_lake(lake)) == 1


def test_run_once_waits_for_the_job_time_and_runs_only_that_job(settings: Settings, lake: Lake):
    clock = FakeClock(START)
    ran: list[tuple[str, datetime]] = []
    jobs = {n: (lambda s, n=n: ran.append((n, clock()))) for n in ("a", "b")}
    scheduler = Scheduler(
        settings,
        schedule={"a": "*/5 * * * *", "b": "0 12 * * *"},
        jobs=jobs,
        clock=clock,
        sleep=clock.sleep,
    )
    run = scheduler.run_once("b")
    assert run is not None and run.state == "ok"
    assert ran == [("b", datetime(2026, 3, 2, 12, 0, tzinfo=UTC))]
    with pytest.raises(ConfigError, match="not scheduled"):
        scheduler.run_once("c")


# ---------------------------------------------------------------- the lock


def test_a_second_run_of_a_kind_is_skipped_while_the_first_holds_the_lock(
    settings: Settings, lake: Lake
):
    started = threading.Event()
    release = threading.Event()

    def blocking(_settings: Settings) -> str:
        started.set()
        assert release.wait(30)
        return "first"

    results = {}
    first = threading.Thread(
        target=lambda: results.setdefault("first", run_job("train", settings, job=blocking))
    )
    first.start()
    try:
        assert started.wait(30)
        ran_second = []
        second = run_job("train", settings, job=lambda s: ran_second.append(1))
        other_kind = run_job("forecast", settings, job=lambda s: "other kinds are not blocked")
    finally:
        release.set()
        first.join(30)

    assert second.state == "skipped_locked" and not ran_second
    assert f"pid {os.getpid()}" in second.detail and "train.lock" in second.detail
    assert other_kind.state == "ok"
    assert results["first"].state == "ok"
    third = run_job("train", settings, job=lambda s: "after")
    assert third.state == "ok"  # the lock was released

    rows = _runs_in_lake(lake)
    assert sorted(rows.loc[rows["job"] == "train", "state"]) == ["ok", "ok", "skipped_locked"]


def test_the_scheduler_loop_records_skipped_locked(settings: Settings, lake: Lake):
    clock = FakeClock(START)
    ran = []
    scheduler = Scheduler(
        settings,
        schedule={"plan": "10 * * * *"},
        jobs={"plan": lambda s: ran.append(1)},
        clock=clock,
        sleep=clock.sleep,
    )
    with job_lock(lock_path(settings.data_dir, "plan")) as held:
        assert held
        runs = scheduler.run(max_runs=1)
    assert [r.state for r in runs] == ["skipped_locked"] and not ran
    assert list(_runs_in_lake(lake)["state"]) == ["skipped_locked"]


_HOLDER = """
import sys
from pathlib import Path
from pipelines.schedule import job_lock
with job_lock(Path(sys.argv[1])) as held:
    print("held" if held else "busy", flush=True)
    sys.stdin.read()
"""


def test_the_lock_holds_across_processes_and_dies_with_its_holder(settings: Settings, lake: Lake):
    path = lock_path(settings.data_dir, "ingest")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        blocked = run_job("ingest", settings, job=lambda s: "should not run")
        assert blocked.state == "skipped_locked"
        assert f"pid {holder.pid}" in blocked.detail
    finally:
        holder.kill()  # SIGKILL: no cleanup code runs in the holder
        holder.wait(10)
    after = run_job("ingest", settings, job=lambda s: "ran")
    assert after.state == "ok" and after.detail == "ran"
    assert list(_runs_in_lake(lake)["state"]) == ["skipped_locked", "ok"]


# ---------------------------------------------------------------- signals

_SCHEDULER = """
import sys, time
from datetime import datetime, timedelta, UTC
from pathlib import Path
from forecasting.settings import get_settings
from pipelines.schedule import Scheduler, next_run, utc_now
from pipelines.signals import stop_on_signals

marks = Path(sys.argv[1])
start = utc_now()
# shift the clock so that the every-minute job is due 0.5 s from now
offset = next_run("* * * * *", start) - start - timedelta(seconds=0.5)

def job(settings):
    (marks / "started").touch()
    time.sleep(float(sys.argv[2]))
    (marks / "done").touch()
    return "finished"

scheduler = Scheduler(
    get_settings(), schedule={"tick": "* * * * *"}, jobs={"tick": job},
    clock=lambda: utc_now() + offset,
)
print("ready", flush=True)
with stop_on_signals(scheduler):
    runs = scheduler.run()
print("stopped", [r.state for r in runs], flush=True)
"""


def _start_scheduler(tmp_path: Path, job_seconds: float) -> subprocess.Popen:
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "REPLICAST_DATA_DIR": str(tmp_path / "var")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCHEDULER, str(marks), str(job_seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigterm_while_a_job_runs_lets_it_finish_and_record_then_exits(tmp_path: Path):
    proc = _start_scheduler(tmp_path, job_seconds=1.5)
    try:
        _wait_for(tmp_path / "marks" / "started")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped ['ok']" in out
    assert (tmp_path / "marks" / "done").exists()
    rows = Lake(tmp_path / "var" / "lake").read(JOB_RUNS)
    assert list(rows["state"]) == ["ok"] and list(rows["detail"]) == ["finished"]


def test_sigterm_while_idle_stops_at_once(tmp_path: Path):
    proc = _start_scheduler(tmp_path, job_seconds=0.0)
    try:
        _wait_for(tmp_path / "marks" / "done")  # first run over; now sleeping ~60 s
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        # the next run is a minute away: only a real stop ends the process in time
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped ['ok']" in out
