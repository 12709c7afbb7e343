"""Export the JSON Schema of every event (and an AsyncAPI document of the topics) to schemas/.

Run `python -m lockflow.common.schema_export [DIR]`; tests/unit/test_schemas.py fails when the
committed files differ from what the models produce.
"""

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from lockflow.common.events import EVENT_TYPES, REPLY_TYPES, REQUEST_TYPES
from lockflow.common.pipeline import STAGES


def event_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, one per event type and version."""
    out: dict[str, dict[str, Any]] = {}
    for event_type in EVENT_TYPES:
        name = event_type.model_fields["type"].default
        version = event_type.model_fields["version"].default
        schema = event_type.model_json_schema()
        schema["$id"] = f"https://lockflow.dev/schemas/events/{name}.v{version}.json"
        out[f"events/{name}.v{version}.json"] = schema
    return out


def asyncapi() -> dict[str, Any]:
    """A small AsyncAPI 3 document: the topics and which messages travel on each."""
    facts = [t for t in EVENT_TYPES if not (t.is_command or t.is_request or t.is_reply)]
    channels: dict[str, Any] = {
        "events": {
            "address": "lockflow.events",
            "messages": {t.__name__: {"$ref": f"#/components/messages/{t.__name__}"} for t in facts},
        },
    }
    for stage in STAGES:
        commands = [t for t in EVENT_TYPES if t.is_command and t.stage == stage]
        channels[f"commands-{stage}"] = {
            "address": f"lockflow.commands.{stage}",
            "messages": {t.__name__: {"$ref": f"#/components/messages/{t.__name__}"} for t in commands},
        }
    for service in sorted({t.service for t in REQUEST_TYPES}):
        asked = [t for t in REQUEST_TYPES if t.service == service]
        channels[f"requests-{service}"] = {
            "address": f"lockflow.requests.{service}",
            "messages": {t.__name__: {"$ref": f"#/components/messages/{t.__name__}"} for t in asked},
        }
    channels["replies"] = {
        "address": "lockflow.replies",
        "messages": {t.__name__: {"$ref": f"#/components/messages/{t.__name__}"} for t in REPLY_TYPES},
    }
    messages = {
        t.__name__: {
            "name": t.__name__,
            "contentType": "application/json",
            "payload": {"$ref": f"./events/{t.__name__}.v1.json"},
        }
        for t in EVENT_TYPES
    }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "lockflow events", "version": "1"},
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"messages": messages},
    }


def render_all() -> dict[str, str]:
    """Every file's exact text."""
    files = {
        name: json.dumps(schema, indent=2, sort_keys=True) + "\n" for name, schema in event_schemas().items()
    }
    files["asyncapi.yaml"] = yaml.safe_dump(asyncapi(), sort_keys=True)
    return files


def write(target: Path) -> None:
    """Write the schemas under target, removing stale event schemas."""
    files = render_all()
    (target / "events").mkdir(parents=True, exist_ok=True)
    for stale in (target / "events").glob("*.json"):
        if f"events/{stale.name}" not in files:
            stale.unlink()
    for name, text in files.items():
        (target / name).write_text(text)


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("schemas"))
