"""Collect: sample live PostgreSQL servers every interval, continuously, into the lake.

Each tick (aligned to multiples of the interval) samples every source, turns the
previous and the current sample into one interval of ``node_metrics`` and
``segment_access`` rows, hands them to ``ingest_frame`` and only then persists
the current sample as the source's new baseline in
``<data_dir>/sources/<source-id>.json`` (atomic write). A restart therefore
resumes from the last persisted sample: the interval spanning the downtime is
written as one longer interval (averaged rates), nothing is lost. If writing to
the lake fails, the baseline is not advanced and the next tick covers both
intervals. A stop request (SIGTERM/SIGINT via :func:`stop_on_signals`) ends the
loop between ticks, never in the middle of a write.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd

from forecasting.durable import write_text_atomic
from forecasting.errors import SourceError
from forecasting.lake import Lake
from forecasting.settings import Settings
from pipelines import signals
from pipelines.ingest import ingest_frame
from pipelines.sources import postgres

logger = logging.getLogger(__name__)

#: Warn when a resumed baseline is older than this many intervals.
STALE_INTERVALS = 3


@dataclass
class TickReport:
    """What one tick wrote, per source."""

    ts: pd.Timestamp
    rows: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class CollectReport:
    """Totals of a collect run."""

    ticks: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, tick: TickReport) -> None:
        self.ticks += 1
        for dataset, n in tick.rows.items():
            self.rows[dataset] = self.rows.get(dataset, 0) + n
        self.quarantined += tick.quarantined
        self.errors.extend(tick.errors)


def state_dir(settings: Settings) -> Path:
    """Where collect keeps the last sample of each source."""
    return settings.data_dir / "sources"


def state_path(target: postgres.PgTarget, settings: Settings) -> Path:
    """The baseline file of one source (named by a hash of its conninfo and node name)."""
    digest = hashlib.sha256(f"{target.conninfo}|{target.node}".encode()).hexdigest()[:16]
    return state_dir(settings) / f"postgres-{digest}.json"


def load_baseline(path: Path) -> postgres.PgSample | None:
    """The persisted sample, or ``None`` when missing or unreadable (then a new baseline)."""
    if not path.is_file():
        return None
    try:
        return postgres.PgSample.from_json(path.read_text())
    except (ValueError, TypeError, KeyError) as exc:
        logger.warning("%s: unreadable collector state (%s); starting a new baseline", path, exc)
        return None


def save_baseline(path: Path, current: postgres.PgSample) -> None:
    """Persist ``current`` atomically and durably (temp file, fsync, rename, fsync dir)."""
    write_text_atomic(path, current.to_json())


class Collector:
    """Samples a fixed set of PostgreSQL sources and writes one interval per tick."""

    def __init__(
        self, uris: list[str], *, settings: Settings, lake: Lake, interval_s: float
    ) -> None:
        if interval_s <= 0:
            raise SourceError(f"collect interval must be > 0 s, got {interval_s}")
        self.settings = settings
        self.lake = lake
        self.interval_s = interval_s
        self.targets = [postgres.parse_target(uri, settings) for uri in uris]
        names = [(t.cluster, t.region, t.node) for t in self.targets]
        if len(set(names)) != len(names):
            raise SourceError(
                f"two sources map to the same node {names}; give each a distinct ?node=NAME"
            )
        self._baselines = {t.display: load_baseline(state_path(t, settings)) for t in self.targets}

    def check(self) -> None:
        """Connect to every source once (fail fast on a bad DSN or missing privilege)."""
        for target in self.targets:
            postgres.take_sample(target)

    def tick(self) -> TickReport:
        """Sample every source once; write the interval since its baseline.

        A source that fails is reported (and logged) without stopping the others.
        """
        report = TickReport(ts=pd.Timestamp.now(tz="UTC"))
        for target in self.targets:
            try:
                current = postgres.take_sample(target)
            except SourceError as exc:
                logger.error("%s", exc)
                report.errors.append(str(exc))
                continue
            previous = self._baselines.get(target.display)
            if previous is not None and postgres.same_server(previous, current):
                gap = (current.timestamp - previous.timestamp).total_seconds()
                if gap > STALE_INTERVALS * self.interval_s:
                    logger.warning(
                        "%s: resuming after %.0f s; that interval's rates are averages",
                        target.display,
                        gap,
                    )
                frames = postgres.to_frames(previous, current, target, self.interval_s)
                try:
                    self._write(frames, target, report)
                except Exception as exc:  # keep the old baseline: the next tick covers both
                    logger.error("%s: lake write failed: %s", target.display, exc)
                    report.errors.append(f"{target.display}: lake write failed: {exc}")
                    continue
            elif previous is not None:
                logger.warning("%s: another server answers now; new baseline", target.display)
            save_baseline(state_path(target, self.settings), current)
            self._baselines[target.display] = current
        return report

    def _write(
        self, frames: dict[str, pd.DataFrame], target: postgres.PgTarget, report: TickReport
    ) -> None:
        for dataset, frame in frames.items():
            if frame.empty:
                continue
            result = ingest_frame(frame, dataset=dataset, source=target.display, lake=self.lake)
            report.rows[dataset] = report.rows.get(dataset, 0) + result.rows_good
            report.quarantined += result.rows_quarantined

    def run(
        self,
        *,
        stop: threading.Event,
        duration_s: float | None = None,
        on_tick: Callable[[TickReport], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> CollectReport:
        """Tick at every multiple of the interval until ``stop`` is set or ``duration_s`` passed.

        The first tick happens immediately (it takes the baseline, or closes the interval
        since the persisted one).
        """
        total = CollectReport()
        deadline = None if duration_s is None else clock() + duration_s
        while not stop.is_set():
            tick = self.tick()
            total.add(tick)
            if on_tick is not None:
                on_tick(tick)
            now = clock()
            next_tick = (now // self.interval_s + 1) * self.interval_s
            if deadline is not None and next_tick > deadline:
                break
            stop.wait(max(next_tick - now, 0.0))
        return total


#: The collector's stop: the first SIGTERM/SIGINT sets the event and the loop ends between
#: ticks; a second signal does not interrupt a tick (its lake write finishes).
stop_on_signals = partial(
    signals.stop_on_signals, interrupt_on_second=False, after="the current tick"
)
