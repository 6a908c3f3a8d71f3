"""Importing voxflow and its SDK has no side effects and does not need the optional extras."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import logging, sys
sys.modules["flask"] = None  # as if the flask extra were not installed
handlers_before = list(logging.getLogger().handlers)
import voxflow
import voxflow.sdk
from voxflow.sdk import Assistant, Menu, transfer
assistant = Assistant(on_dtmf_received=Menu("Press 1.", {"1": transfer("+49211100200")}))
loaded = sorted(m for m in ("starlette", "uvicorn", "werkzeug") if m in sys.modules)
assert logging.getLogger().handlers == handlers_before, "logging was configured"
try:
    assistant.flask_app()
except ImportError as exc:
    print("flask-missing:", type(exc).__name__)
print("heavy:", loaded)
"""


def test_import_has_no_side_effects_and_flask_is_optional() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "flask-missing: ModuleNotFoundError" in result.stdout
    assert "heavy: []" in result.stdout
