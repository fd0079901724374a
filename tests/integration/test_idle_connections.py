"""1,000 idle WebSocket clients on one gateway, then a flood of oversized messages and
bodies: the gateway keeps serving, and its memory stays bounded.

Everything runs in this process on loopback (the gateway in uvicorn, every client beside
it), so the resident set measured (VmRSS) is the gateway's plus its clients'. The baseline
is taken once the 1,000 idle clients are connected; the flood then comes from 200 more
WebSocket clients, each sending messages over ``max_message_bytes`` (answered with an
error) and then one declaring 8 MiB, far over ``max_frame_bytes`` (closed with 1009), and
from 100 HTTP uploads over ``max_body_bytes`` (413), half declaring 100 MiB, half chunked
and endless. Without the limits the gateway would hold the 200 messages whole: 1.6 GiB.

Measured on the development machine: the 1,000 idle clients cost about 40 KiB each (both
ends), and the flood grew the resident set by 32 MiB at its peak, mostly the 200 flooding
clients' own connections, in about 4 s in all. With uvicorn's default message limit
(16 MiB) instead of the gateway's 64 KiB, the same flood grew it by 2.7 GiB.

The figures (baseline, peak, growth, wall times) are written to
``build/limits/idle-connections.json`` and printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import resource
import struct
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from system.gateway import Gateway, GatewayServer, GatewaySettings, create_gateway, serve
from tests.unit.gateway.fakes import FakeDesk, FakeFeed, FakeService

IDLE = 1000
FLOODERS = 200
UPLOADS = 100
DECLARED_MESSAGE = 8 * 1024 * 1024  # what each oversized WebSocket message claims
DECLARED_BODY = 100 * 1024 * 1024  # what each oversized upload claims
# The most the resident set may grow over the baseline, at the flood's peak and after it:
# twice what was measured (32 MiB), a fortieth of what the flood takes without the limits.
GROWTH_BOUND_MIB = 64
DEADLINE_S = 5.0  # for the gateway's answers once the flood is over
TOKEN = "op-Zq8wJ1mV4rT7yB2nK5xC"
REPORT = Path(__file__).resolve().parents[2] / "build" / "limits" / "idle-connections.json"
MIB = 1024 * 1024


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("/proc/self/status has no VmRSS line")


@pytest.fixture
def enough_file_descriptors() -> Iterator[None]:
    """Both ends of every connection live in this process: raise the soft limit on open
    files to the hard one if it is short, and put it back afterwards."""
    if not Path("/proc/self/status").exists():
        pytest.skip("the memory figures come from /proc/self/status (Linux only)")
    needed = 2 * (IDLE + FLOODERS + UPLOADS) + 200  # and the loop, the logs, the test's files
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(
            f"needs {needed} open files in one process, but the hard limit is {hard}: raise it "
            "(`ulimit -Hn`, or nofile in /etc/security/limits.conf) to run this test"
        )
    if soft != resource.RLIM_INFINITY and soft < needed:
        # An unlimited hard limit is no value the kernel takes for a soft one.
        raised = needed if hard == resource.RLIM_INFINITY else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def open_idle(url: str, count: int) -> list[ClientConnection]:
    """``count`` connected clients that never send anything, opened 100 at a time."""
    gate = asyncio.Semaphore(100)

    async def one() -> ClientConnection:
        async with gate:
            return await connect(url, ping_interval=None, open_timeout=30)

    return await asyncio.gather(*(one() for _ in range(count)))


def text_frame_head(length: int) -> bytes:
    """A client's masked text frame head declaring ``length`` bytes of payload (mask key
    zero: the payload goes as it is)."""
    return bytes([0x81, 0x80 | 127]) + struct.pack("!Q", length) + b"\0\0\0\0"


async def oversized_messages(url: str, soft_limit: int) -> int | None:
    """Three messages over the gateway's ``max_message_bytes`` (each answered with an error,
    the connection kept), then one declaring ``DECLARED_MESSAGE`` bytes, its payload
    streamed until the gateway closes the connection. The close code (None: not closed)."""
    async with connect(url, ping_interval=None, open_timeout=30) as ws:
        for _ in range(3):
            await ws.send(json.dumps({"type": "ping", "pad": "x" * (soft_limit * 2)}))
        closed = asyncio.ensure_future(_until_closed(ws))
        transport = ws.transport
        piece = b"a" * (64 * 1024)
        transport.write(text_frame_head(DECLARED_MESSAGE) + piece)
        sent = len(piece)
        # A gateway that refuses the message does so at its head: give it the time to say
        # so before sending more (closing with data still arriving would reset the
        # connection, and the close frame could be lost with it).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(closed), 1.0)
        while not closed.done() and sent < DECLARED_MESSAGE and not transport.is_closing():
            transport.write(piece)
            sent += len(piece)
            await asyncio.sleep(0.005)
        async with asyncio.timeout(10):
            return await closed


async def _until_closed(ws: ClientConnection) -> int | None:
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as exc:
        return None if exc.rcvd is None else exc.rcvd.code


async def oversized_upload(url: str, *, chunked: bool) -> int:
    """POST /api/kill-switch with the operator's token and a body far over the limit:
    declared (and never sent) or chunked (and endless until answered). The status."""
    address = urlsplit(url)
    assert address.hostname is not None
    assert address.port is not None
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        framing = "transfer-encoding: chunked" if chunked else f"content-length: {DECLARED_BODY}"
        writer.write(
            f"POST /api/kill-switch HTTP/1.1\r\nhost: {address.netloc}\r\n"
            f"authorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\n"
            f"{framing}\r\n\r\n".encode()
        )
        answer = asyncio.ensure_future(reader.readuntil(b"\r\n"))
        chunk, sent = b"4000\r\n" + b" " * 0x4000 + b"\r\n", 0
        while chunked and not answer.done() and sent < DECLARED_BODY:
            writer.write(chunk)
            await writer.drain()
            sent += 0x4000
            await asyncio.sleep(0.005)
        async with asyncio.timeout(10):
            return int((await answer).split()[1])
    finally:
        writer.close()


class PeakMemory:
    """The highest resident set seen while ``watching``, sampled every 20 ms."""

    def __init__(self) -> None:
        self.peak = rss_bytes()
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_bytes())
            await asyncio.sleep(0.02)

    async def __aenter__(self) -> PeakMemory:
        self._task = asyncio.ensure_future(self._sample())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, rss_bytes())


async def fresh_client_is_served(server: GatewayServer, feed: FakeFeed) -> float:
    """Subscribe a new client and wait for a price; how long it took."""
    started = time.monotonic()
    async with connect(server.ws_url, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "ticker": "005930"}))
        seen: list[str] = []
        async with asyncio.timeout(DEADLINE_S):
            while "subscribed" not in seen:
                seen.append(json.loads(await ws.recv())["type"])
            feed.emit("005930", 80600)
            while json.loads(await ws.recv())["type"] != "price_update":
                pass
    return time.monotonic() - started


async def close_all(clients: list[ClientConnection]) -> None:
    for client in clients:
        client.transport.abort()  # no closing handshakes: the gateway sees the drop
    await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def served_gateway() -> AsyncIterator[tuple[GatewayServer, Gateway, FakeFeed]]:
    feed = FakeFeed()
    app = create_gateway(
        FakeService({"005930": 80100}),
        feed,
        GatewaySettings(operator_token=TOKEN),
        kill_switch=FakeDesk(),
    )
    async with serve(app) as server:
        yield server, Gateway.of(app), feed


@pytest.mark.usefixtures("enough_file_descriptors")
async def test_a_thousand_idle_clients_and_a_flood_of_oversized_messages() -> None:
    began = time.monotonic()
    before = rss_bytes()
    async with served_gateway() as (server, gateway, feed):
        settings = gateway.settings
        idle = await open_idle(server.ws_url, IDLE)
        try:
            async with asyncio.timeout(10):
                while len(gateway.manager) < IDLE:  # noqa: ASYNC110 (nothing to await on)
                    await asyncio.sleep(0.01)
            connected_s = time.monotonic() - began
            gc.collect()
            baseline = rss_bytes()

            flood_began = time.monotonic()
            async with PeakMemory() as memory:
                closes, statuses = await asyncio.gather(
                    asyncio.gather(
                        *(
                            oversized_messages(server.ws_url, settings.max_message_bytes)
                            for _ in range(FLOODERS)
                        )
                    ),
                    asyncio.gather(
                        *(oversized_upload(server.url, chunked=n % 2 == 1) for n in range(UPLOADS))
                    ),
                )
            flood_s = time.monotonic() - flood_began

            async with httpx.AsyncClient(base_url=server.url, timeout=DEADLINE_S) as http:
                health_began = time.monotonic()
                health = await http.get("/health")
                health_s = time.monotonic() - health_began
            fresh_s = await fresh_client_is_served(server, feed)
            still_idle = sum(1 for client in idle if client.close_code is None)
            gc.collect()
            after = rss_bytes()
        finally:
            await close_all(idle)

    figures: dict[str, Any] = {
        "idle_connections": IDLE,
        "flood": {
            "websocket_clients": FLOODERS,
            "messages_over_max_message_bytes_each": 3,
            "declared_message_bytes": DECLARED_MESSAGE,
            "uploads": UPLOADS,
            "declared_body_bytes": DECLARED_BODY,
        },
        "limits": {
            name: getattr(settings, name)
            for name in ("max_message_bytes", "max_frame_bytes", "max_body_bytes")
        },
        "rss_mib": {
            "before_connections": round(before / MIB, 1),
            "baseline_with_idle_connections": round(baseline / MIB, 1),
            "peak_during_flood": round(memory.peak / MIB, 1),
            "after_flood": round(after / MIB, 1),
        },
        "per_idle_connection_kib": round((baseline - before) / IDLE / 1024, 1),
        "growth_mib": {
            "peak": round((memory.peak - baseline) / MIB, 1),
            "after": round((after - baseline) / MIB, 1),
            "bound": GROWTH_BOUND_MIB,
        },
        "seconds": {
            "connect_idle": round(connected_s, 2),
            "flood": round(flood_s, 2),
            "health_after_flood": round(health_s, 3),
            "fresh_client_price_after_flood": round(fresh_s, 3),
            "total": round(time.monotonic() - began, 2),
        },
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"\n{REPORT}:\n{json.dumps(figures, indent=2)}")

    assert closes == [1009] * FLOODERS
    assert statuses == [413] * UPLOADS
    assert health.status_code == 200, health.text
    assert still_idle == IDLE, "an idle client lost its connection to the flood"
    assert (memory.peak - baseline) / MIB < GROWTH_BOUND_MIB, figures
    assert (after - baseline) / MIB < GROWTH_BOUND_MIB, figures
