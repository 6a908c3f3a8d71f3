"""An ASGI app served by uvicorn inside the engine's own event loop.

The admin API and the media-stream line both run this way: same loop as the calls (handlers
touch live state directly), no signal handling of uvicorn's own (``voxflow serve`` owns SIGINT
and SIGTERM), and a port that cannot be bound is a ``ConfigError`` naming the setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

import uvicorn

from voxflow.errors import ConfigError, VoxflowError

_START_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 5.0


class _QuietSignalsServer(uvicorn.Server):
    """uvicorn without its own signal handling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield

    def install_signal_handlers(self) -> None:
        """Older uvicorn releases install their handlers here instead."""


class EmbeddedServer:
    """``asgi`` on ``host:port`` (0 = any free port); ``setting`` names it in errors."""

    def __init__(
        self, asgi: Any, host: str, port: int, *, setting: str, label: str,
        scheme: str = "http", path: str = "",
    ) -> None:
        self._asgi = asgi
        self._host = host
        self._port = port
        self._setting = setting
        self._label = label
        self._scheme = scheme
        self._path = path
        self._server: _QuietSignalsServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.address: tuple[str, int] | None = None

    @property
    def url(self) -> str:
        """Where it is reached, e.g. ``http://127.0.0.1:8089`` or ``ws://…/media-stream``."""
        assert self.address is not None, "start() first"
        host, port = self.address
        return f"{self._scheme}://{f'[{host}]' if ':' in host else host}:{port}{self._path}"

    async def start(self) -> None:
        """Bind (errors such as a port in use surface here) and start serving."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"{self._setting} {self._host}:{self._port}: cannot listen "
                              f"({exc.strerror})") from None
        self.address = sock.getsockname()[:2]
        server = _QuietSignalsServer(uvicorn.Config(self._asgi, log_level="warning",
                                                    lifespan="off", access_log=False))
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]),
                                         name=f"voxflow-{self._setting}")
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise VoxflowError(f"{self._label} stopped while starting")
            if time.monotonic() > deadline:
                raise VoxflowError(f"{self._label} did not start within {_START_TIMEOUT_S:g} s")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop serving; connections still open after a few seconds are cut off."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=_STOP_TIMEOUT_S)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = None
        self._task = None
