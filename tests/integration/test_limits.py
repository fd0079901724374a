"""Every HTTP and WebSocket surface refuses what is over its limit, over real loopback
sockets, and goes on serving everyone else: 413 for a request body, 431 for a request head,
1009 for a WebSocket message (the README's "Limits" table lists them all).

The gateway runs around the in-memory fakes of its unit tests; the mocks are the real
ones, served as ``squall up`` serves them (``mocks.server.serve``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from mocks.broker import BrokerConfig, create_app
from mocks.feed import FeedConfig, serve_feed
from mocks.limits import MAX_BODY_BYTES, MAX_HEAD_BYTES, MAX_WS_MESSAGE_BYTES
from mocks.proxy import ProxyConfig, serve_proxy
from mocks.server import serve as serve_mock
from system.gateway import Gateway, GatewayServer, GatewaySettings, create_gateway, serve
from tests.unit.gateway.fakes import FakeDesk, FakeFeed, FakeService

TOKEN = "op-Zq8wJ1mV4rT7yB2nK5xC"
COMMAND = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
GATEWAY = GatewaySettings()
DECLARED = 100 * 1024 * 1024  # what an oversized upload claims; never sent
APPROVAL_KEY = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


@dataclass
class Running:
    server: GatewayServer
    gateway: Gateway
    feed: FakeFeed
    desk: FakeDesk


@asynccontextmanager
async def gateway() -> AsyncIterator[Running]:
    feed, desk = FakeFeed(), FakeDesk()
    settings = GatewaySettings(operator_token=TOKEN)
    app = create_gateway(FakeService({"005930": 80100}), feed, settings, kill_switch=desk)
    async with serve(app) as server:
        yield Running(server, Gateway.of(app), feed, desk)


async def head_only(url: str, path: str, length: int) -> tuple[int, dict[str, Any]]:
    """POST the head of a request declaring ``length`` bytes of body, send none of it, and
    return the answer: a server that waited for the body would never give one."""
    address = urlsplit(url)
    assert address.hostname is not None
    assert address.port is not None
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nhost: {address.netloc}\r\n"
            f"content-type: application/json\r\ncontent-length: {length}\r\n\r\n".encode()
        )
        async with asyncio.timeout(5):
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            status = int(head.split()[1])
            size = int(head.split("content-length:")[1].split()[0])
            body: dict[str, Any] = json.loads(await reader.readexactly(size))
        return status, body
    finally:
        writer.close()


async def endless_header(url: str, most: int) -> tuple[int, int]:
    """Send a header that never ends, 8 KiB at a time, until the server answers (or
    ``most`` bytes went out); the answer's status and how many bytes had gone out."""
    address = urlsplit(url)
    assert address.hostname is not None
    assert address.port is not None
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(f"GET /health HTTP/1.1\r\nhost: {address.netloc}\r\nx-filler: ".encode())
        answer = asyncio.ensure_future(reader.readuntil(b"\r\n"))
        sent = 0
        while not answer.done() and sent < most:
            writer.write(b"a" * 8192)
            await writer.drain()
            sent += 8192
            await asyncio.sleep(0.002)  # one read per piece, as a slow client gives them
        async with asyncio.timeout(5):
            status_line = await answer
        return int(status_line.split()[1]), sent
    finally:
        writer.close()


async def pieces(size: int, piece: int = 16 * 1024) -> AsyncIterator[bytes]:
    """``size`` bytes of JSON-ish padding as a chunked upload (no Content-Length)."""
    for start in range(0, size, piece):
        yield b" " * min(piece, size - start)


def huge_header() -> dict[str, str]:
    return {"x-filler": "a" * (max(GATEWAY.max_header_bytes, MAX_HEAD_BYTES) + 1)}


async def refused_with_1009(ws: ClientConnection, size: int) -> str:
    """Send a text message of ``size`` bytes; the close reason the server gives, once it
    has closed the connection with 1009 (message too big)."""
    await ws.send("x" * size)
    with pytest.raises(ConnectionClosedError) as closed:
        await read_until_closed(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    return closed.value.rcvd.reason


async def read_until_closed(ws: ClientConnection) -> None:
    async with asyncio.timeout(5):
        while True:
            await ws.recv()


# -- the gateway ---------------------------------------------------------------------------


async def test_the_gateway_answers_413_to_a_body_over_its_limit() -> None:
    limit = GATEWAY.max_body_bytes
    async with gateway() as running, httpx.AsyncClient(base_url=running.server.url) as http:
        # Refused before a byte of the body comes, and before the token is looked at.
        status, body = await head_only(running.server.url, "/api/kill-switch", DECLARED)
        assert (status, body) == (
            413,
            {
                "error": f"the request body is {DECLARED} bytes; this gateway takes at most "
                f"{limit} bytes (SQUALL_GATEWAY_MAX_BODY_BYTES): send a smaller body"
            },
        )
        chunked = await http.post("/api/kill-switch", content=pieces(limit * 4), headers=COMMAND)
        assert chunked.status_code == 413
        assert chunked.json()["error"].startswith(f"the request body passed {limit} bytes; ")
        assert running.desk.calls == []
        engaged = await http.post("/api/kill-switch", json={"engaged": True}, headers=COMMAND)
        assert engaged.status_code == 200, engaged.text


async def test_the_gateway_answers_431_to_a_head_over_its_limit() -> None:
    async with gateway() as running:
        async with httpx.AsyncClient(base_url=running.server.url) as http:
            refused = await http.get("/health", headers=huge_header())
        assert refused.status_code == 431
        assert refused.json()["error"] == (
            f"the request line and headers passed {GATEWAY.max_header_bytes} bytes, the most "
            "this gateway reads (SQUALL_GATEWAY_MAX_HEADER_BYTES): send fewer or shorter headers"
        )
        # One that never ends is refused as soon as it passes the limit, not held.
        status, sent = await endless_header(running.server.url, most=4 * 1024 * 1024)
        assert status == 431
        assert sent <= GATEWAY.max_header_bytes + 64 * 1024
        with pytest.raises(InvalidStatus) as handshake:
            async with connect(running.server.ws_url, additional_headers=huge_header()):
                pass
        assert handshake.value.response.status_code == 431
        async with httpx.AsyncClient(base_url=running.server.url) as http:
            assert (await http.get("/health")).status_code == 200


async def test_an_oversized_ws_message_closes_only_its_connection_with_1009() -> None:
    async with (
        gateway() as running,
        connect(running.server.ws_url, ping_interval=None) as bystander,
        connect(running.server.ws_url, ping_interval=None) as flooder,
    ):
        await refused_with_1009(flooder, GATEWAY.max_frame_bytes + 1)
        await bystander.send(json.dumps({"type": "subscribe", "ticker": "005930"}))
        running.feed.emit("005930", 80500)
        kinds: list[str] = []
        async with asyncio.timeout(5):
            while "price_update" not in kinds:
                kinds.append(json.loads(await bystander.recv())["type"])
        assert "subscribed" in kinds
        assert len(running.gateway.manager) == 1


# -- the mocks -----------------------------------------------------------------------------


async def test_the_mock_broker_and_its_control_plane_answer_413_and_431() -> None:
    async with (
        serve_mock(create_app(BrokerConfig())) as broker,
        httpx.AsyncClient(base_url=broker.url) as http,
    ):
        for path in ("/oauth2/tokenP", "/_squall/faults"):
            status, body = await head_only(broker.url, path, DECLARED)
            assert status == 413, path
            assert body == {
                "detail": f"the request body is {DECLARED} bytes; the mock takes at most "
                f"{MAX_BODY_BYTES} bytes (mocks.limits.MAX_BODY_BYTES): send a smaller body"
            }
            chunked = await http.post(path, content=pieces(MAX_BODY_BYTES * 4))
            assert chunked.status_code == 413, path
        refused = await http.get("/_squall/health", headers=huge_header())
        assert refused.status_code == 431
        assert refused.json()["detail"].startswith(
            f"the request line and headers passed {MAX_HEAD_BYTES} bytes"
        )
        status, sent = await endless_header(broker.url, most=4 * 1024 * 1024)
        assert status == 431
        assert sent <= MAX_HEAD_BYTES + 64 * 1024
        assert (await http.get("/_squall/faults")).json() == []  # nothing slipped through
        assert (await http.get("/_squall/health")).status_code == 200


async def test_the_proxy_control_plane_answers_413() -> None:
    # The proxy needs no upstream for its control plane to answer.
    async with serve_proxy(ProxyConfig(upstream_host="127.0.0.1", upstream_port=9)) as proxy:
        status, body = await head_only(proxy.control_url, "/_squall/faults", DECLARED)
        assert status == 413
        assert "mocks.limits.MAX_BODY_BYTES" in body["detail"]


async def test_the_mock_feed_closes_an_oversized_message_with_1009_and_serves_the_rest() -> None:
    subscribe = {
        "header": {
            "approval_key": APPROVAL_KEY,
            "custtype": "P",
            "tr_type": "1",
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}},
    }
    async with serve_feed(FeedConfig()) as feed:
        url = feed.ws_url + "/tryitout"
        async with connect(url) as bystander, connect(url) as flooder:
            await refused_with_1009(flooder, MAX_WS_MESSAGE_BYTES + 1)
            await bystander.send(json.dumps(subscribe))
            async with asyncio.timeout(5):
                while not (answer := await bystander.recv()).startswith("{"):
                    pass
            assert json.loads(answer)["body"]["msg_cd"] == "OPSP0000"
        status, _ = await head_only(feed.url, "/_squall/feed/signals", DECLARED)
        assert status == 413
