"""ASGI helpers shared by the services' body-size limits: read a body within a limit, hand it on, refuse."""

import json

from starlette.types import Message, Receive, Send


async def read_at_most(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it passes the limit (or the client went away)."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the already read body to the app once, then passes through (disconnects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def refuse_too_large(send: Send, limit: int, *, detail: str | None = None) -> None:
    """Answer 413 with the limit named (and close: the rest of the body is not read)."""
    text = detail or f"the request body exceeds the {limit}-byte limit"
    body = json.dumps({"detail": text}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
