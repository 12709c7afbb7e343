"""The error answers the routes document: one body shape, the reasons by status."""

from typing import Any

from lockflow.gateway.schemas import ErrorBody

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody},
    401: {"model": ErrorBody, "description": "missing, invalid or revoked access token"},
    403: {"model": ErrorBody, "description": "the caller's roles may not do this"},
    404: {"model": ErrorBody, "description": "no such object, or not the caller's to see"},
    409: {"model": ErrorBody},
    413: {"model": ErrorBody},
    422: {"model": ErrorBody},
    429: {"model": ErrorBody, "description": "rate limit reached; see Retry-After"},
}
# Routes whose work another service does (request/reply): it may be unreachable or not answer in time.
ASKS: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "the service doing this work could not be asked; try again"},
    504: {"model": ErrorBody, "description": "the service doing this work did not answer in time"},
}
# Any route may answer these: a body that is not parseable (400), over the body limit (413), a query
# parameter given twice (422), or the database away for a moment (503).
EVERY_ROUTE: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "the request body could not be parsed"},
    413: {"model": ErrorBody, "description": "the request body is over the limit"},
    422: {"model": ErrorBody, "description": "a parameter is not valid, or a query parameter was repeated"},
    503: {"model": ErrorBody, "description": "the database is not answering; try again after Retry-After"},
}
