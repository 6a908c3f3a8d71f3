"""The ``voxflow`` command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from voxflow.errors import ConfigError
from voxflow.sdk import load_assistant

app = typer.Typer(help="voxflow: a self-hosted voice-assistant call engine.", no_args_is_help=True,
                  add_completion=False)

SEED_ASSISTANT = "examples.ivr_menu_sdk:assistant"


@app.callback()
def _commands() -> None:
    """voxflow: a self-hosted voice-assistant call engine."""


_WAV = typer.Option(None, "--wav", help="Where to write the call's audio (stereo WAV).")


@app.command()
def demo(
    assistant: str = typer.Option(SEED_ASSISTANT, help="The assistant, as module:attribute."),
    keys: str = typer.Option("91", help="Keys the simulated caller presses, in order."),
    wav: Path | None = _WAV,
) -> None:
    """Call an assistant over real SIP/RTP on 127.0.0.1 and print the conversation."""
    from voxflow.server.demo import run_demo

    console = Console()
    try:
        loaded = load_assistant(assistant)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    try:
        run_demo(loaded, keys, console, wav)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


_CONFIG = typer.Option(None, "--config", help="TOML settings file.")


@app.command()
def serve(
    config: Path | None = _CONFIG,
    webhook: str | None = typer.Option(None, help="The assistant's webhook URL."),
    assistant: str | None = typer.Option(None, help="An in-process assistant, module:attribute."),
    websocket: str | None = typer.Option(None, help="The assistant's WebSocket URL."),
    sip_listen: str | None = typer.Option(None, help="SIP listen address, HOST:PORT."),
    public_address: str | None = typer.Option(None, help="Address peers reach us at (NAT)."),
    rtp_ports: str | None = typer.Option(None, help="RTP port range, A-B."),
    account_id: str | None = typer.Option(None, help="account_id in every session object."),
    records: str | None = typer.Option(None, help="SQLite file for call records."),
    api_token: str | None = typer.Option(None, help="Sent as X-API-TOKEN to the assistant."),
    signing_secret: str | None = typer.Option(None, help="Signs webhook requests."),
    webhook_timeout: float | None = typer.Option(None, help="Seconds the assistant may take."),
    transfer_domain: str | None = typer.Option(None, help="HOST[:PORT] transfers are sent to."),
    admin_listen: str | None = typer.Option(
        None, help="Admin API and dashboard address, HOST:PORT (off unless set)."),
    admin_token: str | None = typer.Option(None, help="Bearer token the admin API requires."),
    stream_listen: str | None = typer.Option(
        None, help="Media-stream (WebSocket) call address, HOST:PORT (off unless set)."),
    stream_token: str | None = typer.Option(
        None, help="Token media-stream bridges must present (X-API-TOKEN or 'token')."),
    log_level: str = typer.Option("INFO", help="Logging level."),
) -> None:
    """Answer phone calls and connect them to an AI Flow assistant until SIGINT/SIGTERM."""
    import asyncio

    from voxflow.server.config import load_settings
    from voxflow.server.serve import configure_logging
    from voxflow.server.serve import serve as run_engine

    flags = {
        "webhook": webhook, "assistant": assistant, "websocket": websocket,
        "sip_listen": sip_listen, "public_address": public_address, "rtp_ports": rtp_ports,
        "account_id": account_id, "records": records, "api_token": api_token,
        "signing_secret": signing_secret, "webhook_timeout": webhook_timeout,
        "transfer_domain": transfer_domain,
        "admin_listen": admin_listen, "admin_token": admin_token,
        "stream_listen": stream_listen, "stream_token": stream_token,
    }
    configure_logging(log_level)
    try:
        settings = load_settings(config, overrides=flags)
        asyncio.run(run_engine(settings))
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


calls_app = typer.Typer(help="Call records: list recent calls or show one call's timeline.",
                        add_completion=False)
app.add_typer(calls_app, name="calls")
_RECORDS = typer.Option(None, "--records", help="SQLite file of call records.")


@calls_app.callback(invoke_without_command=True)
def calls(ctx: typer.Context, records: Path | None = _RECORDS,
          limit: int = typer.Option(50, help="How many recent calls to list.")) -> None:
    """List recent calls, newest first."""
    if ctx.invoked_subcommand is None:
        from voxflow.server.calls_command import list_calls

        raise typer.Exit(list_calls(Console(), records, limit))


@calls_app.command("show")
def calls_show(call_id: str = typer.Argument(..., help="The call (session) id."),
               records: Path | None = _RECORDS) -> None:
    """One call's timeline: every event, action and delivery with timestamps and latencies."""
    from voxflow.server.calls_command import show_call

    raise typer.Exit(show_call(Console(), records, call_id))


@app.command()
def replay(
    call_id: str = typer.Argument(..., help="The recorded call (session) id."),
    webhook: str = typer.Option(..., help="The assistant's webhook URL to replay against."),
    records: Path | None = _RECORDS,
    account_id: str = typer.Option("", help="account_id in the replayed session objects."),
    api_token: str | None = typer.Option(None, help="Sent as X-API-TOKEN to the assistant."),
    signing_secret: str | None = typer.Option(None, help="Signs the replayed requests."),
    timeout: float = typer.Option(5.0, help="Seconds the assistant may take per event."),
) -> None:
    """Replay a recorded call's events against an assistant and diff its actions (exit 1 if
    they differ)."""
    from voxflow.server.replay import run_replay

    console = Console()
    try:
        code = run_replay(console, str(records) if records else None, call_id, webhook,
                          account_id=account_id, api_token=api_token,
                          signing_secret=signing_secret, timeout_s=timeout)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@app.command()
def dial(
    number: str = typer.Argument(..., help="The number (or SIP URI) to call."),
    admin: str = typer.Option("http://127.0.0.1:8089", envvar="VOXFLOW_ADMIN_URL",
                              help="The running engine's admin API (its admin_listen)."),
    token: str = typer.Option(..., envvar="VOXFLOW_ADMIN_TOKEN",
                              help="The engine's admin_token or api_token."),
    flow: str = typer.Option("default", help="The AI flow id the engine answers to."),
    billing_device: str = typer.Option("e0", help="billingDevice sent with the request."),
) -> None:
    """Have a running engine call NUMBER and run its assistant on the call."""
    from voxflow.errors import OutboundCallError
    from voxflow.sdk.outbound import call_sync

    console = Console()
    try:
        placed = call_sync(flow, number, billing_device, token, base_url=admin)
    except (OutboundCallError, ValueError) as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"calling {number}: session {placed.session_id}")


@app.command()
def call(
    uri: str | None = typer.Argument(
        None, help="The SIP URI to dial; without it an engine is started in process."),
    engine: bool = typer.Option(
        False, "--engine", help="Start an engine in process and dial it (the default)."),
    assistant: str = typer.Option(SEED_ASSISTANT,
                                  help="The in-process engine's assistant, module:attribute."),
    method: str = typer.Option("rfc4733", help="DTMF method to start with: rfc4733, info, "
                               "inband (m cycles them)."),
    wav: Path | None = _WAV,
) -> None:
    """An interactive terminal softphone: keys send DTMF, s says a sentence, h hangs up."""
    from typing import cast

    from voxflow.testing.phone_app import METHOD_LABELS, PhoneApp
    from voxflow.testing.softphone import KeyMethod

    console = Console(stderr=True)
    if uri is not None and engine:
        console.print("[red]--engine dials the in-process engine: give no URI with it[/red]")
        raise typer.Exit(2)
    if method not in METHOD_LABELS:
        console.print(f"[red]--method: {method!r} is not rfc4733, info or inband[/red]")
        raise typer.Exit(2)
    loaded = None
    if uri is None:
        try:
            loaded = load_assistant(assistant)
        except ConfigError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    phone = PhoneApp(uri, assistant=loaded, assistant_label=assistant, wav=wav,
                     method=cast(KeyMethod, method))  # checked against the labels above
    phone.run()
    if phone.wav_written is not None:
        Console().print(f"call audio (stereo: caller left, far end right): {phone.wav_written}",
                        soft_wrap=True)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
