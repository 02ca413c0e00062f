"""The job-run recorder: every run of a batch job is one row of the ``job_runs`` dataset.

Columns: ``ts`` (start, UTC), ``job``, ``run_id``, ``state`` (``ok``, ``failed`` or
``skipped_locked``), ``seconds`` and ``detail`` (the job's JSON summary, the error, or
who holds the lock). The scheduler (:mod:`pipelines.schedule`) records its runs here;
``train`` and ``forecast`` called directly record theirs with :func:`recorded_job`.
Every ``detail`` is redacted (:func:`forecasting.redact.redact`): an error may quote a URI.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import pandas as pd

from forecasting.errors import DataValidationError
from forecasting.lake import Lake
from forecasting.redact import redact

logger = logging.getLogger(__name__)

JOB_RUNS = "job_runs"

State = Literal["ok", "failed", "skipped_locked"]
R = TypeVar("R")


@dataclass(frozen=True)
class JobRun:
    """One run of a job, as recorded in ``job_runs``.

    Attributes:
        job: the job name.
        run_id: a fresh hex id.
        state: ``ok``, ``failed`` or ``skipped_locked``.
        started: when the run started (UTC, from the scheduler's clock).
        seconds: wall time spent in the job (0 when skipped).
        detail: the job's summary, the error, or who holds the lock.
        error: the exception of a failed run (not recorded in the lake).
    """

    job: str
    run_id: str
    state: State
    started: datetime
    seconds: float
    detail: str
    error: BaseException | None = field(default=None, repr=False, compare=False)


def record_run(lake: Lake, run: JobRun) -> None:
    """Append ``run`` to the ``job_runs`` dataset; a lake error is logged, not raised."""
    row = pd.DataFrame(
        {
            "ts": [pd.Timestamp(run.started)],
            "job": [run.job],
            "run_id": [run.run_id],
            "state": [run.state],
            "seconds": [float(run.seconds)],
            "detail": [redact(run.detail)],
        }
    )
    try:
        lake.write(JOB_RUNS, row)
    except (OSError, DataValidationError) as exc:
        logger.warning(
            "could not record job run %s/%s in %s: %s", run.job, run.run_id, lake, redact(str(exc))
        )


def recorded_job(
    lake: Lake,
    job: str,
    work: Callable[[], R],
    summary: Callable[[R], tuple[str, dict[str, Any]]],
) -> R:
    """Run ``work`` and append its outcome to ``job_runs``, as the scheduler does.

    ``summary(result)`` gives the run id to record and the detail (as JSON). A failure is
    recorded as ``failed`` with the error, then re-raised; a lake error is only logged.
    """
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    try:
        result = work()
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:2000]
        seconds = time.perf_counter() - started
        record_run(lake, JobRun(job, uuid.uuid4().hex, "failed", started_at, seconds, detail))
        raise
    run_id, detail_json = summary(result)
    seconds = time.perf_counter() - started
    record_run(lake, JobRun(job, run_id, "ok", started_at, seconds, json.dumps(detail_json)))
    return result
