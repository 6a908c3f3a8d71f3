"""Fuzz the SDP parser and offer/answer: only SdpError; serializing is a fixed point."""

import atheris  # type: ignore[import-untyped]  # ships no type information

with atheris.instrument_imports(include=["voxflow"]):
    from checks import check_sdp as check

from harness import main

if __name__ == "__main__":
    main(check)
