"""The parameters of the shipped ``data/sample/`` fleet, apart from the simulator.

Light on purpose (no numpy/pandas/scipy): ``replicast simulate --help`` shows them
as the defaults without loading the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SampleSpec:
    """The exact parameters of the shipped ``data/sample/`` (default fleet)."""

    start: str = "2026-09-21"
    days: int = 35
    seed: int = 20260921
    nodes_per_region: int = 3
    segments_per_cluster: int = 24


SAMPLE = SampleSpec()
