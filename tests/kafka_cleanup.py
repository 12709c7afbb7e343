"""Removes the topics that tests created in the shared broker."""

import asyncio
import sys
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient

BATCH = 200


async def _delete(bootstrap: str, prefixes: tuple[str, ...]) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="lockflow-tests-cleanup")
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        for start in range(0, len(doomed), BATCH):
            await admin.delete_topics(doomed[start : start + BATCH], timeout_ms=30_000)
        return len(doomed)
    finally:
        await admin.close()


def delete_topics_with_prefixes(bootstrap: str, prefixes: Iterable[str]) -> None:
    """Delete every topic whose name starts with one of `prefixes` followed by a dot.

    A failure is reported, not raised: the tests have already given their verdict."""
    wanted = tuple(f"{prefix}." for prefix in prefixes)
    try:
        asyncio.run(asyncio.wait_for(_delete(bootstrap, wanted), timeout=120))
    except Exception as exc:  # the broker may be gone after a failed run; say so and move on
        print(f"\nnote: could not delete the tests' topics on {bootstrap}: {exc!r}", file=sys.stderr)
