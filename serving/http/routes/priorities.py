"""GET /v1/priorities — the ranked segments each replica should receive first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from forecasting.errors import UnknownKeyError
from serving.http.deps import SettingsDep
from serving.http.schemas import PrioritiesResponse, error_responses

router = APIRouter(prefix="/v1", tags=["decisions"])

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"


@router.get(
    "/priorities",
    response_model=PrioritiesResponse,
    summary="The newest replication priority queue of a cluster",
    responses=error_responses(404, 422),
)
async def priorities(
    request: Request,
    settings: SettingsDep,
    cluster: Annotated[str, Query(pattern=_NAME, description="cluster name")],
    replica: Annotated[
        str | None, Query(pattern=_NAME, description="replica region (default: all)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="at most this many rows")] = 50,
) -> PrioritiesResponse:
    """Rank 1 is copied first; an empty list means no queue was computed yet."""
    spec = settings.fleet.cluster(cluster)
    if replica is not None and replica not in spec.regions:
        raise UnknownKeyError(
            f"replica: cluster {cluster!r} has no region {replica!r}; its regions: {spec.regions}"
        )
    view = request.app.state.priority_view
    return PrioritiesResponse.model_validate(view.latest(cluster, replica, limit))
