"""Stop a long-running loop (the scheduler, the collector) cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Protocol, TypeVar

logger = logging.getLogger(__name__)


class Stoppable(Protocol):
    """A loop that can be asked to stop (e.g. :class:`pipelines.schedule.Scheduler`)."""

    @property
    def stopping(self) -> bool: ...

    def stop(self) -> None: ...


S = TypeVar("S", threading.Event, Stoppable)


@contextmanager
def stop_on_signals(
    target: S,
    signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT),
    *,
    interrupt_on_second: bool = True,
    after: str = "the running job",
) -> Iterator[S]:
    """Within the block, the first SIGTERM/SIGINT stops ``target``; yields ``target``.

    ``target`` is a :class:`threading.Event` (set on the signal) or a :class:`Stoppable`
    (its ``stop()`` is called). With ``interrupt_on_second``, a signal that comes when
    ``target`` is already stopping raises ``KeyboardInterrupt`` to interrupt the work at
    once. ``after`` names what finishes first, in the log line. The previous handlers
    come back on exit. Main thread only.
    """
    if isinstance(target, threading.Event):
        stopping, stop = target.is_set, target.set
    else:
        stopping, stop = (lambda: target.stopping), target.stop

    def handler(signum: int, frame: FrameType | None) -> None:
        if interrupt_on_second and stopping():
            raise KeyboardInterrupt
        logger.info("%s received: stopping after %s", signal.Signals(signum).name, after)
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield target
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
