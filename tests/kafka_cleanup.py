"""Removes the topics that tests created in the shared broker."""

import asyncio
import sys
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient

BATCH = 200


async def _delete(bootstrap: str, prefixes: tuple[str, ...], *, wait: bool = False) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="lockflow-tests-cleanup")
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        for start in range(0, len(doomed), BATCH):
            await admin.delete_topics(doomed[start : start + BATCH], timeout_ms=30_000)
        # Deletion finishes in the background: a topic made again under the same name meanwhile may
        # find its partitions without a leader for a while.
        while wait and any(t.startswith(prefixes) for t in await admin.list_topics()):
            await asyncio.sleep(0.5)
        return len(doomed)
    finally:
        await admin.close()


def delete_topics_with_prefixes(bootstrap: str, prefixes: Iterable[str], *, wait: bool = False) -> None:
    """Delete every topic whose name starts with one of `prefixes` followed by a dot (with `wait`,
    return once the broker lists none of them).

    A failure is reported, not raised: the tests have already given their verdict."""
    wanted = tuple(f"{prefix}." for prefix in prefixes)
    try:
        asyncio.run(asyncio.wait_for(_delete(bootstrap, wanted, wait=wait), timeout=120))
    except Exception as exc:  # the broker may be gone after a failed run; say so and move on
        print(f"\nnote: could not delete the tests' topics on {bootstrap}: {exc!r}", file=sys.stderr)
