"""stop_on_signals: the first signal stops, a second interrupts only when asked."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from pipelines.collect import stop_on_signals as collect_stop_on_signals
from pipelines.signals import stop_on_signals


class _Loop:
    def __init__(self) -> None:
        self.stopping = False

    def stop(self) -> None:
        self.stopping = True


def test_event_is_set_then_second_signal_interrupts() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(threading.Event()) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_stoppable_is_stopped() -> None:
    loop = _Loop()
    with stop_on_signals(loop) as got:
        os.kill(os.getpid(), signal.SIGTERM)
    assert got is loop and loop.stopping


def test_collector_second_signal_does_not_interrupt() -> None:
    with collect_stop_on_signals(threading.Event()) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.is_set()
