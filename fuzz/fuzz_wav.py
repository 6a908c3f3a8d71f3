"""Fuzz the WAV decoder: only MediaError; decoded audio re-encodes unchanged."""

import atheris  # type: ignore[import-untyped]  # ships no type information

with atheris.instrument_imports(include=["voxflow"]):
    from checks import check_wav as check

from harness import main

if __name__ == "__main__":
    main(check)
