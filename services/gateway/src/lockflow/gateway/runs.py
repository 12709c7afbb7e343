"""Run actions beyond starting and reading one: retry a failed run's failed step."""

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from lockflow.access.deps import Authorized, Principal
from lockflow.access.policy import Scope
from lockflow.audit import chain as audit
from lockflow.gateway.access import auth_of, check_run
from lockflow.gateway.bootstrap import Runtime as System
from lockflow.gateway.schemas import ErrorBody
from lockflow.runstore import intake, views

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing, invalid or revoked access token"},
    403: {"model": ErrorBody, "description": "the caller's roles may not do this"},
    404: {"model": ErrorBody, "description": "no such run, or not the caller's to see"},
    409: {"model": ErrorBody, "description": "the run did not fail at a step (or is being retried)"},
}


class RetryAccepted(BaseModel):
    """The retried run: running again at the step that failed."""

    id: str
    status: str
    step: str


def _system(request: Request) -> System:
    system: System = request.app.state.system
    return system


SystemDep = Annotated[System, Depends(_system)]


def runs_router() -> APIRouter:
    """The run action routes."""
    router = APIRouter(prefix="/runs", tags=["runs"])

    @router.post("/{run_id}/retry", status_code=202, response_model=RetryAccepted, responses=ERRORS)
    async def retry(run_id: str, request: Request, system: SystemDep, principal: Authorized) -> RetryAccepted:
        """Run a failed run's failed step again with the same inputs; the decisions made so far are kept.

        Who may decide on the run may retry it (analyst, approver; own or shared). 409 unless the run
        failed at a step; 404 for a run the caller cannot see.
        """

        def run_again() -> RetryAccepted:
            check_run(auth_of(request), principal, run_id=run_id, scope=Scope.VISIBLE)
            intake.retry_run(system.db, run_id=run_id, requested_by=principal.username)
            run = views.get_run(system.db, run_id=run_id)
            _audit_retry(request, principal, run_id, step=run["current_step"])
            return RetryAccepted(id=run_id, status=run["status"], step=run["current_step"])

        accepted = await anyio.to_thread.run_sync(run_again)
        await system.relay_outbox()
        return accepted

    return router


def _audit_retry(request: Request, principal: Principal, run_id: str, *, step: str) -> None:
    """Who asked to run which step of which run again: one row in the audit chain."""
    with auth_of(request).db.transaction() as session:
        audit.append(
            session,
            action="run_retried",
            actor=principal.username,
            run_id=run_id,
            detail={"step": step},
            client=request.client.host if request.client else None,
        )
