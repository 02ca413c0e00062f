"""Sync runs: start (202 + id), status, cancel. Starting and cancelling need the token.

Handlers are plain functions (run in the threadpool): they read and write the run
store every worker shares, which may wait briefly on another worker's write.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from serving.http.deps import TokenRequired
from serving.http.schemas import SyncRunRequest, SyncRunStatus, error_responses
from serving.http.services.sync_runs import SyncRunManager

router = APIRouter(prefix="/v1/sync", tags=["sync"])

RunId = Annotated[str, Path(pattern=r"^[0-9a-f]{1,64}$", description="the run id")]


async def _manager(request: Request) -> SyncRunManager:
    return request.app.state.sync_runs


ManagerDep = Annotated[SyncRunManager, Depends(_manager)]


@router.post(
    "/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SyncRunStatus,
    dependencies=[TokenRequired],
    summary="Start a sync run in the background",
    responses=error_responses(401, 409, 413, 422),
)
def start_run(body: SyncRunRequest, manager: ManagerDep, response: Response) -> SyncRunStatus:
    """Returns at once with the run id; poll ``GET /v1/sync/runs/{id}``.

    ``source`` and ``target`` name endpoints of the settings (``sync.endpoints``);
    paths and hosts are never taken from a request. Any worker of the server answers
    for any run; a target has one active run across all of them (409 otherwise).
    """
    run = manager.start(body)
    response.headers["Location"] = f"/v1/sync/runs/{run.run_id}"
    return SyncRunStatus.model_validate(manager.describe(run))


@router.get(
    "/runs/{run_id}",
    response_model=SyncRunStatus,
    summary="State, progress, bytes and errors of a sync run",
    responses=error_responses(404, 422),
)
def get_run(run_id: RunId, manager: ManagerDep) -> SyncRunStatus:
    return SyncRunStatus.model_validate(manager.describe(manager.get(run_id)))


@router.delete(
    "/runs/{run_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SyncRunStatus,
    dependencies=[TokenRequired],
    summary="Cancel a sync run (files in flight stay old; the journal resumes next time)",
    responses=error_responses(401, 404, 422),
)
def cancel_run(run_id: RunId, manager: ManagerDep) -> SyncRunStatus:
    return SyncRunStatus.model_validate(manager.describe(manager.cancel(run_id)))
