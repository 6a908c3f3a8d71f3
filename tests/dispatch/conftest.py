from collections.abc import Iterator

import pytest
from assistant_peers import WebhookServer, running_webhook_server


@pytest.fixture(scope="module")
def webhook_server() -> Iterator[WebhookServer]:
    with running_webhook_server() as server:
        yield server
