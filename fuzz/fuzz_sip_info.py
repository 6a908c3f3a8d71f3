"""Fuzz the SIP INFO DTMF body parser: only DtmfParseError, keys are DTMF keys."""

import atheris  # type: ignore[import-untyped]  # ships no type information

with atheris.instrument_imports(include=["voxflow"]):
    from checks import check_sip_info as check

from harness import main

if __name__ == "__main__":
    main(check)
