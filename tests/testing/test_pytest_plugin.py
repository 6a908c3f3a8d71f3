"""The plugin is found through its entry point; ``--voxflow-line`` picks the line."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SUITE = '''
from voxflow.sdk import Assistant, hangup, speak

bye = Assistant(on_session_start=lambda event: [speak("Bye."), hangup()])


async def test_line(voxflow_call):
    async with voxflow_call(bye) as call:
        assert await call.expect_speak(contains="bye") == "Bye."
        await call.expect_hangup()
    print("LINE", call.line)
'''


def test_the_fixture_comes_from_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bye=SUITE)
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    result = pytester.runpytest_subprocess("--voxflow-line=sip", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*LINE sip*"])  # the option, not the default (sim), decided
