"""The stream worker's commands: each is written to the registry, which every worker follows."""

from __future__ import annotations

import anyio

from lockflow.common.bus.port import DeliveredEvent
from lockflow.common.events import ApplyStreamPolicy, StartStream, StopStream
from lockflow.common.logging import get_logger
from lockflow.streams.registry import RegistryWriter

log = get_logger(__name__)

STAGE = "streams"
COMMANDS = ("StartStream", "StopStream", "ApplyStreamPolicy")


def commands_topic(prefix: str) -> str:
    """The topic the stream commands arrive on."""
    return f"{prefix}.commands.{STAGE}"


async def handle_command(delivered: DeliveredEvent, *, writer: RegistryWriter) -> None:
    """Record one command in the registry (idempotent: the same command twice writes the same entry)."""
    command = delivered.event
    if isinstance(command, StartStream):
        await anyio.to_thread.run_sync(writer.start, command.payload.spec)
    elif isinstance(command, StopStream):
        await anyio.to_thread.run_sync(writer.stop, command.payload.stream_id, command.payload.reason)
    elif isinstance(command, ApplyStreamPolicy):
        await anyio.to_thread.run_sync(writer.policy, command.payload.policy)
    else:
        log.warning("command_not_handled", stage=STAGE, event_type=command.type)
        return
    log.info("stream_command_recorded", command=command.type, stream_id=command.run_id)
