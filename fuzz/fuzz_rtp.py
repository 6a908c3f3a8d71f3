"""Fuzz RTP packets, RFC 4733 telephone-event payloads, RFC 2198 RED and the receiver."""

import atheris  # type: ignore[import-untyped]  # ships no type information

with atheris.instrument_imports(include=["voxflow"]):
    from checks import check_rtp as check

from harness import main

if __name__ == "__main__":
    main(check)
