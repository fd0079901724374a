"""The realtime half of ``nox -s bench``: tick latency and gateway fan-out, each beside a
plain ``websockets`` server measured the same way in the same run.

**Tick latency** (mock feed → system → gateway → WebSocket client). One process, one event
loop, one clock (``loop.time()``): the mock broker and feed (``serve_world``), the system
(``running_system``) with its gateway served on loopback, and a bench client that subscribes
``LATENCY_CODES`` tickers on ``/ws``. A tick is *sent* when the mock feed wrote its
H0STCNT0 frame: the feed journals every frame just after the write, with the step it
carries, on its own clock, whose offset from the loop's clock is read in-process. A tick
is *received* when the client's ``recv()`` returns its ``price_update``, before any parsing.
The two are paired by content: (ticker, accumulated volume), the volume being
``Market(seed).tick(code, step).volume``, ACML_VOL of that step, which the system passes on
as ``data.volume``. The baseline path has the same source and the same client: a plain
``websockets`` relay connects to the same mock feed as the system does (``connect_websocket``),
subscribes the same tickers under an app key of its own, and ``broadcast()``\\s each frame
unchanged to a plain ``websockets`` server's client: the irreducible WS → process → WS hop.
Its ticks are paired the same way (ticker and ACML_VOL read from the forwarded frame).
The mock feed sends one frame per ticker per one-second market step (the rate is fixed by
``mocks.market.STEP_SECONDS``), all tickers at once, so each step is a burst of
``LATENCY_CODES`` frames and the figures include queueing inside that burst — on both
paths alike. Rounds alternate system and relay so that noise falls on both. A stall of the
process (another process taking the core) delays a whole burst, so p99 rests on the worst
two or three bursts of a path: on a shared machine it moves from run to run, either way;
p50 and the CPU figures below are the steadier ones.

**Fan-out throughput** with 10, 100 and 1,000 WebSocket clients on one ticker. The 1 tick/s
of the mock feed is far too little load, so prices are published straight into the
gateway's feed listener (``PriceUpdateBroadcaster.on_price``, what ``FeedClient`` calls
for every trade) by a stand-in ``PriceFeed``; no mock feed or broker runs in this part, and
the gateway has default ``GatewaySettings``. The baseline is a plain ``websockets`` server
whose handler answers the same subscribe message and whose publisher calls
``websockets.asyncio.server.broadcast`` with the very text the gateway sends
(``price_update`` encoded by the gateway's own protocol module). Both publishers run flat
out: one message, then one yield to the event loop, ``FANOUT_DELIVERIES / clients``
messages in all, the last one marked. The clients live in a separate process (the machine
has two cores: one for the server, one for the clients, the same for both servers): raw
asyncio protocols that do the WebSocket handshake and then only split frames and look for
the marker, so they are not the bottleneck (their CPU use is printed). Throughput is
messages delivered to all clients ÷ (last client receiving the last message − first
publish), on one clock (``time.monotonic``, shared across processes on Linux).
``broadcast()`` never drops: it buffers without bound. The gateway keeps at most one
pending price per ticker per client (latest wins), so under load it delivers fewer
messages than offered; its coalesced and dropped counts are printed, never hidden.

**Memory**: Python heap (``tracemalloc``) held by the server process once the clients
are connected and subscribed, per 1,000 clients, traced only while connecting.

Results go to ``build/bench/realtime.json``; ``python -m harness.bench --only realtime`` runs
this part alone, ``python -m harness.bench`` runs it after the broker benchmarks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import math
import multiprocessing
import os
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast
from websockets.asyncio.server import serve as serve_websockets
from websockets.exceptions import ConnectionClosed
from websockets.typing import Data

from harness.stack import system_settings
from harness.stats import percentile
from mocks.broker import BrokerConfig
from mocks.journal import fingerprint
from mocks.world import World, serve_world
from system.app import running_system
from system.gateway import Gateway, create_gateway
from system.gateway import serve as serve_gateway
from system.gateway.protocol import encode, price_update
from system.health import Health
from system.market.columns import TRADE_INDEX, TRADES
from system.market.connection import connect_websocket
from system.market.model import (
    FeedStatus,
    OrderBook,
    PriceListener,
    PriceUpdate,
    StatusListener,
)
from system.market.protocol import subscribe_message

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
LATENCY_CODES = 10  # tickers subscribed: frames per one-second step
LATENCY_ROUNDS = 2  # system and relay alternate, this many windows each
LATENCY_WINDOW_S = 12.5  # per round: LATENCY_CODES × rounds × window ≈ 250 ticks a side
FANOUT_CLIENTS = (10, 100, 1000)  # three sizes: the cost curve, not one point
FANOUT_DELIVERIES = 100_000  # messages × clients offered per run
FANOUT_ROUNDS = 2  # gateway and baseline alternate; the best run of each is reported
FANOUT_TICKER = "005930"
# The relay's own app key: the mock feed allows one session per app key, and the system
# holds the stack's.
RELAY_APPKEY = "PSrelay" + "0" * 29
# Published prices carry volume VOLUME_BASE + n, the last one FINAL_VOLUME: the clients count
# messages by the first marker and stop at the second, without parsing JSON.
VOLUME_BASE = 7_000_000_000_000
FINAL_VOLUME = 7_999_999_999_999
COUNTED = b'"volume":7'
FINAL = b'"volume":7999999999999'
SUBSCRIBED = b'"type":"subscribed"'
_PONG = b'{"type":"pong"}'

Tick = tuple[str, int]  # ticker, accumulated volume (ACML_VOL): what pairs a tick
Received = tuple[str, int, float]  # ... and the loop time it was received


# -- statistics ---------------------------------------------------------------------------


def pair_ticks(
    sent: Mapping[tuple[str, int], float], received: Iterable[Received]
) -> tuple[list[float], int]:
    """Latencies (seconds) of the received ticks found among the sent ones, and how many
    were not found. A (ticker, volume) pair counts once: a step with no trades repeats the
    previous volume, and its first sending and first receipt are the ones that pair."""
    latencies: list[float] = []
    unmatched = 0
    seen: set[tuple[str, int]] = set()
    for code, volume, at in received:
        key = (code, volume)
        if key in seen:
            continue
        seen.add(key)
        sent_at = sent.get(key)
        if sent_at is None:
            unmatched += 1
        else:
            latencies.append(at - sent_at)
    return latencies, unmatched


@dataclass(frozen=True)
class Latency:
    ticks: int
    unmatched: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, rounds: Iterable[tuple[list[float], int]]) -> Latency:
        """Over every round's (latencies, unmatched), as ``pair_ticks`` gives them."""
        rounds = list(rounds)
        ms = [value * 1e3 for latencies, _ in rounds for value in latencies]
        unmatched = sum(count for _, count in rounds)
        top = max(ms) if ms else math.nan
        return cls(len(ms), unmatched, percentile(ms, 0.5), percentile(ms, 0.99), top)


# -- tick latency ---------------------------------------------------------------------------


async def _paired(world: World, appkey: str, received: list[Received]) -> tuple[list[float], int]:
    """``pair_ticks`` of ``received`` against the frames the mock feed wrote to ``appkey``'s
    connection: (ticker, ACML_VOL) → the loop time it was written. Call it while that
    connection is still open: the control plane lists only open connections, and that is
    where the app key's connection number comes from."""
    feed = world.feed_app.state.feed
    origin = asyncio.get_running_loop().time() - feed.clock.now()  # the feed's clock's zero
    mine = fingerprint(appkey)
    numbers = {
        c["connection"] for c in await world.feed_control.connections() if c["appkey"] == mine
    }
    sent: dict[tuple[str, int], float] = {}
    for number in numbers:
        for entry in await world.feed_control.journal(
            kind="frame", tr_id=TRADES, connection=number
        ):
            if entry.outcome != "sent" or entry.records != 1 or entry.step is None:
                continue
            assert entry.tr_key is not None
            key = (entry.tr_key, feed.market.tick(entry.tr_key, entry.step).volume)
            at = origin + entry.at
            sent[key] = min(at, sent.get(key, at))
    return pair_ticks(sent, received)


# What a path's client makes of a message: a tick, a reply it owes (text), or nothing.
Decode = Callable[[Data], Tick | str | None]


async def _collect(
    ws: ClientConnection, decode: Decode, codes: list[str], window_s: float
) -> list[Received]:
    """Ticks received during ``window_s``, which starts once every code has ticked (so the
    subscriptions are all in place)."""
    loop = asyncio.get_running_loop()
    pending = set(codes)
    received: list[Received] = []
    end = math.inf
    async with asyncio.timeout(window_s + 30):
        while True:
            message = await ws.recv()
            at = loop.time()  # before any parsing: that is the receiver's business
            if at >= end:
                return received
            tick = decode(message)
            if isinstance(tick, str):
                await ws.send(tick)
                continue
            if tick is None:
                continue
            if pending:
                pending.discard(tick[0])
                if not pending:
                    end = at + window_s
                continue
            received.append((tick[0], tick[1], at))


def _gateway_tick(text: Data) -> Tick | str | None:
    """(ticker, data.volume) of a feed-sourced ``price_update``; the pong a ping asks for
    (the gateway closes clients that don't answer its heartbeat)."""
    message = json.loads(text)
    if message["type"] == "ping":
        return _PONG.decode()
    if message["type"] != "price_update" or message["data"]["source"] != "feed":
        return None
    return message["ticker"], message["data"]["volume"]


def _frame_tick(text: Data) -> Tick | None:
    """(ticker, ACML_VOL) of a one-record H0STCNT0 frame: ``0|H0STCNT0|001|f0^f1^…``."""
    if not isinstance(text, str) or not text.startswith("0|" + TRADES):
        return None
    fields = text.split("|", 3)[3].split("^")
    return fields[TRADE_INDEX["MKSC_SHRN_ISCD"]], int(fields[TRADE_INDEX["ACML_VOL"]])


async def _round(
    world: World,
    url: str,
    appkey: str,
    decode: Decode,
    codes: list[str],
    window_s: float,
    subscribe: Iterable[str] = (),
) -> tuple[list[float], int]:
    """One window of one path: a client of ``url`` sends ``subscribe`` and collects ticks;
    they are paired against the feed's frames to ``appkey``."""
    async with connect(url, ping_interval=None, compression=None) as ws:
        for message in subscribe:
            await ws.send(message)
        received = await _collect(ws, decode, codes, window_s)
        return await _paired(world, appkey, received)


@contextlib.asynccontextmanager
async def _relay(world: World, codes: list[str]) -> AsyncIterator[str]:
    """The baseline hop: a plain websockets client of the mock feed whose every data frame
    a plain websockets server ``broadcast()``\\s, unchanged, to its clients. Yields the
    server's URL; the feed subscriptions start once a client is connected."""
    # Issued in-process: how the relay gets its key is not what is measured.
    approval = world.broker_app.state.broker.tokens.approval_key(RELAY_APPKEY)
    members: set[ServerConnection] = set()
    joined = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        members.add(ws)
        joined.set()
        try:
            await ws.wait_closed()
        finally:
            members.discard(ws)

    async def pump() -> None:
        while True:
            text = await upstream.recv()
            if text[:1] in ("0", "1"):
                broadcast(members, text)
            elif '"PINGPONG"' in text:
                await upstream.send(text)  # the feed's heartbeat, echoed as KIS asks

    async def subscribe() -> None:
        await joined.wait()
        for code in codes:
            await upstream.send(subscribe_message(approval, TRADES, code))

    # The system's feed client connects through this very function (system.market).
    upstream = await connect_websocket(world.feed_url)
    try:
        async with serve_websockets(
            handler, "127.0.0.1", 0, compression=None, ping_interval=None
        ) as server:
            loop = asyncio.get_running_loop()
            tasks = [loop.create_task(pump()), loop.create_task(subscribe())]
            try:
                yield f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await upstream.close()


async def tick_latency(
    window_s: float = LATENCY_WINDOW_S, rounds: int = LATENCY_ROUNDS
) -> tuple[Latency, Latency]:
    """(system, relay) tick latency over ``rounds`` alternating windows of each."""
    squall: list[tuple[list[float], int]] = []
    relay: list[tuple[list[float], int]] = []
    async with serve_world(BrokerConfig(seed=SEED)) as world:
        codes = list(world.feed_app.state.feed.market.instruments)[:LATENCY_CODES]
        subscribe = [json.dumps({"type": "subscribe", "ticker": code}) for code in codes]
        settings = system_settings(world)
        async with running_system(settings) as system, serve_gateway(system.app) as gateway:
            for _ in range(rounds):
                squall.append(
                    await _round(
                        world,
                        gateway.ws_url,
                        settings.broker.appkey,
                        _gateway_tick,
                        codes,
                        window_s,
                        subscribe,
                    )
                )
                async with _relay(world, codes) as url:
                    relay.append(
                        await _round(world, url, RELAY_APPKEY, _frame_tick, codes, window_s)
                    )
    return Latency.of(squall), Latency.of(relay)


# -- fan-out: the clients' process ----------------------------------------------------------


@dataclass(frozen=True)
class ClientOrder:
    """What the client process is to do: ``clients`` connections to ``url``, each sending
    ``subscribe`` and waiting for the answer, then counting marked messages until every
    connection has had the final one."""

    url: str
    clients: int
    subscribe: bytes
    timeout_s: float = 120.0


@dataclass(frozen=True)
class ClientReport:
    delivered: int
    finished: int  # connections that got the final message
    lost: int  # connections that closed before the end
    # time.monotonic() of the last connection getting the final message (or of giving up)
    last_at: float
    fewest: int  # counted messages of the connection with fewest
    cpu_s: float  # the client process's CPU seconds from ready to done


def _frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: masked, as RFC 6455 §5.3 requires; payloads under 126 bytes only."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + masked


class _Tally:
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.delivered = 0
        self.finished = 0
        self.lost = 0
        self.last_at = math.nan
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finish(self) -> None:
        self.finished += 1
        self.last_at = time.monotonic()
        if self.finished == self.expected and not self.done.done():
            self.done.set_result(None)


class _CountingClient(asyncio.Protocol):
    """A WebSocket client that only frames: it answers pings (protocol and the gateway's
    JSON ones) and counts marked text messages, and does nothing else per message: a client
    slower than the server would measure itself rather than the server."""

    def __init__(self, tally: _Tally, request: bytes, subscribe: bytes) -> None:
        self.tally = tally
        self.request = request
        self.subscribe = subscribe
        self.buffer = bytearray()
        self.upgraded = False
        self.finished = False
        self.closing = False
        self.count = 0
        self.transport: asyncio.Transport | None = None
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(f"closed before subscribing: {exc}"))
        if not self.closing and not self.finished:
            self.tally.lost += 1

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                status = bytes(buffer[: buffer.find(b"\r\n")]).decode(errors="replace")
                self.subscribed.set_exception(ConnectionError(f"handshake refused: {status}"))
                return
            del buffer[: end + 4]
            self.upgraded = True
            self._send(0x1, self.subscribe)
        self._frames()

    def _frames(self) -> None:
        buffer, tally = self.buffer, self.tally
        size, pos = len(buffer), 0
        while size - pos >= 2:
            length, start = buffer[pos + 1] & 0x7F, pos + 2  # servers never mask
            if length == 126:
                if size - pos < 4:
                    break
                length, start = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, start = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), pos + 10
            end = start + length
            if end > size:
                break
            opcode = buffer[pos] & 0x0F
            if opcode == 0x1:
                if buffer.find(COUNTED, start, end) >= 0:
                    self.count += 1
                    tally.delivered += 1
                    if buffer.find(FINAL, start, end) >= 0 and not self.finished:
                        self.finished = True
                        tally.finish()
                elif buffer.startswith(b'{"type":"ping"', start):
                    self._send(0x1, _PONG)
                elif not self.subscribed.done() and buffer.find(SUBSCRIBED, start, end) >= 0:
                    self.subscribed.set_result(None)
            elif opcode == 0x9:
                self._send(0xA, bytes(buffer[start:end]))
            pos = end
        if pos:
            del buffer[:pos]

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(opcode, payload))

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


async def _run_clients(order: ClientOrder, pipe: Connection) -> ClientReport:
    loop = asyncio.get_running_loop()
    parts = urlsplit(order.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    tally = _Tally(order.clients)
    clients: list[_CountingClient] = []
    # A few connections at a time: a burst of a thousand SYNs overflows the listen backlog,
    # and a dropped SYN costs a one-second retransmission.
    gate = asyncio.Semaphore(50)

    async def open_one() -> None:
        async with gate:
            _, client = await loop.create_connection(
                lambda: _CountingClient(tally, request, order.subscribe), host, port
            )
            clients.append(client)
            await client.subscribed

    try:
        await asyncio.gather(*(open_one() for _ in range(order.clients)))
        pipe.send("ready")
        cpu = time.process_time()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(tally.done), order.timeout_s)
        cpu = time.process_time() - cpu
    finally:
        for client in clients:
            client.close()
    return ClientReport(
        tally.delivered,
        tally.finished,
        tally.lost,
        tally.last_at if tally.finished == order.clients else time.monotonic(),
        min((client.count for client in clients), default=0),
        cpu,
    )


def client_process(pipe: Connection) -> None:
    """The clients' process: runs one ``ClientOrder`` after another until sent None."""
    while True:
        order = pipe.recv()
        if order is None:
            return
        try:
            pipe.send(asyncio.run(_run_clients(order, pipe)))
        except Exception as exc:
            pipe.send(f"the clients failed: {type(exc).__name__}: {exc}")


class _Clients:
    """The parent's handle on the client process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process running a loop
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=client_process, args=(child,), daemon=True)
        self.process.start()
        child.close()

    async def receive(self, timeout_s: float) -> Any:
        if not await asyncio.to_thread(self.pipe.poll, timeout_s):
            raise TimeoutError(f"the client process said nothing for {timeout_s:g} s")
        message = self.pipe.recv()
        if isinstance(message, str) and message != "ready":
            raise RuntimeError(message)
        return message

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.pipe.send(None)
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


# -- fan-out: the servers -------------------------------------------------------------------


class _PublishedFeed:
    """A ``PriceFeed`` that is live and carries whatever it is asked to; ``publish`` calls
    the listeners as ``FeedClient`` does for every trade it reads."""

    def __init__(self) -> None:
        self.listeners: list[PriceListener] = []

    def add_listener(self, listener: PriceListener) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: PriceListener) -> None:
        with contextlib.suppress(ValueError):
            self.listeners.remove(listener)

    def add_status_listener(self, listener: StatusListener) -> None:
        pass  # always live

    async def subscribe(self, code: str) -> None:
        pass

    async def unsubscribe(self, code: str) -> None:
        pass

    def latest(self, code: str) -> PriceUpdate | None:
        return None

    def book(self, code: str) -> OrderBook | None:
        return None

    def status(self) -> FeedStatus:
        return FeedStatus("live", 0.0)

    def metrics(self) -> dict[str, float]:
        return {}

    def publish(self, update: PriceUpdate) -> None:
        for listener in self.listeners:
            listener(update)


class _NoBroker:
    """The gateway's ``BrokerService``: never asked for a quote while the feed is live."""

    async def quote(self, code: str) -> Any:
        raise RuntimeError("the fan-out bench quotes nothing")

    def health(self) -> Health:
        return Health("healthy")

    def metrics(self) -> dict[str, float]:
        return {}


def _update(n: int, last: bool) -> PriceUpdate:
    return PriceUpdate(
        code=FANOUT_TICKER,
        price=71_300,
        change=-200,
        change_rate=-0.28,
        volume=FINAL_VOLUME if last else VOLUME_BASE + n,
        at=asyncio.get_running_loop().time(),
    )


Server = Literal["gateway", "websockets"]
Publish = Callable[[int, bool], None]  # (n, last): publish price n, the last one marked
Overflow = Callable[[], tuple[int, int]]  # the server's (coalesced, dropped) so far


@dataclass(frozen=True)
class FanoutRun:
    server: Server
    clients: int
    published: int
    delivered: int
    seconds: float
    per_second: float
    coalesced: int
    dropped: int
    finished: int
    lost: int
    fewest: int
    # CPU time per delivered message: steadier than throughput on a shared machine, and the
    # clients' figure shows they are cheaper than the server (so not what is measured).
    server_cpu_us: float
    client_cpu_us: float
    heap_mib_per_1000: float


async def _fanout_run(
    clients: _Clients, server: Server, url: str, count: int, publish: Publish, overflow: Overflow
) -> FanoutRun:
    messages = max(2, FANOUT_DELIVERIES // count)
    subscribe = json.dumps({"type": "subscribe", "ticker": FANOUT_TICKER}).encode()
    gc.collect()
    tracemalloc.start()
    try:
        clients.pipe.send(ClientOrder(url, count, subscribe))
        await clients.receive(120)  # "ready": all connected and subscribed
        heap = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    coalesced, dropped = overflow()
    cpu, started = time.process_time(), time.monotonic()
    for n in range(messages):
        publish(n, n == messages - 1)
        await asyncio.sleep(0)  # flat out, but the loop (and so the writers) runs between
    report: ClientReport = await clients.receive(180)
    cpu = time.process_time() - cpu
    seconds = report.last_at - started
    coalesced_after, dropped_after = overflow()
    return FanoutRun(
        server,
        count,
        messages * count,
        report.delivered,
        seconds,
        report.delivered / seconds,
        coalesced_after - coalesced,
        dropped_after - dropped,
        report.finished,
        report.lost,
        report.fewest,
        cpu / max(report.delivered, 1) * 1e6,
        report.cpu_s / max(report.delivered, 1) * 1e6,
        heap / 2**20 * 1000 / count,
    )


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    # Polled: the gateway offers no event for "every client has gone".
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def fanout(
    counts: Iterable[int] = FANOUT_CLIENTS, rounds: int = FANOUT_ROUNDS
) -> list[FanoutRun]:
    """Every run of both servers, alternating, ``rounds`` times per client count."""
    feed = _PublishedFeed()
    app = create_gateway(_NoBroker(), feed)
    manager = Gateway.of(app).manager
    members: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                ticker = json.loads(message).get("ticker")
                members.add(ws)
                await ws.send(encode({"type": "subscribed", "ticker": ticker}))
        except ConnectionClosed:
            pass
        finally:
            members.discard(ws)

    def gateway_publish(n: int, last: bool) -> None:
        feed.publish(_update(n, last))

    def websockets_publish(n: int, last: bool) -> None:
        # Encoded per message, as the gateway does once per broadcast.
        broadcast(members, encode(price_update(_update(n, last), stale=False)))

    def gateway_overflow() -> tuple[int, int]:
        return manager.totals.messages_coalesced, manager.totals.messages_dropped

    runs: list[FanoutRun] = []
    clients = _Clients()
    try:
        async with (
            serve_gateway(app) as gateway,
            serve_websockets(
                handler, "127.0.0.1", 0, compression=None, ping_interval=None, backlog=2048
            ) as plain,
        ):
            plain_url = f"ws://127.0.0.1:{next(iter(plain.sockets)).getsockname()[1]}/"
            # Each server: its URL, how to publish, its overflow counts, when all have gone.
            servers: list[tuple[Server, str, Publish, Overflow, Callable[[], bool]]] = [
                (
                    "gateway",
                    gateway.ws_url,
                    gateway_publish,
                    gateway_overflow,
                    lambda: len(manager) == 0,
                ),
                ("websockets", plain_url, websockets_publish, lambda: (0, 0), lambda: not members),
            ]
            for count in counts:
                for _ in range(rounds):
                    for server, url, publish, overflow, gone in servers:
                        runs.append(
                            await _fanout_run(clients, server, url, count, publish, overflow)
                        )
                        await _until(gone)
    finally:
        clients.close()
    return runs


# -- report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    figure: str
    squall: float
    baseline: float
    unit: str
    better: Literal["lower", "higher"]
    notes: str = ""

    @property
    def ratio(self) -> float:
        return self.squall / self.baseline if self.baseline else math.nan


@dataclass(frozen=True)
class RealtimeResults:
    squall_latency: Latency
    relay_latency: Latency
    runs: list[FanoutRun]
    wall_s: float

    @property
    def rows(self) -> list[Row]:
        return _rows(self)


def _runs(results: RealtimeResults, server: str, count: int) -> list[FanoutRun]:
    return [r for r in results.runs if r.server == server and r.clients == count]


def _fastest(results: RealtimeResults, server: str, count: int) -> FanoutRun:
    return max(_runs(results, server, count), key=lambda r: r.per_second)


def _cheapest(results: RealtimeResults, server: str, count: int) -> FanoutRun:
    return min(_runs(results, server, count), key=lambda r: r.server_cpu_us)


def _rows(results: RealtimeResults) -> list[Row]:
    """The table: each figure of the system beside the baseline's, best run of each."""
    squall, relay = results.squall_latency, results.relay_latency
    table = [
        Row(
            "tick latency p50 (feed → client)",
            squall.p50_ms,
            relay.p50_ms,
            "ms",
            "lower",
            f"{squall.ticks} ticks through the system, {relay.ticks} through the relay "
            f"({LATENCY_CODES} tickers, one frame each per second, sent together); "
            f"unpaired: {squall.unmatched} and {relay.unmatched}",
        ),
        Row(
            "tick latency p99",
            squall.p99_ms,
            relay.p99_ms,
            "ms",
            "lower",
            f"slowest tick: {squall.max_ms:.2f} ms through the system, "
            f"{relay.max_ms:.2f} ms through the relay",
        ),
    ]
    counts = sorted({r.clients for r in results.runs})
    for count in counts:
        gateway, plain = _fastest(results, "gateway", count), _fastest(results, "websockets", count)
        table.append(
            Row(
                f"fan-out, {count:,} clients",
                gateway.per_second,
                plain.per_second,
                "msg/s",
                "higher",
                f"delivered {gateway.delivered:,} of {gateway.published:,} offered "
                f"(coalesced {gateway.coalesced:,}, dropped {gateway.dropped:,}, clients lost "
                f"{gateway.lost}); baseline {plain.delivered:,} of {plain.published:,} "
                "(broadcast() buffers, never drops)",
            )
        )
    for count in counts:
        gateway, plain = (
            _cheapest(results, "gateway", count),
            _cheapest(results, "websockets", count),
        )
        table.append(
            Row(
                f"server CPU per delivered message, {count:,} clients",
                gateway.server_cpu_us,
                plain.server_cpu_us,
                "µs",
                "lower",
                f"the clients' process spent {gateway.client_cpu_us:.1f} and "
                f"{plain.client_cpu_us:.1f} µs per message",
            )
        )
    largest = counts[-1]
    table.append(
        Row(
            "Python heap per 1,000 clients",
            min(r.heap_mib_per_1000 for r in _runs(results, "gateway", largest)),
            min(r.heap_mib_per_1000 for r in _runs(results, "websockets", largest)),
            "MiB",
            "lower",
            f"tracemalloc while {largest:,} clients connected and subscribed",
        )
    )
    return table


def _shown(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "msg/s":
        return f"{value:,.0f}/s"
    return f"{value:.1f} {unit}"


def print_results(console: Console, results: RealtimeResults) -> None:
    table = Table(title="Squall realtime benchmarks, beside plain websockets in the same run")
    for column in ("figure", "Squall", "baseline", "ratio"):
        table.add_column(column)
    for row in results.rows:
        better = f"{row.ratio:.2f}× ({row.better} is better)"
        table.add_row(
            row.figure, _shown(row.squall, row.unit), _shown(row.baseline, row.unit), better
        )
    console.print(table)
    console.print(
        "Tick latency: mock feed → system → gateway → a WebSocket client, against the same "
        "mock feed relayed to the same client by a plain websockets client and server "
        "(broadcast); one process, one clock; rounds alternate. A step's ticks arrive "
        "together, so p99 is the worst few bursts: one preemption moves it.\n"
        "Fan-out: prices published into the gateway's feed listener "
        "(PriceUpdateBroadcaster.on_price), not the 1 tick/s mock feed, against "
        "websockets.broadcast() of the same text; both flat out; clients in a second "
        f"process; best of {FANOUT_ROUNDS} alternating runs."
    )
    for row in results.rows:
        console.print(f"  {row.figure}: {row.notes}")
    console.print(f"The realtime benchmarks took {results.wall_s:.0f} s.")


def run() -> RealtimeResults:
    started = time.perf_counter()
    squall, relay = asyncio.run(tick_latency())
    runs = asyncio.run(fanout())
    return RealtimeResults(squall, relay, runs, time.perf_counter() - started)


def write_results(results: RealtimeResults) -> Path:
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "realtime.json"
    data = {
        "rows": [{**asdict(row), "ratio": row.ratio} for row in results.rows],
        "latency": {
            "squall": asdict(results.squall_latency),
            "relay": asdict(results.relay_latency),
        },
        "fanout_runs": [asdict(run) for run in results.runs],
        "wall_s": results.wall_s,
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return path


def main(console: Console) -> None:
    results = run()
    print_results(console, results)
    console.print(f"wrote {write_results(results)}")
