import json
from pathlib import Path

import pytest

from voxflow.protocol import ActionType, EventType
from voxflow.protocol.schema import SCHEMA_FILES, render, write

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_committed_schema_matches_the_models(name: str) -> None:
    committed = (SCHEMA_DIR / name).read_text(encoding="utf-8")
    assert committed == render()[name], (
        f"schema/{name} is out of date: run `python -m voxflow.protocol.schema schema`"
    )


def test_schema_covers_every_event_and_action_type() -> None:
    events = json.loads(render()["events.schema.json"])
    actions = json.loads(render()["actions.schema.json"])
    event_types = {d["properties"]["type"]["const"] for d in events["$defs"].values()
                   if "type" in d.get("properties", {})}
    action_types = {d["properties"]["type"]["const"] for d in actions["$defs"].values()
                    if "type" in d.get("properties", {})}
    assert event_types == {t.value for t in EventType}
    assert action_types == {t.value for t in ActionType}


def test_write_creates_the_files(tmp_path: Path) -> None:
    written = write(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(SCHEMA_FILES)
    assert all(json.loads(p.read_text())["title"] for p in written)
