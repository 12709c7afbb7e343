"""Who owns a run or a source and whom it is shared with: the lookups object-level access rests on.

The auth service writes shares (`POST /shares`); runs and sources record their owner. Reads only.
"""

from sqlalchemy import select, text

from lockflow.audit.chain import clean
from lockflow.common.auth_tables import ShareRow
from lockflow.common.db import Database
from lockflow.common.errors import InvalidInput, NotFound

OBJECT_TYPES = ("run", "source")


def owner_of(db: Database, *, object_type: str, object_id: str) -> str:
    """Who owns a run (its starter) or a source (its creator); NotFound if there is none."""
    if object_type not in OBJECT_TYPES:
        raise InvalidInput(f"object_type must be one of {', '.join(OBJECT_TYPES)}")
    query = (
        "SELECT requested_by FROM runs WHERE id = :id"
        if object_type == "run"
        else "SELECT created_by FROM sources WHERE id = :id OR name = :id"
    )
    with db.transaction() as s:
        owner = s.execute(text(query), {"id": object_id}).scalar()
    if owner is None:
        raise NotFound(f"no {object_type} {clean(object_id)!r}")
    return str(owner)


def shared_with(db: Database, *, object_type: str, object_id: str) -> frozenset[str]:
    """Usernames the object is shared with."""
    with db.transaction() as s:
        rows = s.scalars(
            select(ShareRow.username).where(
                ShareRow.object_type == object_type, ShareRow.object_id == object_id
            )
        )
        return frozenset(rows)


def shared_ids(db: Database, *, object_type: str, username: str) -> frozenset[str]:
    """Ids of the objects of a type shared with the user (for filtering lists)."""
    with db.transaction() as s:
        rows = s.scalars(
            select(ShareRow.object_id).where(
                ShareRow.object_type == object_type, ShareRow.username == username
            )
        )
        return frozenset(rows)
