"""Keeps one StreamProcessor thread per registered, unstopped stream, and hands each its newest policy."""

from __future__ import annotations

import threading

from lockflow.common.artifacts import ArtifactStore
from lockflow.common.logging import get_logger
from lockflow.sources.kafka import opened_registry_auth
from lockflow.sources.netguard import NetPolicy
from lockflow.sources.record_formats import record_format
from lockflow.sources.secrets import SecretBox
from lockflow.streams.processor import PolicyBox, StreamProcessor, Tuning
from lockflow.streams.registry import Entry

log = get_logger(__name__)


class Supervisor:
    """Starts, restarts and stops the processors as the registry changes."""

    def __init__(
        self,
        *,
        artifacts: ArtifactStore | None,
        events_topic: str,
        events_bootstrap: str,
        tuning: Tuning,
        worker_id: str,
        secrets: SecretBox,
        net_policy: NetPolicy,
    ) -> None:
        self.secrets = secrets  # opens each stream's sealed security settings
        self.net_policy = net_policy  # where a stream's schema registry may be
        self.artifacts = artifacts
        self.events_topic = events_topic
        self.events_bootstrap = events_bootstrap
        self.tuning = tuning
        self.worker_id = worker_id
        self.running: dict[str, StreamProcessor] = {}
        self.boxes: dict[str, PolicyBox] = {}
        self.lock = threading.Lock()

    def on_change(self, stream_id: str, entry: Entry) -> None:
        """Bring the stream's processor in line with its registry entry."""
        with self.lock:
            box = self.boxes.setdefault(stream_id, PolicyBox())
            for policy in entry.policies.values():
                box.offer(policy)
            current = self.running.get(stream_id)
            if entry.stopped or entry.spec is None:
                if current is not None:
                    log.info("stream_stopping", stream_id=stream_id)
                    current.stop()
                    current.join(30)
                    del self.running[stream_id]
                return
            if current is not None and current.is_alive() and current.spec == entry.spec:
                return
            if current is not None:  # a new spec (or a crashed thread): start over on it
                current.stop()
                current.join(30)
            processor = StreamProcessor(
                spec=entry.spec,
                policies=box,
                box=self.secrets,
                artifacts=self.artifacts,
                events_topic=self.events_topic,
                events_bootstrap=self.events_bootstrap,
                tuning=self.tuning,
                worker_id=self.worker_id,
                records=record_format(
                    entry.spec.format,
                    schema_registry_url=entry.spec.schema_registry_url,
                    policy=self.net_policy,
                    registry_auth=opened_registry_auth(
                        entry.spec.schema_registry_username, entry.spec.security, self.secrets
                    ),
                ),
            )
            processor.start()
            self.running[stream_id] = processor
            log.info("stream_started", stream_id=stream_id, topic=entry.spec.topic)

    def stop_all(self) -> None:
        """Stop every processor (each commits what it has and leaves its lease)."""
        with self.lock:
            for processor in self.running.values():
                processor.stop()
            for processor in self.running.values():
                processor.join(30)
            self.running.clear()

    def revive(self, entries: dict[str, Entry]) -> None:
        """Start again any processor whose thread ended on an error (the broker away too long, a bug)."""
        for stream_id, processor in list(self.running.items()):
            if not processor.is_alive() and not processor.stopping.is_set():
                log.warning("stream_revived", stream_id=stream_id, error=repr(processor.error))
                with self.lock:
                    self.running.pop(stream_id, None)
                entry = entries.get(stream_id)
                if entry is not None:
                    self.on_change(stream_id, entry)
