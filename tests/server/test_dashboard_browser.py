"""The dashboard in a real headless Chromium (Debian's ``chromium``), driven over the Chrome
DevTools protocol: start a simulated call, click keypad 2, see the key press and the transfer in
the timeline, and take a screenshot of it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import itertools
import json
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image

from voxflow.server.admin import AdminServer
from voxflow.server.app import VoxflowApp

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900", "--remote-debugging-port=0",
]
SUPPORT = "+49211100201"


class DevTools:
    """A minimal Chrome DevTools protocol client for one page target."""

    def __init__(self, socket: Any) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        await self._socket.send(json.dumps({"id": message_id, "method": method,
                                            "params": params}))
        while True:  # events (no "id") arrive in between; nothing here needs them
            reply = json.loads(await self._socket.recv())
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        reply = await self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                                awaitPromise=True)
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    async def wait_until(self, expression: str, what: str, timeout_s: float = 20.0) -> Any:
        """Poll a page expression until it is truthy."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                timeline = await self.evaluate(
                    "document.querySelector('#timeline tbody').innerText")
                raise AssertionError(f"page never showed {what}; timeline:\n{timeline}")
            await asyncio.sleep(0.1)

    async def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the middle of the element."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            await self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                            clickCount=1)


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    """``async with browser(url) as page`` → :class:`DevTools` on a fresh headless Chromium."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is required (scripts/dev.sh installs it)"
    profile = tmp_path / "chromium-profile"
    log = (tmp_path / "chromium.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank",
        stdout=log, stderr=log,
    )
    port_file = profile / "DevToolsActivePort"

    @contextlib.asynccontextmanager
    async def open_page(url: str) -> AsyncIterator[DevTools]:
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip():
                break
            assert process.returncode is None, (tmp_path / "chromium.log").read_text()
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        async with httpx.AsyncClient() as client:
            targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(t for t in targets if t["type"] == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=None) as socket:
            tools = DevTools(socket)
            await tools.call("Page.enable")
            await tools.call("Page.navigate", url=url)
            yield tools

    try:
        yield open_page
    finally:
        process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10)
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()


async def test_dashboard_keypad_two_shows_key_press_and_transfer(
    make_engine: Callable[..., VoxflowApp], flask_ivr: Any, browser: Callable[[str], Any],
    tmp_path: Path,
) -> None:
    app = make_engine(webhook=flask_ivr.url)
    async with app:
        admin = AdminServer(app, "127.0.0.1", 0)
        await admin.start()
        try:
            async with browser(f"{admin.url}/") as page:
                await page.wait_until(
                    "document.readyState === 'complete' && "
                    "document.getElementById('health').textContent.startsWith('ok')",
                    "the dashboard loaded and the engine healthy")
                await page.click("#start-sim")
                await page.wait_until(
                    "document.querySelectorAll('#live-calls li[data-call-id]').length === 1 && "
                    "!document.querySelector('#keypad .key[data-key=\"2\"]').disabled",
                    "a live simulated call with the keypad enabled")
                assert len(app.simulated) == 1
                # The menu prompt answers session_start; press 2 once it is in the timeline.
                await page.wait_until(
                    "!!document.querySelector('#timeline tr[data-kind=action][data-type=speak]')",
                    "the menu prompt")
                await page.click('#keypad .key[data-key="2"]')
                rows = await page.wait_until(
                    """(() => {
                      const rows = [...document.querySelectorAll('#timeline tbody tr')];
                      const text = (kind, type) => rows
                        .filter(r => r.dataset.kind === kind && r.dataset.type === type)
                        .map(r => r.innerText);
                      const dtmf = text('event', 'dtmf_received');
                      const transfer = text('action', 'transfer');
                      return dtmf.some(t => t.includes('digit=2')) &&
                             transfer.some(t => t.includes(SUPPORT)) &&
                             rows.map(r => r.innerText);
                    })()""".replace("SUPPORT", json.dumps(SUPPORT)),
                    f"dtmf_received digit=2 and transfer to {SUPPORT}")
                # The key press event shows how long the assistant took to answer it.
                dtmf_row = next(r for r in rows if "dtmf_received" in r)
                assert " ms" in dtmf_row and "ok" in dtmf_row
                shot = await page.call("Page.captureScreenshot", format="png")
        finally:
            await admin.stop()

    png = base64.b64decode(shot["data"])
    (tmp_path / "dashboard.png").write_bytes(png)
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.width == 1280 and image.height > 500  # the window minus browser chrome
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, panels, buttons: not a blank page
    most_common_share = max(count for count, _ in colours) / (image.width * image.height)
    assert most_common_share < 0.9
