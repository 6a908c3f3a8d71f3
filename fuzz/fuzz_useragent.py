"""Fuzz the whole SIP user agent: datagrams in, nothing escapes, state stays bounded."""

import atheris  # type: ignore[import-untyped]  # ships no type information

with atheris.instrument_imports(include=["voxflow"]):
    from checks import check_useragent as check

from harness import main

if __name__ == "__main__":
    main(check)
