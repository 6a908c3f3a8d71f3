"""Thin asyncio UDP adapter around the sans-IO SIP :class:`~voxflow.sip.useragent.UserAgent`.

It only moves bytes, runs the agent's single timer and hands events to a callback; every SIP
decision lives in the agent. Time is the event loop's monotonic clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import TypeVar, cast

from voxflow.sip.config import SipConfig
from voxflow.sip.events import Event
from voxflow.sip.useragent import UserAgent

logger = logging.getLogger("voxflow.lines.sip")
T = TypeVar("T")


class SipTransport(asyncio.DatagramProtocol):
    """Datagram endpoint + timer loop for one :class:`UserAgent`."""

    def __init__(self, agent: UserAgent, on_event: Callable[[Event], None]) -> None:
        self.agent = agent
        self._on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.agent.receive_datagram(data, (addr[0], addr[1]), self._loop.time())
        self._pump()

    def error_received(self, exc: Exception) -> None:
        # ICMP port-unreachable from a vanished peer: the transactions' timers handle it.
        logger.debug("UDP error on the SIP socket: %s", exc)

    def command(self, action: Callable[[UserAgent, float], T]) -> T:
        """Run a command on the agent (``lambda ua, now: ua.answer(...)``) and flush its output."""
        try:
            return action(self.agent, self._loop.time())
        finally:
            self._pump()

    def close(self) -> None:
        """Stop the timer and close the socket."""
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._transport.close()

    def _pump(self) -> None:
        now = self._loop.time()
        if self._transport is not None:
            for data, addr in self.agent.datagrams_to_send(now):
                self._transport.sendto(data, addr)
        while (event := self.agent.next_event()) is not None:
            try:
                self._on_event(event)
            except Exception:  # a failing consumer must not stop signalling for other calls
                logger.exception("SIP event handler failed on %r", event)
        self._schedule_timer()

    def _schedule_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.agent.get_timer()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.agent.handle_timer(self._loop.time())
        self._pump()


async def open_sip_transport(config: SipConfig, on_event: Callable[[Event], None]) -> SipTransport:
    """Bind ``config.listen_address:listen_port`` (0 picks a free port) and start the agent."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=(config.listen_address, config.listen_port)
    )
    if config.listen_port == 0:
        config = dataclasses.replace(config, listen_port=transport.get_extra_info("sockname")[1])
    protocol = SipTransport(UserAgent(config), on_event)
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    return protocol
