"""Share routes: an owner shares a run or source with another user."""

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from lockflow.access.deps import Authorized
from lockflow.auth.http import ERRORS, Service, call, client_of

router = APIRouter(tags=["auth"], responses=ERRORS)


class ShareCreate(BaseModel):
    """Share a run or source you own with another user."""

    object_type: Literal["run", "source"]
    object_id: str = Field(min_length=1, max_length=200)
    username: str = Field(min_length=1, max_length=64)


@router.post("/shares", status_code=204)
async def share(body: ShareCreate, request: Request, principal: Authorized, service: Service) -> Response:
    """Share a run or source you own with another user (they may then see it and decide its gates)."""
    await call(
        lambda: service.share(
            object_type=body.object_type,
            object_id=body.object_id,
            username=body.username,
            actor=principal.username,
            client=client_of(request),
        )
    )
    return Response(status_code=204)
