"""The complete example in docs/testing.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def doc_example() -> dict[str, Any]:
    code = re.search(r"```python\n(# tests/test_ivr.py.*?)```", DOC.read_text(), re.S)
    assert code is not None, "docs/testing.md lost its IVR example"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)
    return namespace


async def test_the_documented_ivr_tests_pass(voxflow_call: Any) -> None:
    example = doc_example()
    await example["test_menu_transfers"](voxflow_call, "1", "+49211100200")
    await example["test_menu_transfers"](voxflow_call, "2", "+49211100201")
    await example["test_other_keys_repeat_the_menu"](voxflow_call)
