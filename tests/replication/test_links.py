from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.errors import UnknownKeyError
from forecasting.settings import Fleet
from replication.links import link_of, zstd_level_for
from replication.paths import Endpoint
from replication.request import SyncRequest

_REMOTE = Endpoint(path="/srv/replica", host="db2")
_LOCAL = Endpoint(path="/srv/replica")


def _request(**changes: object) -> SyncRequest:
    return SyncRequest(source=Path("/srv/primary"), target=str(_REMOTE), **changes)


def test_remote_replica_uses_the_fleet_link() -> None:
    fleet = Fleet()
    link = fleet.link("cn-north")
    assert link_of(_request(replica="cn-north"), fleet, _REMOTE) == (
        link.bandwidth_bytes_s,
        link.rtt_ms,
    )


def test_bwlimit_sets_the_rate_of_the_fleet_link() -> None:
    fleet = Fleet()
    got = link_of(_request(replica="eu-west", bwlimit=1e6), fleet, _REMOTE)
    assert got == (1e6, fleet.link("eu-west").rtt_ms)


@pytest.mark.parametrize(
    ("request_args", "endpoint"),
    [({"replica": "cn-north"}, _LOCAL), ({}, _REMOTE), ({"replica": None}, _LOCAL)],
    ids=["local target", "no replica", "neither"],
)
def test_without_a_remote_replica_only_bwlimit_counts(
    request_args: dict[str, object], endpoint: Endpoint
) -> None:
    fleet = Fleet()
    assert link_of(_request(**request_args), fleet, endpoint) == (None, None)
    assert link_of(_request(bwlimit=5e6, **request_args), fleet, endpoint) == (5e6, None)


def test_unknown_replica_region_is_named() -> None:
    with pytest.raises(UnknownKeyError, match="mars"):
        link_of(_request(replica="mars"), Fleet(), _REMOTE)


def test_zstd_level_follows_bandwidth() -> None:
    assert zstd_level_for(None) == 0
    assert zstd_level_for(10e9) == 0
    assert 0 < zstd_level_for(5e8) < zstd_level_for(40 * 1024**2) <= zstd_level_for(1e6)
