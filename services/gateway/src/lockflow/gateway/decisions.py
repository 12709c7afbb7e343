"""Decision routes: the open gates the caller may see, one request, gate 2's preview, and deciding."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, HTTPException, Query, Request, Response

from lockflow.access.address import client_address
from lockflow.access.deps import Authorized, Principal
from lockflow.access.policy import Scope, Verdict, gate_verdict
from lockflow.audit import chain as audit
from lockflow.common.errors import NotFound
from lockflow.common.models import DecisionRecord
from lockflow.common.pipeline import Gate, QualityChoices
from lockflow.common.service_requests import preview_fixes
from lockflow.gateway.access import auth_of, check_run, run_reader
from lockflow.gateway.bootstrap import Runtime
from lockflow.gateway.charts import with_preview_charts
from lockflow.gateway.deps import SettingsDep, SystemDep
from lockflow.gateway.pages import LISTED, PagingDep, with_total
from lockflow.gateway.responses import ASKS, ERRORS
from lockflow.gateway.schemas import DecisionAccepted, DecisionSubmit
from lockflow.gateway.sources import rate_limited
from lockflow.runstore import intake, views

router = APIRouter(prefix="/decisions", tags=["decisions"])


def with_deadline(found: dict[str, Any], deadline_seconds: float) -> dict[str, Any]:
    """The request with `deadline_at`: when an open gate is overdue (the orchestrator alerts then); None
    once decided."""
    deadline = None
    if found.get("status") == "open" and found.get("created_at"):
        asked = datetime.fromisoformat(found["created_at"])
        asked = asked if asked.tzinfo else asked.replace(tzinfo=UTC)
        deadline = (asked + timedelta(seconds=deadline_seconds)).isoformat()
    return {**found, "deadline_at": deadline}


@router.get("", responses={**ERRORS, **LISTED})
async def list_decisions(
    request: Request,
    response: Response,
    system: SystemDep,
    settings: SettingsDep,
    principal: Authorized,
    page: PagingDep,
    status: Literal["open", "decided", "all"] = "open",
    run_id: Annotated[str | None, Query(max_length=200)] = None,
) -> list[dict[str, Any]]:
    """Decision requests (open ones by default) of the runs the caller may see, oldest first; an open
    one's `deadline_at` is when it becomes overdue.

    Filtered by the caller in the query, then paged (`offset`, `limit`); the total is in X-Total-Count.
    """

    def read() -> views.Page:
        return views.decision_requests_page(
            system.db,
            reader=run_reader(auth_of(request), principal),
            status=None if status == "all" else status,
            run_id=run_id or None,
            limit=page.limit,
            offset=page.offset,
        )

    found = await anyio.to_thread.run_sync(read)
    rows = [with_deadline(row, settings.alert_gate_deadline_seconds) for row in found.rows]
    return with_total(response, rows, found.total)


@router.get("/{request_id}", responses=ERRORS)
async def get_decision(
    request_id: str, request: Request, system: SystemDep, settings: SettingsDep, principal: Authorized
) -> dict[str, Any]:
    """One decision request with the results it is about (and, while open, its `deadline_at`)."""
    found = await _visible_request(request, system, principal, request_id)
    return with_deadline(found, settings.alert_gate_deadline_seconds)


@router.post("/{request_id}/preview", responses={**ERRORS, **ASKS})
async def preview_decision(
    request_id: str, body: QualityChoices, request: Request, system: SystemDep, principal: Authorized
) -> dict[str, Any]:
    """Dry run of gate 2 'apply': what the chosen resolutions would change. Nothing is applied.

    The quality service computes it (a request over the bus); the run's findings and dataset go with it.
    """
    found = await _visible_request(request, system, principal, request_id)
    state, context = await anyio.to_thread.run_sync(
        lambda: views.quality_gate_inputs(system.db, request_id=request_id)
    )
    answer = await preview_fixes(
        system.requester,
        run_id=found["run_id"],
        request_id=request_id,
        dataset=state.dataset_current,
        findings=state.findings,
        context=context,
        params=body.model_dump(),
    )
    return with_preview_charts(answer)


@router.post("/{request_id}", response_model=DecisionAccepted, responses=ERRORS)
async def submit_decision(
    request_id: str, body: DecisionSubmit, request: Request, system: SystemDep, principal: Authorized
) -> DecisionAccepted:
    """Decide an open gate: accepted once (409 after), 422 for a wrong option or parameters.

    The caller must see the run and hold a role that may decide this gate (analyst: gates 1-4,
    approver: any); with separation of duties the run's starter may not decide gate 5.
    """
    found = await _visible_request(request, system, principal, request_id)
    await anyio.to_thread.run_sync(lambda: _may_decide(request, principal, found))
    rate_limited(request.app.state.decision_limiter, principal.username)
    record = await anyio.to_thread.run_sync(
        lambda: intake.record_decision(
            system.db,
            request_id=request_id,
            option=body.option,
            params=body.params,
            rationale=body.rationale,
            decided_by=principal.username,
            submitted_gate=body.gate,
        )
    )
    await anyio.to_thread.run_sync(lambda: _audit_decision(request, principal, found["run_id"], record))
    await system.relay_outbox()
    return DecisionAccepted(
        request_id=request_id,
        gate=record.gate,
        option=record.option,
        params=record.params,
        decided_by=record.decided_by,
        decided_at=record.decided_at.isoformat(),
        rationale=record.rationale,
    )


async def _visible_request(
    request: Request, system: Runtime, principal: Principal, request_id: str
) -> dict[str, Any]:
    """The decision request if the caller may see its run; 404 (the same as a missing one) otherwise."""

    def read() -> dict[str, Any]:
        found = views.get_decision_request(system.db, request_id=request_id)
        try:
            check_run(auth_of(request), principal, run_id=found["run_id"], scope=Scope.VISIBLE)
        except NotFound as exc:
            raise NotFound(f"no decision request {request_id}") from exc
        return found

    return await anyio.to_thread.run_sync(read)


def _may_decide(request: Request, principal: Principal, found: dict[str, Any]) -> None:
    """The role x gate matrix and separation of duties (403 with the reason)."""
    auth = auth_of(request)
    run_id = found["run_id"]
    verdict, reason = gate_verdict(
        roles=principal.roles,
        gate=Gate(found["gate"]),
        user=principal.username,
        run_owner=auth.owner_of(object_type="run", object_id=run_id),
        shared_with=auth.shared_with(object_type="run", object_id=run_id),
        separation_of_duties=auth.separation_of_duties,
    )
    if verdict is Verdict.NOT_FOUND:
        raise NotFound(f"no decision request {found['id']}")
    if verdict is Verdict.FORBIDDEN:
        raise HTTPException(status_code=403, detail=reason)


def _audit_decision(request: Request, principal: Principal, run_id: str, record: DecisionRecord) -> None:
    """Who decided which gate of which run, when (UTC), what and why: one row in the audit chain."""
    auth = auth_of(request)
    with auth.db.transaction() as session:
        audit.record_decision(
            session,
            actor=principal.username,
            run_id=run_id,
            gate=record.gate,
            choice=record.option,
            rationale=record.rationale,
            client=client_address(request),
        )
