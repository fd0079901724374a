"""The gateway over real loopback sockets: uvicorn in the test's loop, websockets clients.

The feed and the trading service are in-memory fakes (``tests.unit.gateway.fakes``): what
is tested here is the gateway's own side of the sockets. Servers start inside each test, so
the looptime tests run heartbeat and fallback intervals on virtual time.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from system.broker.clock import loop_time
from system.gateway import (
    Gateway,
    GatewayServer,
    GatewaySettings,
    PortInUse,
    create_gateway,
    serve,
)
from system.gateway import server as server_module
from tests.unit.gateway.fakes import FakeFeed, FakeService

PRICES = {"005930": 80100, "000660": 182500}


@dataclass
class Stack:
    server: GatewayServer
    gateway: Gateway
    feed: FakeFeed
    service: FakeService


@asynccontextmanager
async def running(**settings: Any) -> AsyncIterator[Stack]:
    feed, service = FakeFeed(), FakeService(PRICES)
    app = create_gateway(service, feed, GatewaySettings(**settings))
    async with serve(app) as server:
        yield Stack(server, Gateway.of(app), feed, service)


@asynccontextmanager
async def client(stack: Stack, **options: Any) -> AsyncIterator[ClientConnection]:
    # No protocol pings from the client either: the gateway's JSON heartbeat is under test.
    async with connect(stack.server.ws_url, ping_interval=None, **options) as ws:
        yield ws


async def receive(ws: ClientConnection, kind: str, within: float = 2) -> dict[str, Any]:
    """The next message of type ``kind``, skipping others (pings, feed_status...)."""
    async with asyncio.timeout(within):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


async def until(condition: Callable[[], bool], within: float = 2) -> None:
    """Wait for a condition only the gateway's side can make true (it has no event to await)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def read_until_closed(ws: ClientConnection) -> None:
    """Read (and discard) until the connection closes; ``ConnectionClosed`` then."""
    while True:
        await ws.recv()


async def send(ws: ClientConnection, message: dict[str, Any] | str) -> None:
    await ws.send(message if isinstance(message, str) else json.dumps(message))


async def subscribe(ws: ClientConnection, ticker: str) -> None:
    await send(ws, {"type": "subscribe", "ticker": ticker})
    assert await receive(ws, "subscribed") == {"type": "subscribed", "ticker": ticker}


async def everything_before_a_pong(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every message queued for ``ws`` so far: the gateway's answer to a ping is queued
    behind them, and one client's messages arrive in order."""
    await send(ws, {"type": "ping"})
    seen = []
    async with asyncio.timeout(2):
        while (message := json.loads(await ws.recv()))["type"] != "pong":
            seen.append(message)
    return seen


async def test_connect_subscribe_price_and_unsubscribe() -> None:
    async with running() as stack, client(stack) as ws:
        assert json.loads(await ws.recv()) == {
            "type": "connected",
            "client_id": "c1",
            "heartbeat_interval_s": 15.0,
        }
        status = json.loads(await ws.recv())
        assert (status["type"], status["state"], status["stale"]) == ("feed_status", "live", False)
        await subscribe(ws, "005930")
        update = stack.feed.emit("005930", 80200, change=100, volume=12345)
        assert await receive(ws, "price_update") == {
            "type": "price_update",
            "ticker": "005930",
            "data": {
                "price": 80200,
                "change": 100,
                "change_rate": 0.12,
                "volume": 12345,
                "source": "feed",
                "stale": False,
                "at": update.at,
            },
        }
        await send(ws, {"type": "unsubscribe", "ticker": "005930"})
        assert await receive(ws, "unsubscribed") == {"type": "unsubscribed", "ticker": "005930"}
        await everything_before_a_pong(ws)
        assert stack.feed.calls == [("subscribe", "005930"), ("unsubscribe", "005930")]


async def test_only_subscribers_receive_a_tickers_prices() -> None:
    async with running() as stack, client(stack) as samsung, client(stack) as hynix:
        await subscribe(samsung, "005930")
        await subscribe(hynix, "000660")
        for price in (80100, 80200):
            stack.feed.emit("005930", price)
            await asyncio.sleep(0.01)  # one at a time: a newer price would replace a queued one
        stack.feed.emit("000660", 182600)
        got = [await everything_before_a_pong(ws) for ws in (samsung, hynix)]
        assert [[(m["ticker"], m["data"]["price"]) for m in g] for g in got] == [
            [("005930", 80100), ("005930", 80200)],
            [("000660", 182600)],
        ]


async def test_a_new_subscriber_gets_the_latest_price_at_once() -> None:
    async with running() as stack, client(stack) as first, client(stack) as late:
        await subscribe(first, "005930")
        stack.feed.emit("005930", 80700)
        await subscribe(late, "005930")
        assert (await receive(late, "price_update"))["data"]["price"] == 80700


async def test_bad_messages_get_errors_and_the_connection_survives() -> None:
    async with running(max_message_bytes=1024) as stack, client(stack) as ws:
        bad_messages: list[dict[str, Any] | str] = [
            "{not json",
            json.dumps({"type": "subscribe", "ticker": "005930", "pad": "x" * 2000}),
            {"type": "watch", "ticker": "005930"},
            {"type": "subscribe"},
            {"type": "subscribe", "ticker": "5930"},
        ]
        for bad in bad_messages:
            await send(ws, bad)
        errors = [m for m in await everything_before_a_pong(ws) if m["type"] == "error"]
        assert [(e["code"], e["message"][:40]) for e in errors] == [
            ("malformed_json", "message is not valid JSON (Expecting pro"),
            ("message_too_large", "message of 2052 bytes exceeds the limit "),
            ("unknown_type", 'unknown message type "watch": the gatewa'),
            ("missing_field", 'subscribe needs "ticker" or "topic", e.g'),
            ("invalid_ticker", '"5930" is not a ticker code: expected a '),
        ]
        await subscribe(ws, "005930")
        stack.feed.emit("005930", 80900)
        assert (await receive(ws, "price_update"))["data"]["price"] == 80900


async def test_a_client_that_reconnects_and_resubscribes_gets_prices_again() -> None:
    async with running() as stack:
        async with client(stack) as ws:
            await subscribe(ws, "005930")
        await until(lambda: not len(stack.gateway.manager))  # the gateway saw the close
        async with client(stack) as ws:
            assert (await receive(ws, "connected"))["client_id"] == "c2"
            await subscribe(ws, "005930")
            stack.feed.emit("005930", 81000)
            assert (await receive(ws, "price_update"))["data"]["price"] == 81000
            assert stack.feed.calls == [
                ("subscribe", "005930"),
                ("unsubscribe", "005930"),
                ("subscribe", "005930"),
            ]


TICKERS = [f"{n:06d}" for n in range(100, 120)]


@asynccontextmanager
async def fast_and_slow(stack: Stack) -> AsyncIterator[tuple[ClientConnection, ClientConnection]]:
    """Two clients subscribed to every one of TICKERS; the second never reads."""
    # A small receive window, so the slow client's TCP buffers fill quickly.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((stack.server.host, stack.server.port))
    sock.setblocking(False)
    async with (
        client(stack) as fast,
        # max_queue=1: websockets stops reading the socket after one unread message.
        # close_timeout: the test need not wait for a close handshake it cannot complete.
        client(stack, sock=sock, max_queue=1, close_timeout=0.1) as slow,
    ):
        for ticker in TICKERS:
            await subscribe(fast, ticker)
            await subscribe(slow, ticker)
        yield fast, slow


async def price_round(stack: Stack, fast: ClientConnection, price: int) -> float:
    """One price for each of TICKERS, one per loop step as a feed reading frames does; the
    fast client must receive every one. Returns how long that took."""
    sent_at = loop_time()
    for ticker in TICKERS:
        stack.feed.emit(ticker, price)
        await asyncio.sleep(0)
    got = [await receive(fast, "price_update") for _ in TICKERS]
    assert [(m["ticker"], m["data"]["price"]) for m in got] == [(t, price) for t in TICKERS]
    return loop_time() - sent_at


async def test_a_slow_client_does_not_delay_the_others() -> None:
    async with (
        running(client_queue_size=8, saturation_close_s=600) as stack,
        fast_and_slow(stack) as (fast, _),
    ):
        fast_client, slow_client = map(stack.gateway.manager.client, ("c1", "c2"))
        assert fast_client is not None
        assert slow_client is not None
        # The kernel's buffers take the slow client's first few hundred kilobytes; its queue
        # overflows once they are full.
        rounds, slowest = 0, 0.0
        while not slow_client.dropped:
            assert rounds < 5000, "the slow client's queue never overflowed"
            slowest = max(slowest, await price_round(stack, fast, 10000 + rounds))
            rounds += 1
        dropped = slow_client.dropped
        for n in range(rounds, rounds + 50):
            slowest = max(slowest, await price_round(stack, fast, 10000 + n))
        # Queued by ticker, twenty tickers never fit in eight places: every price drops one.
        assert slow_client.dropped == dropped + 50 * len(TICKERS)
        assert (fast_client.dropped, fast_client.coalesced) == (0, 0)
        assert stack.gateway.manager.totals.messages_dropped == slow_client.dropped
        assert slowest < 0.5, f"the fast client waited {slowest:.3f} s for a round"
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(stack.server.url + "/metrics")).text
        assert f"gateway_messages_dropped_total {float(slow_client.dropped)}" in metrics


async def test_a_client_saturated_for_too_long_is_closed_and_forgotten(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        running(client_queue_size=4, saturation_close_s=0.5, close_timeout_s=0.2) as stack,
        fast_and_slow(stack) as (fast, slow),
    ):
        async with asyncio.timeout(10):
            n = 0
            while not stack.gateway.manager.totals.closed_saturated:
                n += 1
                await price_round(stack, fast, 10000 + n)
        assert stack.gateway.manager.client_ids == ("c1",)  # the fast one
        assert stack.gateway.manager.topics() == {ticker: 1 for ticker in TICKERS}
        # A client that does not read cannot take a close frame: after close_timeout_s the
        # gateway aborts the connection (1006 here: no close frame ever arrived).
        await asyncio.sleep(0.5)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(read_until_closed(slow), 5)
        assert slow.close_code == 1006
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 2
        assert re.fullmatch(
            r"gateway: closing client c2: send queue overflowed for \d+\.\d s \(\d+ messages "
            r"dropped\): read faster or subscribe to fewer tickers",
            warnings[0],
        )
        assert warnings[1] == (
            "gateway: client c2 did not take its close frame within 0.2 s; aborting"
        )


@pytest.mark.looptime
async def test_heartbeats_close_a_client_that_never_pongs() -> None:
    async with (
        running(heartbeat_interval_s=10, pong_timeout_s=30) as stack,
        client(stack) as silent,
        client(stack) as answering,
    ):
        await subscribe(silent, "005930")
        await subscribe(answering, "005930")
        start = loop_time()

        async def answer_pings() -> None:
            while True:
                message = json.loads(await answering.recv())
                if message["type"] == "ping":
                    await send(answering, {"type": "pong", "ts": message["ts"]})

        answering_task = asyncio.create_task(answer_pings())
        try:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(read_until_closed(silent), 60)
            # Rounds run every 10 s from the start; at 30 s the client, connected just after
            # the start, is not quite 30 s silent; at 40 s it is.
            assert loop_time() - start == pytest.approx(40, abs=0.5)
            assert (silent.close_code, silent.close_reason) == (
                1011,
                "no pong for 30 s: heartbeat timeout",
            )
            await asyncio.sleep(55)
            assert len(stack.gateway.manager) == 1
            assert stack.gateway.manager.topics() == {"005930": 1}
            assert stack.gateway.manager.totals.closed_stale == 1
            assert stack.gateway.heartbeat.pongs_received == 9  # to pings at 10, 20, ... 90 s
        finally:
            answering_task.cancel()
            await asyncio.gather(answering_task, return_exceptions=True)


@pytest.mark.looptime
async def test_rest_fallback_marks_prices_stale_while_the_feed_reconnects() -> None:
    async with running(rest_fallback_interval_s=5) as stack, client(stack) as ws:
        await subscribe(ws, "005930")
        stack.feed.emit("005930", 80200)
        assert (await receive(ws, "price_update"))["data"]["stale"] is False
        start = loop_time()
        stack.feed.set_state("reconnecting", "connection reset by peer")
        status = await receive(ws, "feed_status")
        assert (status["state"], status["stale"], status["detail"]) == (
            "reconnecting",
            True,
            "connection reset by peer",
        )
        rest = [await receive(ws, "price_update", within=30) for _ in range(3)]
        assert [
            (round(m["data"]["at"] - start, 3), m["data"]["price"], m["data"]["source"])
            for m in rest
        ] == [(0.0, 80100, "rest"), (5.0, 80100, "rest"), (10.0, 80100, "rest")]
        assert all(m["data"]["stale"] is True for m in rest)
        async with httpx.AsyncClient() as http:
            health = (await http.get(stack.server.url + "/health")).json()
        assert (health["state"], health["feed"]["feed_state"]) == ("degraded", "reconnecting")
        stack.feed.set_state("live")
        stack.feed.emit("005930", 80300)
        fresh = await receive(ws, "price_update")
        assert (fresh["data"]["price"], fresh["data"]["stale"]) == (80300, False)
        calls = len(stack.service.calls)
        await asyncio.sleep(30)
        assert len(stack.service.calls) == calls == 3  # no REST quotes once live


async def test_health_and_metrics_over_http() -> None:
    async with running() as stack, client(stack) as ws, httpx.AsyncClient() as http:
        await subscribe(ws, "005930")
        health = await http.get(stack.server.url + "/health")
        assert health.status_code == 200
        body = health.json()
        assert (body["state"], body["gateway"]["connections"], body["feed"]["subscriptions"]) == (
            "healthy",
            1,
            ["005930"],
        )
        stack.service.state, stack.service.reasons = "unhealthy", ("no usable access token",)
        unhealthy = await http.get(stack.server.url + "/health")
        assert (unhealthy.status_code, unhealthy.json()["reasons"]) == (
            503,
            ["no usable access token"],
        )
        metrics = await http.get(stack.server.url + "/metrics")
        assert metrics.headers["content-type"].startswith("text/plain; version=")
        lines = set(metrics.text.splitlines())
        for line in [
            "gateway_connections 1.0",
            'gateway_topic_subscribers{topic="005930"} 1.0',
            "gateway_health_state 2.0",
            "service_quotes_served 0.0",
            "feed_messages 1.0",
        ]:
            assert line in lines, line


async def test_the_dashboard_is_served_with_its_script_and_stylesheet() -> None:
    async with running() as stack, httpx.AsyncClient(base_url=stack.server.url) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
        assert assets == ["/static/dashboard.css", "/static/dashboard.js"]
        for path in assets:
            response = await http.get(path)
            assert response.status_code == 200, path
        script = (await http.get("/static/dashboard.js")).text
        for testid in ["connection-state", "stale-badge", "error-message", "ticker-input"]:
            assert f'data-testid="{testid}"' in page.text
        assert 'send({ type: "pong", ts: message.ts })' in script


async def test_a_taken_port_is_reported_with_what_to_do() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = create_gateway(FakeService(), FakeFeed())
        with pytest.raises(PortInUse) as caught:
            async with serve(app, "127.0.0.1", port):
                pass
    assert caught.value.port == port
    assert str(caught.value.strerror) == (
        f"port {port} on 127.0.0.1 is already in use, so the gateway cannot listen there. "
        f"Stop whatever holds it (`ss -ltnp 'sport = :{port}'` shows the process) or choose "
        "another port with --port (--port 0 picks a free one)"
    )


async def test_the_send_buffer_setting_reaches_the_listening_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # serve() is not told: it takes the setting from the gateway behind the app.
    sizes: list[int] = []
    bind = server_module.bind

    def spy(host: str, port: int, *, send_buffer_bytes: int | None = None) -> socket.socket:
        sock = bind(host, port, send_buffer_bytes=send_buffer_bytes)
        sizes.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
        return sock

    monkeypatch.setattr(server_module, "bind", spy)
    async with running(send_buffer_bytes=100_000):
        pass
    async with running():
        pass
    # Linux doubles what it is given (bookkeeping); the default starts far lower.
    assert sizes[0] >= 100_000 > sizes[1]
