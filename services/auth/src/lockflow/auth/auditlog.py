"""Audit routes (admins): the records after a cursor, and the chain's verification."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from lockflow.access.deps import Authorized
from lockflow.audit import chain as audit
from lockflow.auth.http import ERRORS, TOTAL_HEADER, Service, call

router = APIRouter(prefix="/audit", tags=["auth"], responses=ERRORS)


AUDIT_LISTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"Records after the cursor; how many follow it in all is in {TOTAL_HEADER}",
        "headers": {TOTAL_HEADER: {"description": "Records after the cursor", "schema": {"type": "integer"}}},
    }
}


@router.get("", responses=AUDIT_LISTED)
async def audit_log(
    _admin: Authorized,
    response: Response,
    service: Service,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Audit records after an id (the cursor), oldest first; X-Total-Count: how many follow the cursor."""

    def read() -> tuple[list[dict[str, Any]], int]:
        with service.db.transaction() as session:
            return audit.records_after(session, after=after, limit=limit)

    records, total = await call(read)
    response.headers[TOTAL_HEADER] = str(total)
    return records  # type: ignore[no-any-return]


@router.get("/verify")
async def audit_verify(_admin: Authorized, service: Service) -> dict[str, Any]:
    """Recompute the hash chain; `ok` false names the first row that does not match."""

    def check() -> dict[str, Any]:
        with service.db.transaction() as s:
            report = audit.verify_chain(s)
        return {
            "ok": report.ok,
            "rows": report.rows,
            "broken_at": report.broken_at,
            "reason": report.reason,
        }

    return await call(check)  # type: ignore[no-any-return]
