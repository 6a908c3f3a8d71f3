"""Hands one check to atheris (libFuzzer); every ``fuzz_*.py`` script ends here."""

import sys
from collections.abc import Callable

import atheris  # type: ignore[import-untyped]  # ships no type information


def main(check: Callable[[bytes], None]) -> None:
    """Fuzz ``check`` with libFuzzer's command line (corpus dirs, -max_total_time=N ...)."""
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()
