"""Fixtures for the speech tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from recording_http_server import RecordingServer, serving_recorder


@pytest.fixture
async def recording_server() -> AsyncIterator[RecordingServer]:
    async with serving_recorder() as recorder:
        yield recorder
