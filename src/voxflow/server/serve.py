"""``voxflow serve``: run the engine until SIGINT/SIGTERM, then shut down cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal

from voxflow.server.admin import AdminServer
from voxflow.server.app import VoxflowApp
from voxflow.server.config import ServeSettings

log = logging.getLogger("voxflow.serve")


async def serve(settings: ServeSettings) -> None:
    """Start the engine, log one ready line, run until a stop signal, then stop everything."""
    app = VoxflowApp(settings, flow_id=settings.flow_id, phone_number=settings.phone_number)
    admin_address = settings.admin_address()
    admin = (None if admin_address is None else
             AdminServer(app, *admin_address, token=settings.admin_token))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await app.start()
        if admin is not None:
            await admin.start()
            log.info("voxflow admin: dashboard and API on %s/", admin.url)
        if app.stream_server is not None:
            log.info("voxflow media streams: %s", app.stream_server.url)
        log.info("%s", app.ready_line)
        await stop.wait()
        stop.clear()
        app.refuse_new_calls()
        if app.calls and settings.shutdown_grace > 0:
            log.info("voxflow stopping: refusing new calls; %d live call(s) may finish within "
                     "%g s", len(app.calls), settings.shutdown_grace)
            # A second signal ends the grace period early.
            again = asyncio.create_task(stop.wait())
            idle = asyncio.create_task(app.wait_calls_ended(settings.shutdown_grace))
            await asyncio.wait({again, idle}, return_when=asyncio.FIRST_COMPLETED)
            again.cancel()
            idle.cancel()
        log.info("voxflow stopping: hanging up %d live call(s)", len(app.calls))
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if admin is not None:
            await admin.stop()
        await app.stop()
    log.info("voxflow stopped")


def configure_logging(level: str = "INFO") -> None:
    """One line per record on stderr, with the logger name (it says which part spoke)."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The ready and stop lines are what operators and scripts wait for: shown at any level.
    log.setLevel(logging.INFO)
