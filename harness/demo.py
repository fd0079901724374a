"""The main job, for now: a token storm against the system's KIS client, shown live.

One process, one event loop: the mock broker serves on a loopback port and the system's
client talks to it over real sockets. Five seconds in, the control plane expires every
token while ``requests`` concurrent quote requests are in flight. A naive client would
answer each EGW00123 with a token request and each EGW00133 with another; the system's
client must re-issue once, honour the one-per-minute rule with a cooldown, and then serve
everything within the per-second budget.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from harness.clock import ClockKind, run
from mocks.broker import BrokerConfig, create_app
from mocks.control_client import BrokerControl
from mocks.market import LISTINGS
from mocks.server import serve
from system.broker import BrokerUnavailable, KisClient, KisSettings, TokenCooldown

# Well-formed demo credentials: the mock checks their lengths (36 and 180), nothing more.
DEMO_APPKEY = "PSdemo" + "0" * 30
DEMO_APPSECRET = "demo" + "s" * 176
DEMO_ACCOUNT = "50012345-01"
STORM_AT = 5.0


@dataclass
class Tally:
    served: int = 0
    cooldown_errors: int = 0
    unavailable_errors: int = 0
    first_served_after_storm: float | None = None
    all_served_at: float | None = None


@dataclass(frozen=True)
class Outcome:
    requests: int
    tally: Tally
    token_requests: int
    tokens_refused: int
    expired_answers: int
    budget_answers: int
    served_by_broker: int
    storm_at: float

    @property
    def recovery(self) -> float | None:
        first = self.tally.first_served_after_storm
        return None if first is None else first - self.storm_at

    @property
    def ok(self) -> bool:
        # Initial issuance, one refused re-issue inside the minute, one after the cooldown.
        return self.tally.served == self.requests and self.token_requests <= 3


async def _quote_until_served(
    client: KisClient, code: str, tally: Tally, started: float, progress: Progress, task: TaskID
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            await client.get_price(code)
        except TokenCooldown as cooling:
            tally.cooldown_errors += 1
            await asyncio.sleep(cooling.retry_after)
            continue
        except BrokerUnavailable:
            tally.unavailable_errors += 1
            await asyncio.sleep(1.0)
            continue
        now = loop.time() - started
        tally.served += 1
        if tally.first_served_after_storm is None:
            tally.first_served_after_storm = now
        tally.all_served_at = now
        progress.update(task, advance=1)
        return


async def storm(requests: int, seed: int, console: Console) -> Outcome:
    loop = asyncio.get_running_loop()
    started = loop.time()
    broker = create_app(BrokerConfig(seed=seed))
    async with serve(broker) as server, BrokerControl(server.url) as control:
        settings = KisSettings(
            base_url=server.url,
            appkey=DEMO_APPKEY,
            appsecret=DEMO_APPSECRET,
            account=DEMO_ACCOUNT,
            profile="real",
        )
        console.print(f"mock KIS broker at {server.url} (seed {seed}, 18 req/s, 1 token/min)")
        async with KisClient(settings) as client:
            await client.get_price("005930")  # a healthy start: one token issued
            await asyncio.sleep(max(0.0, STORM_AT - (loop.time() - started)))
            expired = await control.expire_tokens()
            storm_at = loop.time() - started
            console.print(
                f"t={storm_at:5.1f}s  control plane: expired {expired} token(s); "
                f"launching {requests} concurrent quote requests"
            )
            tally = Tally()
            codes = [code for code, _, _ in LISTINGS]
            with Progress(
                TextColumn("[bold]quotes served"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[note]}"),
                console=console,
                transient=False,
            ) as progress:
                task = progress.add_task("storm", total=requests, note="")

                async def narrate() -> None:
                    while True:
                        now = loop.time() - started
                        progress.update(
                            task,
                            note=f"t={now:5.1f}s  cooldown errors {tally.cooldown_errors}",
                        )
                        await asyncio.sleep(0.5)

                narrator = asyncio.create_task(narrate())
                await asyncio.gather(
                    *(
                        _quote_until_served(
                            client, codes[i % len(codes)], tally, started, progress, task
                        )
                        for i in range(requests)
                    )
                )
                narrator.cancel()
        token_calls = await control.journal(path="/oauth2/tokenP")
        uapi = await control.journal(path="/uapi/domestic-stock/v1/quotations/inquire-price")
    return Outcome(
        requests=requests,
        tally=tally,
        token_requests=len(token_calls),
        tokens_refused=sum(1 for e in token_calls if e.code == "EGW00133"),
        expired_answers=sum(1 for e in uapi if e.code == "EGW00123"),
        budget_answers=sum(1 for e in uapi if e.code == "EGW00201"),
        served_by_broker=sum(1 for e in uapi if e.code == "MCA00000"),
        storm_at=storm_at,
    )


def report(outcome: Outcome, console: Console) -> None:
    table = Table(title="Token storm: what happened", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("should be")
    table.add_row("token requests seen by the broker", str(outcome.token_requests), "≤ 3")
    table.add_row("  of which refused (EGW00133)", str(outcome.tokens_refused), "≤ 1")
    table.add_row("quotes answered EGW00123 (expired)", str(outcome.expired_answers), "")
    table.add_row("quotes answered EGW00201 (budget)", str(outcome.budget_answers), "0")
    table.add_row("TokenCooldown errors raised to callers", str(outcome.tally.cooldown_errors), "")
    table.add_row(
        "requests served", f"{outcome.tally.served}/{outcome.requests}", f"{outcome.requests}"
    )
    recovery = outcome.recovery
    table.add_row(
        "time to recovery (storm → first quote)",
        "never" if recovery is None else f"{recovery:.1f} s",
        "≈ 60 s (one token per minute)",
    )
    done = outcome.tally.all_served_at
    table.add_row(
        "all served after the storm",
        "never" if done is None else f"{done - outcome.storm_at:.1f} s",
        "",
    )
    console.print(table)
    verdict = "[green]PASS[/green]" if outcome.ok else "[red]FAIL[/red]"
    console.print(f"{verdict}: the client survived the storm" if outcome.ok else verdict)


def run_demo(*, requests: int = 200, seed: int = 0, clock: ClockKind = "virtual") -> bool:
    console = Console()
    console.print(
        f"[bold]Squall demo[/bold]: expired-token + EGW00133 storm, {requests} concurrent "
        f"quote requests, {clock} time"
    )
    outcome = run(storm(requests, seed, console), clock)
    report(outcome, console)
    return outcome.ok
