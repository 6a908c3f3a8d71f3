"""Fuzz the AI Flow action and event parsers: only ProtocolError; wire form round-trips."""

import atheris  # type: ignore[import-untyped]  # ships no type information

with atheris.instrument_imports(include=["voxflow"]):
    from checks import check_actions as check

from harness import main

if __name__ == "__main__":
    main(check)
