"""Several gateways, one deployment: signals shared through a real ``redis-server``.

Two gateway apps, each on its own port with its own clients and its own Redis connections,
as two processes would be. A signal one gateway publishes reaches the other's clients; when
Redis goes away both say so on ``/health`` and keep serving their own clients, and when it
comes back they share again by themselves. Real time: Redis is a process outside the loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect

from harness.redis_server import RedisNotInstalled, RedisServer, redis_server
from system.gateway import Gateway, GatewayServer, GatewaySettings, create_gateway, serve
from system.gateway.fanout import RedisFanout
from tests.unit.gateway.fakes import FakeFeed, FakeService

FAST = {"fanout_channel": "squall:test-signals"}


@pytest.fixture
def server() -> Iterator[RedisServer]:
    try:
        with redis_server() as running:
            yield running
    except RedisNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)


@dataclass
class Node:
    server: GatewayServer
    gateway: Gateway

    async def health(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"{self.server.url}/health")
        body: dict[str, Any] = answer.json()
        return body


@asynccontextmanager
async def gateways(
    url: str, count: int = 2, ping_interval_s: float = 5.0
) -> AsyncIterator[list[Node]]:
    async with AsyncExitStack() as stack:
        nodes = []
        for _ in range(count):
            app = create_gateway(
                FakeService({"005930": 80100}),
                FakeFeed(),
                GatewaySettings(redis_url=url, **FAST),  # type: ignore[arg-type]
            )
            gateway = Gateway.of(app)
            assert gateway.fanout is not None
            gateway.fanout.reconnect_base_s = gateway.fanout.reconnect_max_s = 0.2
            gateway.fanout.ping_interval_s = ping_interval_s
            nodes.append(Node(await stack.enter_async_context(serve(app)), gateway))
        await until(lambda: all(_mode(n) == "shared" for n in nodes))
        yield nodes


def _mode(node: Node) -> str:
    assert node.gateway.fanout is not None
    return node.gateway.fanout.state


@asynccontextmanager
async def subscriber(node: Node) -> AsyncIterator[ClientConnection]:
    async with connect(node.server.ws_url, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "topic": "signals"}))
        await until(lambda: node.gateway.manager.subscribers("signals") != frozenset())
        yield ws


async def signals(ws: ClientConnection, within: float = 3) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] == "signal":
                return message


async def no_signal(ws: ClientConnection, within: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        await signals(ws, within)


async def until(condition: Callable[[], bool], within: float = 10) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_a_signal_reaches_the_clients_of_every_gateway_once(server: RedisServer) -> None:
    async with (
        gateways(server.url, 3) as (a, b, c),
        subscriber(a) as on_a,
        subscriber(b) as on_b,
        subscriber(c) as on_c,
    ):
        a.gateway.signals.publish({"kind": "breakout", "code": "005930", "price": 80100})
        for ws in (on_a, on_b, on_c):
            got = await signals(ws)
            assert got["kind"] == "breakout"
            assert got["data"]["code"] == "005930"
        # Once each: the origin skips its own message coming back from the channel.
        await no_signal(on_a)
        assert a.gateway.fanout is not None
        assert b.gateway.fanout is not None
        assert a.gateway.fanout.counters.shared == 1
        assert b.gateway.fanout.counters.received == 1
        # A client connecting to b later gets the shared signal in b's replay.
        assert b.gateway.signals.recent()[-1]["data"]["price"] == 80100
        health = await b.health()
        assert health["fanout"] == {"state": "healthy", "reasons": [], "mode": "shared"}


async def test_redis_outage_degrades_to_local_only_and_recovers(server: RedisServer) -> None:
    async with gateways(server.url) as (a, b), subscriber(a) as on_a, subscriber(b) as on_b:
        server.stop()
        await until(lambda: _mode(a) == "local-only" and _mode(b) == "local-only")
        health = await a.health()
        assert health["state"] == "degraded"  # still serving: 200, not 503
        assert health["fanout"]["mode"] == "local-only"
        (reason,) = health["fanout"]["reasons"]
        assert f"Redis at 127.0.0.1:{server.port}/0 unreachable" in reason
        assert "signals reach this gateway's clients only" in reason

        a.gateway.signals.publish({"kind": "vcp", "code": "000660"})
        assert (await signals(on_a))["kind"] == "vcp"  # local clients never wait for Redis
        await no_signal(on_b)
        assert a.gateway.fanout is not None
        assert a.gateway.fanout.counters.not_shared == 1

        server.start()  # same port, by itself from here on
        await until(lambda: _mode(a) == "shared" and _mode(b) == "shared")
        assert (await b.health())["fanout"]["mode"] == "shared"
        a.gateway.signals.publish({"kind": "closing-bet", "code": "035720"})
        assert (await signals(on_b))["kind"] == "closing-bet"
        assert a.gateway.fanout.counters.outages == 1


async def test_a_gateway_started_without_redis_serves_and_joins_later(
    server: RedisServer,
) -> None:
    server.stop()
    app = create_gateway(
        FakeService({}),
        FakeFeed(),
        GatewaySettings(redis_url=server.url, **FAST),  # type: ignore[arg-type]
    )
    async with serve(app) as served:
        node = Node(served, Gateway.of(app))
        assert node.gateway.fanout is not None
        node.gateway.fanout.reconnect_base_s = node.gateway.fanout.reconnect_max_s = 0.2
        await until(lambda: _mode(node) == "local-only")
        assert (await node.health())["fanout"]["state"] == "degraded"
        server.start()
        await until(lambda: _mode(node) == "shared")


async def test_a_foreign_message_on_the_channel_is_dropped_and_counted(
    server: RedisServer,
) -> None:
    async with gateways(server.url) as (a, b), subscriber(b) as on_b:
        publisher = aioredis.Redis.from_url(server.url)
        try:
            await publisher.publish(FAST["fanout_channel"], b"\xff not json")
            await publisher.publish(FAST["fanout_channel"], json.dumps({"origin": "x"}))
        finally:
            await publisher.aclose()
        assert b.gateway.fanout is not None
        fanout = b.gateway.fanout
        await until(lambda: fanout.counters.malformed == 2)
        a.gateway.signals.publish({"kind": "breakout", "code": "005930"})
        assert (await signals(on_b))["kind"] == "breakout"  # the subscription went on
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{b.server.url}/metrics")).text
        assert "gateway_fanout_malformed_total 2.0" in metrics


async def test_a_paused_redis_is_noticed_when_a_signal_cannot_be_shared(
    server: RedisServer,
) -> None:
    # The ping interval bounds a publish (twice it) to a server that stopped answering.
    async with gateways(server.url, ping_interval_s=0.5) as (a, _):
        server.pause()
        try:
            a.gateway.signals.publish({"kind": "breakout", "code": "005930"})
            await until(lambda: _mode(a) == "local-only", within=20)
        finally:
            server.resume()
        await until(lambda: _mode(a) == "shared", within=20)


async def test_a_gateway_without_redis_cannot_reach_it_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Port 9 (discard) is closed on loopback: the first connection fails at once.
    fanout = RedisFanout("redis://:hunter2-secret@127.0.0.1:9/0", lambda _: None)
    fanout.reconnect_base_s = fanout.reconnect_max_s = 0.05
    with caplog.at_level(logging.WARNING):
        async with fanout:
            await until(lambda: fanout.state == "local-only")
    assert fanout.state == "local-only"
    (reason,) = fanout.health().reasons
    assert "Redis at 127.0.0.1:9/0 unreachable" in reason
    assert "ConnectionError" in reason
    assert fanout.counters.outages == 0  # never shared, so never lost
    assert "cannot reach Redis at 127.0.0.1:9/0" in caplog.text
    assert "hunter2" not in caplog.text
