"""Runners: ``map(func, items) -> list`` in this process, or spread over a Dask cluster.

Code that fits many independent things (per-series Prophet fits, backtest folds)
takes a runner instead of looping itself, so the same code runs on one machine
or on a cluster (DESIGN.md, "Jobs and scale")::

    from pipelines.dask_runner import make_runner

    with make_runner(dask) as runner:            # dask: None, "local" or "tcp://host:8786"
        fits = runner.map(fit_one, series_list)  # results in the order of series_list

API (both runners):

* ``runner.map(func, items, *, progress=None) -> list``: ``func(item)`` for every
  item, results in item order. The first exception raised by ``func`` is raised
  by ``map`` (remaining Dask tasks are cancelled). ``progress(done, total)`` is
  called as items finish. With Dask, ``func`` and the items must pickle
  (cloudpickle: module-level functions and plain data are safest) and the result
  is copied back to this process, so return small things (fitted params, scores).
* Use the runner as a context manager; it is not reusable after the block.

:class:`SequentialRunner` (the default, ``make_runner(None)``) runs in this process,
one item after the other. :class:`DaskRunner` ``(address=None)`` starts a
``LocalCluster`` of ``n_workers`` worker *processes* with one thread each on the
loopback interface (any free ports) and stops it on exit; ``DaskRunner("tcp://host:8786")``
connects to a running scheduler instead and leaves it running.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from forecasting.errors import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: ``progress(done, total)`` after each finished item.
Progress = Callable[[int, int], None]

ADDRESS_SCHEMES = ("tcp://", "tls://")
#: Seconds to wait for a remote scheduler to answer.
CONNECT_TIMEOUT_S = 10.0


class Runner(Protocol):
    """What both runners offer."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def map(
        self, func: Callable[[T], R], items: Iterable[T], *, progress: Progress | None = None
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
        self, func: Callable[[T], R], items: Iterable[T], *, progress: Progress | None = None
    ) -> list[R]:
        """``[func(item) for item in items]``, reporting progress after each item."""
        todo = list(items)
        out: list[R] = []
        for item in todo:
            out.append(func(item))
            if progress is not None:
                progress(len(out), len(todo))
        return out


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
        self, func: Callable[[T], R], items: Iterable[T], *, progress: Progress | None = None
    ) -> list[R]:
        """``func(item)`` for every item on the cluster, results in item order."""
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


def make_runner(dask: str | None = None) -> SequentialRunner | DaskRunner:
    """The runner for a ``--dask`` option value.

    Args:
        dask: ``None`` or ``""``: in this process; ``"local"``: a local Dask
            cluster; ``"tcp://host:port"``: a running Dask scheduler.

    Raises:
        ConfigError: an address without a known scheme.
    """
    if not dask:
        return SequentialRunner()
    if dask == "local":
        return DaskRunner(None)
    return DaskRunner(dask)
