"""JSON Schema of the wire format, generated from the models.

The committed copies under ``schema/`` are checked by a test; regenerate them with
``python -m voxflow.protocol.schema schema/`` after changing a model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from voxflow.protocol.actions import Action
from voxflow.protocol.events import Event

SCHEMA_FILES = ("events.schema.json", "actions.schema.json")


def event_schema() -> dict[str, Any]:
    """JSON Schema of one event (voxflow → assistant)."""
    schema = TypeAdapter(Event).json_schema(mode="serialization")
    schema["title"] = "AI Flow event"
    return schema


def action_schema() -> dict[str, Any]:
    """JSON Schema of an assistant response body: one action or an array of actions."""
    single = TypeAdapter(Action).json_schema(mode="validation")
    defs = single.pop("$defs", {})
    return {
        "title": "AI Flow actions",
        "$defs": defs,
        "anyOf": [single, {"type": "array", "items": single}],
    }


def render() -> dict[str, str]:
    """File name → text of every committed schema file."""
    schemas = {"events.schema.json": event_schema(), "actions.schema.json": action_schema()}
    return {name: json.dumps(s, indent=2, sort_keys=True) + "\n" for name, s in schemas.items()}


def write(directory: Path) -> list[Path]:
    """Write the schema files into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - developer convenience
    for written_path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "schema")):
        print(written_path)
