"""The link of a sync run: its bandwidth and round-trip time, and the zstd level they call for.

The fleet (:meth:`forecasting.settings.Fleet.link`) knows the links between regions;
this module only picks the one a request uses: a remote target synced for a named
replica goes over that replica's link, and ``bwlimit``, when given, sets the rate.
"""

from __future__ import annotations

from forecasting.settings import Fleet
from replication.paths import Endpoint
from replication.request import SyncRequest


def link_of(
    request: SyncRequest, fleet: Fleet, endpoint: Endpoint
) -> tuple[float | None, float | None]:
    """(bandwidth bytes/s or None, rtt ms or None) of the link to the target.

    Raises:
        UnknownKeyError: the request names a replica region the fleet does not know.
    """
    if not (endpoint.is_remote and request.replica):
        return request.bwlimit, None
    link = fleet.link(request.replica)
    return request.bwlimit or link.bandwidth_bytes_s, link.rtt_ms


def zstd_level_for(bandwidth: float | None) -> int:
    """zstd level for a link of ``bandwidth`` bytes/s: 0 (no compression) on fast local links.

    Faster links get cheaper levels so compressing never becomes the bottleneck.
    """
    if bandwidth is None or bandwidth >= 1e9:
        return 0
    if bandwidth >= 2.5e8:
        return 1
    if bandwidth >= 2e7:  # higher levels gain ~1 % on this data at 2-3x the CPU
        return 3
    if bandwidth >= 5e6:
        return 6
    return 9
