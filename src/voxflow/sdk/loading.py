"""Find an assistant by name: ``"examples.ivr_menu_sdk:assistant"`` (module, colon, attribute).

Like ``uvicorn module:app``, the current directory is importable, so an assistant in the
project one runs the command from is found without installing it.
"""

from __future__ import annotations

import importlib
import os
import sys

from voxflow.errors import ConfigError
from voxflow.sdk.assistant import Assistant


def load_assistant(spec: str) -> Assistant:
    """Import ``module:attribute`` and return it; :class:`ConfigError` says what was wrong."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"assistant {spec!r}: expected 'module:attribute', "
                          "e.g. 'examples.ivr_menu_sdk:assistant'")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"assistant {spec!r}: cannot import {module_name!r} ({exc}); run from "
                          "the directory that contains it or install it") from None
    target = getattr(module, attribute, None)
    if not isinstance(target, Assistant):
        found = "nothing" if target is None else type(target).__name__
        raise ConfigError(f"assistant {spec!r}: {module_name}.{attribute} is {found}, "
                          "not a voxflow.sdk.Assistant")
    return target
