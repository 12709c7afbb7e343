"""Shared building blocks: events, bus, pipeline definition, settings, telemetry, storage."""
