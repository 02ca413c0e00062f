"""The one local parallel map: ``process_map(func, items, n_jobs)`` over worker processes.

Estimators that fit many independent series (ETS, Prophet) call it; on a cluster the
pipelines hand the same work to a Dask runner instead (``pipelines/dask_runner.py``).
Inside a worker process it runs sequentially: nested pools only fight for the same cores
and pay every import again.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def in_worker_process() -> bool:
    """Whether this process was started by ``multiprocessing`` (a pool or Dask worker)."""
    return multiprocessing.parent_process() is not None


def process_map(func: Callable[..., R], *iterables: Sequence[T], n_jobs: int = 1) -> list[R]:
    """``[func(*args) for args in zip(*iterables)]``, over ``n_jobs`` processes when it pays.

    Runs in this process when ``n_jobs <= 1``, when there is at most one item, or when
    this process is itself a worker. ``func`` and the items must pickle. Results come in
    item order; the first error raised by ``func`` is raised here.
    """
    n_items = min((len(it) for it in iterables), default=0)
    if n_jobs <= 1 or n_items <= 1 or in_worker_process():
        return [func(*args) for args in zip(*iterables, strict=True)]
    with ProcessPoolExecutor(max_workers=min(n_jobs, n_items)) as pool:
        return list(pool.map(func, *iterables))
