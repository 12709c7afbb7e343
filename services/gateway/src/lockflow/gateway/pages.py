"""Every list of the API pages alike: filter by the caller first, then `offset`/`limit`, then the total.

The body stays a JSON array (what clients of `GET /runs`, `/decisions`, `/sources` and `/auth/users`
already read); the number of rows the caller may see in the whole list travels in `X-Total-Count`.
"""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Response

TOTAL_HEADER = "X-Total-Count"
MAX_LIMIT = 1000
# The largest id or cursor a route accepts: a database BIGINT (a bigger one is a 422, never a 500).
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Paging:
    """Which slice of an already authorised list the caller asked for."""

    limit: int
    offset: int

    def of(self, rows: list[Any]) -> list[Any]:
        """The asked slice of a list filtered in memory."""
        return rows[self.offset : self.offset + self.limit]


async def paging(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many rows")] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Skip this many rows first")] = 0,
) -> Paging:
    """The `limit` and `offset` query parameters of a list (async: no thread hop for a lookup)."""
    return Paging(limit=limit, offset=offset)


PagingDep = Annotated[Paging, Depends(paging)]

LISTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"One page of the rows the caller may see; their total number is in {TOTAL_HEADER}",
        "headers": {
            TOTAL_HEADER: {
                "description": "How many rows the caller may see in the whole list (after filtering)",
                "schema": {"type": "integer"},
            }
        },
    }
}


def with_total(response: Response, rows: list[Any], total: int) -> list[Any]:
    """The page as the body, the total in the header."""
    response.headers[TOTAL_HEADER] = str(total)
    return rows
