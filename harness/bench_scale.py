"""The cost curves of ``nox -s bench``: how each figure grows with users or clients, at three
sizes each, every point beside a baseline measured the same way in the same run.

- **Mock broker requests/s** with its journal on (every request recorded, as in every
  scenario), at 1, 10 and 100 concurrent clients, beside a bare uvicorn endpoint answering a
  fixed body (``mocks.server.serve``, the mocks' own server) driven by the same client. The
  client is httpx in this process, sharing the loop with the server: the same for both, so
  the ratio is what the mock's routing, fault rules, journal and market cost.
- **Proxy round trip** p50 at 1, 10 and 100 concurrent connections: 64-byte echoes through
  ``squall mock proxy`` (its own process, no fault rules) beside the same echoes straight to
  the upstream (another process; ``harness.bench_proxy``'s). The client is asyncio here
  (``harness.bench_proxy`` measures one connection with blocking sockets, socat included).
- **Time compression** of the EGW00133 storm with bursts of 100, 500 and 1,000 quotes,
  beside the bare wire's ceiling for the same number of requests (as ``harness.bench``).
- **Budget use** (served per second ÷ 18) with callers asking 20, 40 and 80 quotes a
  second: the budget must hold, never exceeded, however hard callers push.
- **Gateway fan-out** at 10, 100 and 1,000 clients: ``harness.bench_realtime``'s runs,
  read from ``build/bench/realtime.json`` when that part ran.

Results: ``build/bench/scale.json`` and the plot ``build/bench/scale.png`` (one panel per
curve, system and baseline on the same axes). ``python -m harness.bench --only scale``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from harness import bench_proxy
from harness.bench_wire import PARAMS, PATH, bare_endpoint, bare_exchange_s
from harness.runner import run_scenario
from harness.scenario import load_file, load_text
from mocks.broker import BrokerConfig
from mocks.broker.app import create_app
from mocks.server import serve

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench"
CONCURRENCY = (1, 10, 100)
REQUESTS = 3000  # per point: enough to dwarf warm-up, few enough for a quick run
PROXY_CONNECTIONS = (1, 10, 100)
PROXY_ROUND_TRIPS = 3000  # per point, spread over the connections
BURSTS = (100, 500, 1000)
CALLER_RATES = (20, 40, 80)
APPKEY = "P" * 36
APPSECRET = "s" * 180
_BUDGET = """
name: budget use at {rate} a second
duration: 60
timeline:
  - {{name: callers, at: 0, quotes: {{rate: {rate}}}}}
"""


@dataclass
class Point:
    size: int
    value: float
    baseline: float


@dataclass
class Curve:
    name: str
    size: str  # what grows
    unit: str
    system: str  # the line's label
    baseline: str
    points: list[Point] = field(default_factory=list)
    target: float | None = None  # a horizontal line, when the figure has a target


# -- the mock broker ------------------------------------------------------------------------


async def _drive(client: httpx.AsyncClient, concurrency: int, headers: dict[str, str]) -> float:
    """Requests per second of ``REQUESTS`` quote GETs over ``concurrency`` callers."""
    each = REQUESTS // concurrency

    async def caller() -> None:
        for _ in range(each):
            answer = await client.get(PATH, params=PARAMS, headers=headers)
            if answer.status_code != 200:
                raise RuntimeError(f"the bench's quote got HTTP {answer.status_code}")

    await caller()  # warm-up: connections, first-call caches
    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return each * concurrency / (time.perf_counter() - started)


async def _broker_curve() -> Curve:
    curve = Curve(
        "mock broker throughput",
        "concurrent clients",
        "requests/s",
        "mock broker (journal on)",
        "bare uvicorn endpoint",
    )
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    # No per-second budget: the figure is what the mock can serve, not what KIS allows.
    config = BrokerConfig(requests_per_second=1_000_000, token_interval_s=0)
    for concurrency in CONCURRENCY:
        async with (
            serve(create_app(config)) as broker,
            httpx.AsyncClient(base_url=broker.url, limits=limits) as client,
        ):
            token = await client.post(
                "/oauth2/tokenP",
                json={"grant_type": "client_credentials", "appkey": APPKEY, "appsecret": APPSECRET},
            )
            headers = {
                "authorization": f"Bearer {token.json()['access_token']}",
                "appkey": APPKEY,
                "appsecret": APPSECRET,
                "tr_id": "FHKST01010100",
                "custtype": "P",
            }
            mock = await _drive(client, concurrency, headers)
        async with (
            serve(bare_endpoint) as bare,
            httpx.AsyncClient(base_url=bare.url, limits=limits) as client,
        ):
            baseline = await _drive(client, concurrency, {})
        curve.points.append(Point(concurrency, mock, baseline))
    return curve


# -- the proxy ------------------------------------------------------------------------------


async def _echo_p50_us(address: bench_proxy.Address, connections: int) -> float:
    """p50 of 64-byte echo round trips over ``connections`` concurrent connections."""
    each = max(PROXY_ROUND_TRIPS // connections, 20)
    samples: list[int] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(*address)
        writer.write(b"E")  # the upstream's echo mode
        message = b"x" * 64
        try:
            for _ in range(each):
                started = time.perf_counter_ns()
                writer.write(message)
                await reader.readexactly(len(message))
                samples.append(time.perf_counter_ns() - started)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return statistics.median(samples) / 1000


def _proxy_curve() -> Curve:
    curve = Curve(
        "proxy round trip p50",
        "concurrent connections",
        "µs",
        "through squall mock proxy",
        "direct to the upstream",
    )
    with bench_proxy.upstream() as target, bench_proxy.squall_proxy(target) as proxied:
        for connections in PROXY_CONNECTIONS:
            direct = asyncio.run(_echo_p50_us(target, connections))
            through = asyncio.run(_echo_p50_us(proxied, connections))
            curve.points.append(Point(connections, through, direct))
    return curve


# -- the scenario engine --------------------------------------------------------------------


def _compression_curve() -> Curve:
    curve = Curve(
        "time compression, EGW00133 storm",
        "quotes in the burst",
        "×",
        "the storm",
        "bare-wire ceiling",
        target=300.0,
    )
    path = ROOT / "scenarios" / "broker" / "egw00133-storm.yaml"
    storm = load_file(path)
    bare = asyncio.run(bare_exchange_s())
    for burst in BURSTS:
        timeline = [
            step.model_copy(update={"quotes": step.quotes.model_copy(update={"burst": burst})})
            if step.quotes is not None and step.quotes.burst is not None
            else step
            for step in storm.timeline
        ]
        scenario = storm.model_copy(update={"timeline": timeline})
        result = run_scenario(scenario, str(path))
        if not result.passed or result.timeline is None:
            raise SystemExit(f"bench: the storm with a burst of {burst} did not pass")
        requests = len(result.timeline.broker_calls)
        ceiling = result.simulated_seconds / (requests * bare)
        curve.points.append(Point(burst, result.simulated_seconds / result.wall_seconds, ceiling))
    return curve


def _budget_curve() -> Curve:
    curve = Curve(
        "budget use, real profile",
        "quotes asked per second",
        "served/s ÷ budget",
        "the system",
        "the budget",
        target=0.95,
    )
    for rate in CALLER_RATES:
        use, refused, _ = budget_use(rate)
        if refused:
            raise SystemExit(f"bench: {refused} EGW00201 answers at {rate} quotes/s")
        curve.points.append(Point(rate, use, 1.0))
    return curve


def budget_use(rate: int) -> tuple[float, int, int]:
    """A minute of callers asking ``rate`` quotes a second on the real profile: (quotes
    served per second ÷ the budget, EGW00201 answers, the budget the broker enforced)."""
    result = run_scenario(load_text(_BUDGET.format(rate=rate), "budget"), "budget")
    assert result.timeline is not None
    budget = BrokerConfig().budget  # the real profile's, as the mock enforces it
    calls = result.timeline.broker_calls
    served = [c for c in calls if c.outcome == "ok" and c.path.startswith("/uapi")]
    # Skip the first second (start-up, token issuance) and the last (the run stops mid-second).
    steady = [c for c in served if 1.0 <= c.at < result.simulated_seconds - 1.0]
    per_second = len(steady) / (result.simulated_seconds - 2.0)
    refused = sum(1 for c in calls if c.outcome == "EGW00201")
    return per_second / budget, refused, budget


# -- fan-out, from the realtime part ----------------------------------------------------------


def _fanout_curve() -> Curve | None:
    """The realtime part's fan-out runs as a curve (best run per size), if it ran."""
    path = OUT / "realtime.json"
    if not path.exists():
        return None
    runs: list[dict[str, Any]] = json.loads(path.read_text())["fanout_runs"]
    curve = Curve("gateway fan-out", "clients", "messages/s", "gateway", "websockets.broadcast()")
    for clients in sorted({run["clients"] for run in runs}):

        def best(server: str, size: int = clients) -> float:
            return max(
                float(r["per_second"])
                for r in runs
                if r["server"] == server and r["clients"] == size
            )

        curve.points.append(Point(clients, best("gateway"), best("websockets")))
    return curve


# -- output ---------------------------------------------------------------------------------


def run() -> list[Curve]:
    curves = [asyncio.run(_broker_curve()), _proxy_curve(), _compression_curve(), _budget_curve()]
    fanout = _fanout_curve()
    return curves if fanout is None else [*curves, fanout]


def print_results(console: Console, curves: list[Curve]) -> None:
    table = Table(title="Squall cost curves (each point beside its baseline, same run)")
    for column in ("figure", "size", "value", "baseline", "ratio"):
        table.add_column(column)
    for curve in curves:
        for point in curve.points:
            ratio = point.value / point.baseline if point.baseline else float("nan")
            table.add_row(
                f"{curve.name} ({curve.unit})",
                f"{point.size} {curve.size}",
                f"{point.value:,.2f}",
                f"{point.baseline:,.2f} ({curve.baseline})",
                f"{ratio:.2f}",
            )
    console.print(table)


def write_results(curves: list[Curve]) -> tuple[Path, Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / "scale.json"
    data.write_text(json.dumps([asdict(c) for c in curves], indent=2, ensure_ascii=False) + "\n")
    return data, plot(curves, OUT / "scale.png")


def plot(curves: list[Curve], path: Path) -> Path:
    """One panel per curve: the system and its baseline against size, log-scaled sizes."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a CI machine
    import matplotlib.pyplot as plt

    columns = 3
    rows = (len(curves) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 4 * rows), squeeze=False)
    for ax, curve in zip(axes.flat, curves, strict=False):
        sizes = [p.size for p in curve.points]
        ax.plot(sizes, [p.value for p in curve.points], "o-", label=curve.system)
        ax.plot(sizes, [p.baseline for p in curve.points], "s--", label=curve.baseline)
        if curve.target is not None:
            ax.axhline(curve.target, color="grey", linestyle=":", label=f"target {curve.target:g}")
        ax.set_xscale("log")
        ax.set_title(curve.name)
        ax.set_xlabel(curve.size)
        ax.set_ylabel(curve.unit)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(curves) :]:
        ax.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def main(console: Console) -> None:
    curves = run()
    print_results(console, curves)
    data, image = write_results(curves)
    console.print(f"wrote {data} and {image}")
