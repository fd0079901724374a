"""The ``squall`` command line.

Every server command prints its URL, exits 2 with a guiding message when its port is taken,
and stops cleanly on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from mocks.server import PortInUse

app = typer.Typer(
    name="squall",
    help="Squall: a fault-injection test platform for broker-connected trading systems.",
    no_args_is_help=True,
    add_completion=False,
)
mock_app = typer.Typer(help="Run a simulated broker, feed or network part on its own.")
app.add_typer(mock_app, name="mock")

err = Console(stderr=True)


class Profile(StrEnum):
    real = "real"
    paper = "paper"


@mock_app.command("broker")
def mock_broker(
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to bind; loopback by default.")] = (
        "127.0.0.1"
    ),
    profile: Annotated[Profile, typer.Option(help="KIS real or paper (VTS) rules.")] = (
        Profile.real
    ),
    seed: Annotated[int, typer.Option(help="Seed for prices, tokens and faults.")] = 0,
    rps: Annotated[
        int | None, typer.Option(help="Per-second budget (default: real 18, paper 1).")
    ] = None,
    gateway_status: Annotated[
        int, typer.Option(help="HTTP status of gateway errors (EGW…); KIS clients see 500.")
    ] = 500,
    token_interval: Annotated[
        float, typer.Option(help="Seconds between token issuances (EGW00133).")
    ] = 60.0,
) -> None:
    """Serve a simulated KIS Open API until Ctrl-C.

    The control plane is under /_squall on the same port. It answers loopback clients only,
    unless SQUALL_CONTROL_TOKEN is set: then every caller must send that token in the
    x-squall-control-token header.
    """
    from mocks.broker import BrokerConfig, create_app
    from mocks.server import serve

    try:
        config = BrokerConfig(
            profile=profile.value,
            seed=seed,
            requests_per_second=rps,
            gateway_error_status=gateway_status,
            token_interval_s=token_interval,
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] invalid broker settings: {exc}")
        raise typer.Exit(2) from None
    token = os.environ.get("SQUALL_CONTROL_TOKEN") or None
    broker = create_app(config, control_token=token)

    async def main() -> None:
        async with serve(broker, host, port) as server:
            err.print(
                f"Squall mock KIS broker ({profile.value} profile, seed {seed}, "
                f"{config.budget} req/s) — control plane at {server.url}/_squall"
                + (" (control token required)" if token else " (loopback only)")
                + "; Ctrl-C stops it"
            )
            print(server.url, flush=True)
            await asyncio.Event().wait()

    _serve_until_interrupted(main())


def _serve_until_interrupted(main: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(main)
    except PortInUse as exc:
        err.print(f"[red]error:[/red] {exc.strerror}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("stopped")


@app.command()
def demo(
    requests: Annotated[
        int, typer.Option(min=1, help="Concurrent quote requests in the storm.")
    ] = 200,
    seed: Annotated[int, typer.Option(help="Seed for the mock broker.")] = 0,
    real_time: Annotated[
        bool, typer.Option("--real-time", help="Run on the wall clock (takes over a minute).")
    ] = False,
) -> None:
    """Expired-token + EGW00133 storm against the system's KIS client, on virtual time."""
    from harness.demo import run_demo

    ok = run_demo(requests=requests, seed=seed, clock="real" if real_time else "virtual")
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    app()
