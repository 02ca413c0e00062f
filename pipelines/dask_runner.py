"""Runners: ``map(func, items) -> list`` in this process, over local processes, or on Dask.

Code that fits many independent things (per-series Prophet fits, backtest folds)
takes a runner instead of looping itself, so the same code runs on one machine
or on a cluster (DESIGN.md, "Jobs and scale")::

    from pipelines.dask_runner import make_runner

    with make_runner(dask) as runner:            # dask: None, "local" or "tcp://host:8786"
        fits = runner.map(fit_one, series_list)  # results in the order of series_list

API (every runner):

* ``runner.map(func, items, *, progress=None) -> list``: ``func(item)`` for every
  item, results in item order. The first exception raised by ``func`` is raised
  by ``map`` (remaining Dask tasks are cancelled). ``progress(done, total)`` is
  called as items finish. With Dask, ``func`` and the items must pickle
  (cloudpickle: module-level functions and plain data are safest) and the result
  is copied back to this process, so return small things (fitted params, scores).
* ``func`` may call :func:`note(message) <note>` to report a finer step; the runner
  hands it to ``map(..., on_note=callback)`` in this process (dropped on Dask).
* Use the runner as a context manager; it is not reusable after the block.

:class:`SequentialRunner` (the default, ``make_runner(None)``) runs in this process,
one item after the other. :class:`ProcessRunner` ``(n_workers)`` spreads the items over
worker processes of this machine (spawned; they log like this process).
:class:`DaskRunner` ``(address=None)`` starts a
``LocalCluster`` of ``n_workers`` worker *processes* with one thread each on the
loopback interface (any free ports) and stops it on exit; ``DaskRunner("tcp://host:8786")``
connects to a running scheduler instead and leaves it running.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from forecasting.errors import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: ``progress(done, total)`` after each finished item.
Progress = Callable[[int, int], None]
#: ``on_note(message)`` for each :func:`note` of ``func``.
OnNote = Callable[[str], None]

ADDRESS_SCHEMES = ("tcp://", "tls://")
#: Seconds to wait for a remote scheduler to answer.
CONNECT_TIMEOUT_S = 10.0


#: Where :func:`note` goes in this process (process-wide: a spawned worker gets its queue
#: only through the pool initializer; SequentialRunner.map sets it for its duration).
_note_sink: OnNote | None = None


def note(message: str) -> None:
    """Report a step of the running ``func`` to the runner's ``on_note`` (dropped if none)."""
    if _note_sink is not None:
        _note_sink(message)


class Runner(Protocol):
    """What every runner offers."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def map(
        self,
        func: Callable[[T], R],
        items: Iterable[T],
        *,
        progress: Progress | None = None,
        on_note: OnNote | None = None,
    ) -> list[R]: ...


class SequentialRunner:
    """Runs ``map`` in this process, item after item (the default runner)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def map(
        self,
        func: Callable[[T], R],
        items: Iterable[T],
        *,
        progress: Progress | None = None,
        on_note: OnNote | None = None,
    ) -> list[R]:
        """``[func(item) for item in items]``, reporting progress after each item."""
        global _note_sink
        todo = list(items)
        out: list[R] = []
        previous, _note_sink = _note_sink, on_note
        try:
            for item in todo:
                out.append(func(item))
                if progress is not None:
                    progress(len(out), len(todo))
        finally:
            _note_sink = previous
        return out


def _init_worker(levels: dict[str, int], queue: Any) -> None:
    """A spawned worker logs like its parent (same levels, to stderr); notes go to ``queue``."""
    global _note_sink
    _note_sink = queue.put
    logging.basicConfig(level=levels.get("", logging.WARNING))
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


class ProcessRunner:
    """Runs ``map`` over ``n_workers`` worker processes of this machine.

    Workers are spawned, not forked (no fork after OpenMP/BLAS threads started) and
    log like this process: the levels of ``loggers`` (``""`` is the root) are copied
    at start, records go to their stderr. ``func`` and the items must pickle. The first
    exception raised by ``func`` is raised by ``map``; items not started are cancelled.
    """

    def __init__(self, n_workers: int, *, loggers: Sequence[str] = ("",)) -> None:
        self.n_workers = n_workers
        self.loggers = tuple(loggers)
        self._pool: ProcessPoolExecutor | None = None
        self._queue: Any = None

    def __enter__(self) -> Self:
        context = multiprocessing.get_context("spawn")
        levels = {name: logging.getLogger(name).getEffectiveLevel() for name in self.loggers}
        # handed to the workers at start (no manager process); a SimpleQueue's put writes
        # to the pipe at once, so every note is readable before its item's result arrives
        self._queue = context.SimpleQueue()
        self._pool = ProcessPoolExecutor(
            self.n_workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(levels, self._queue),
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=exc is not None)
            self._pool = None
        if self._queue is not None:
            self._queue.close()
            self._queue = None

    def map(
        self,
        func: Callable[[T], R],
        items: Iterable[T],
        *,
        progress: Progress | None = None,
        on_note: OnNote | None = None,
    ) -> list[R]:
        """``func(item)`` for every item in the workers, results in item order."""
        if self._pool is None:
            raise RuntimeError("ProcessRunner is used outside its `with` block")
        todo = list(items)
        futures: list[Future[R]] = [self._pool.submit(func, item) for item in todo]
        pending = set(futures)
        finished = 0
        while pending:
            self._drain(on_note)
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()  # re-raise a worker's error here, with its message
                finished += 1
                if progress is not None:
                    progress(finished, len(todo))
        self._drain(on_note)
        return [future.result() for future in futures]

    def _drain(self, on_note: OnNote | None) -> None:
        while not self._queue.empty():
            message = self._queue.get()
            if on_note is not None:
                on_note(message)


class DaskRunner:
    """Runs ``map`` on a Dask cluster: a new local one, or a running one at ``address``.

    Args:
        address: ``tcp://host:port`` (or ``tls://``) of a running Dask scheduler;
            ``None`` starts a ``LocalCluster`` for the duration of the block.
        n_workers: worker processes of the local cluster.
        threads_per_worker: threads per local worker (1: CPU-bound fits do not
            fight over the GIL or over BLAS threads).
        connect_timeout_s: how long to wait for the scheduler at ``address``.

    Raises:
        ConfigError: ``address`` has no ``tcp://``/``tls://`` scheme, or no scheduler
            answers there (raised on entering the block).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        n_workers: int = 2,
        threads_per_worker: int = 1,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        if address is not None and not address.startswith(ADDRESS_SCHEMES):
            raise ConfigError(
                f"--dask {address!r}: a Dask scheduler address starts with tcp:// or tls://, "
                "e.g. tcp://scheduler:8786 (or 'local' for a local cluster)"
            )
        self.address = address
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.connect_timeout_s = connect_timeout_s
        self._client: Any = None
        self._cluster: Any = None

    def __enter__(self) -> Self:
        from distributed import Client, LocalCluster  # deferred: Dask only when asked for

        if self.address is None:
            self._cluster = LocalCluster(
                n_workers=self.n_workers,
                threads_per_worker=self.threads_per_worker,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",  # status/health routes: loopback, free port
                silence_logs=logging.WARNING,
            )
            self._client = Client(self._cluster)
            logger.info("local Dask cluster at %s", self._cluster.scheduler_address)
        else:
            try:
                self._client = Client(self.address, timeout=self.connect_timeout_s)
            except (OSError, TimeoutError) as exc:
                raise ConfigError(
                    f"--dask {self.address}: no Dask scheduler answered within "
                    f"{self.connect_timeout_s:g} s ({exc}); start one with `dask scheduler` "
                    "and workers with `dask worker ADDRESS`, or omit --dask"
                ) from exc
            logger.info("connected to the Dask scheduler at %s", self.address)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (inside the block), e.g. for LightGBM's Dask interface."""
        if self._client is None:
            raise RuntimeError("DaskRunner is used outside its `with` block")
        return self._client

    def map(
        self,
        func: Callable[[T], R],
        items: Iterable[T],
        *,
        progress: Progress | None = None,
        on_note: OnNote | None = None,
    ) -> list[R]:
        """``func(item)`` for every item on the cluster, results in item order (notes dropped)."""
        from distributed import as_completed  # deferred: Dask only when asked for

        todo = list(items)
        if not todo:
            return []
        futures = self.client.map(func, todo, pure=False)
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                if future.status == "error":
                    future.result()  # raises the task's own exception
                if progress is not None:
                    progress(done, len(todo))
            return self.client.gather(futures)
        finally:
            self.client.cancel([f for f in futures if not f.done()])


def make_runner(
    dask: str | None = None, *, workers: int = 1, loggers: Sequence[str] = ("",)
) -> SequentialRunner | ProcessRunner | DaskRunner:
    """The runner for a ``--dask`` option value and a number of local workers.

    Args:
        dask: ``None`` or ``""``: on this machine; ``"local"``: a local Dask
            cluster; ``"tcp://host:port"``: a running Dask scheduler.
        workers: without ``dask``, more than 1 gives a :class:`ProcessRunner` of that
            many processes, else a :class:`SequentialRunner`.
        loggers: the loggers whose levels process workers copy.

    Raises:
        ConfigError: an address without a known scheme.
    """
    if not dask:
        return ProcessRunner(workers, loggers=loggers) if workers > 1 else SequentialRunner()
    if dask == "local":
        return DaskRunner(None)
    return DaskRunner(dask)
