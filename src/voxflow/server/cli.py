"""The ``voxflow`` command line."""

from __future__ import annotations

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


@app.command()
def demo(
    assistant: str = typer.Option(SEED_ASSISTANT, help="The assistant, as module:attribute."),
    keys: str = typer.Option("91", help="Keys the simulated caller presses, in order."),
) -> None:
    """Run a scripted call against an assistant and print the conversation."""
    from voxflow.server.demo import run_demo

    console = Console()
    try:
        loaded = load_assistant(assistant)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    try:
        run_demo(loaded, keys, console)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
