"""The caller's identity as a FastAPI dependency: the one place authentication plugs in.

Until token authentication lands, the gateway trusts an `X-Lockflow-User` header (or names the
caller "local"), which is right only for a single-user, loopback deployment.
"""

import re
from typing import Annotated

from fastapi import Header, HTTPException

_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def current_actor(x_lockflow_user: Annotated[str | None, Header()] = None) -> str:
    """Who is calling; refuses names that could forge log lines or records."""
    if x_lockflow_user is None:
        return "local"
    if not _USERNAME.match(x_lockflow_user):
        raise HTTPException(status_code=400, detail="X-Lockflow-User must be 1-64 of A-Z a-z 0-9 _ . @ -")
    return x_lockflow_user
