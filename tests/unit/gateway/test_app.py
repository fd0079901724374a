"""The app's routes without sockets: httpx's ASGI transport for HTTP, and ASGI messages
exchanged in memory for /ws."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from system.gateway import Gateway, create_gateway
from system.gateway.app import origin_allowed
from tests.unit.gateway.fakes import FakeFeed, FakeService


def client_for(gateway: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(gateway.app), base_url="http://gw")


async def test_the_page_is_served_with_its_script_and_stylesheet(gateway: Gateway) -> None:
    async with client_for(gateway) as http:
        page = await http.get("/")
        script = await http.get("/static/dashboard.js")
        style = await http.get("/static/dashboard.css")
    assert page.status_code == script.status_code == style.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script src="/static/dashboard.js" defer></script>' in page.text
    assert '<link rel="stylesheet" href="/static/dashboard.css">' in page.text
    assert 'data-testid="connection-state"' in page.text
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "new WebSocket(`${scheme}://${location.host}/ws`)" in script.text
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert "connect-src 'self'" in page.headers["content-security-policy"]


async def test_health_and_metrics_routes(gateway: Gateway) -> None:
    async with client_for(gateway) as http:
        health = await http.get("/health")
        metrics = await http.get("/metrics")
    assert (health.status_code, health.json()["state"]) == (200, "healthy")
    assert metrics.headers["content-type"].startswith("text/plain; version=")
    assert "gateway_connections 0.0" in metrics.text.splitlines()


async def test_health_is_503_before_the_lifespan_started() -> None:
    app = create_gateway(FakeService(), FakeFeed())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as h:
        response = await h.get("/health")
    assert (response.status_code, response.json()["gateway"]["state"]) == (503, "unhealthy")


def test_gateway_of_a_foreign_app_says_so() -> None:
    with pytest.raises(LookupError, match="not made by create_gateway"):
        Gateway.of(FastAPI())


class InMemoryWebSocket:
    """A /ws client speaking ASGI directly to the app: no socket, no thread, the test's loop."""

    def __init__(self, app: FastAPI, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        self.to_app: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self.from_app: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def handshake(self) -> MutableMapping[str, Any]:
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "path": "/ws",
            "raw_path": b"/ws",
            "query_string": b"",
            "root_path": "",
            "scheme": "ws",
            "headers": [(b"host", b"gw.test:8080"), *self.headers],
            "server": ("gw.test", 8080),
            "client": ("127.0.0.1", 50000),
            "subprotocols": [],
            "extensions": {"websocket.http.response": {}},
        }
        self.task = asyncio.create_task(self.app(scope, self.to_app.get, self.from_app.put))
        await self.to_app.put({"type": "websocket.connect"})
        return await self.from_app.get()

    async def send(self, **message: Any) -> None:
        await self.to_app.put({"type": "websocket.receive", **message})

    async def receive_json(self) -> Any:
        message = await asyncio.wait_for(self.from_app.get(), 1)
        assert message["type"] == "websocket.send", message
        return json.loads(message["text"])

    async def disconnect(self) -> None:
        await self.to_app.put({"type": "websocket.disconnect", "code": 1000})
        assert self.task is not None
        await asyncio.wait_for(self.task, 1)


async def test_the_websocket_greets_reports_the_feed_and_survives_errors(
    gateway: Gateway,
) -> None:
    ws = InMemoryWebSocket(gateway.app)
    assert (await ws.handshake())["type"] == "websocket.accept"
    assert await ws.receive_json() == {
        "type": "connected",
        "client_id": "c1",
        "heartbeat_interval_s": 15.0,
    }
    assert (await ws.receive_json())["type"] == "feed_status"
    await ws.send(bytes=b"\x00")
    assert (await ws.receive_json())["message"].startswith("binary message ignored: send JSON")
    await ws.send(text="{")
    assert (await ws.receive_json())["code"] == "malformed_json"
    await ws.send(text='{"type":"subscribe","ticker":"005930"}')
    assert await ws.receive_json() == {"type": "subscribed", "ticker": "005930"}
    assert gateway.manager.topics() == {"005930": 1}
    await ws.disconnect()
    assert (gateway.manager.topics(), len(gateway.manager)) == ({}, 0)


async def test_a_foreign_origin_is_refused_with_what_to_do(gateway: Gateway) -> None:
    ws = InMemoryWebSocket(gateway.app, {"origin": "https://evil.example"})
    start = await ws.handshake()
    body = await ws.from_app.get()
    assert (start["type"], start["status"]) == ("websocket.http.response.start", 403)
    assert body["body"].decode() == (
        "origin https://evil.example may not open /ws on this gateway: serve the page from "
        "the gateway itself, or add the origin to SQUALL_GATEWAY_ALLOWED_ORIGINS "
        "(comma-separated)"
    )
    assert len(gateway.manager) == 0
    own = InMemoryWebSocket(gateway.app, {"origin": "http://gw.test:8080"})
    assert (await own.handshake())["type"] == "websocket.accept"
    await own.disconnect()


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        (None, (), True),  # not a browser
        ("http://127.0.0.1:8080", (), True),  # the gateway's own page
        ("http://127.0.0.1:9999", (), False),
        ("https://desk.example", ("https://desk.example",), True),
        ("https://desk.example/", ("https://desk.example",), True),
        ("https://evil.example", ("https://desk.example",), False),
        ("https://evil.example", ("*",), True),
        ("null", (), False),  # sandboxed frames and file:// pages
    ],
)
def test_origin_rules(origin: str | None, allowed: tuple[str, ...], expected: bool) -> None:
    assert origin_allowed(origin, "127.0.0.1:8080", allowed) is expected


async def test_the_page_shows_the_halt_and_offers_the_kill_switch(gateway: Gateway) -> None:
    async with client_for(gateway) as http:
        page = (await http.get("/")).text
        script = (await http.get("/static/dashboard.js")).text
    assert 'data-testid="halt-state"' in page
    assert 'data-testid="kill-switch"' in page
    token_input = re.search(r'<input[^>]*data-testid="operator-token"[^>]*>', page)
    assert token_input is not None
    assert 'type="password"' in token_input.group()
    # The halt is read with the orders, positions and P&L, once a second.
    assert "const TRADING_EVERY_MS = 1000;" in script
    assert "setInterval(pollTrading, TRADING_EVERY_MS);" in script
    assert 'fetch("/api/trading", { cache: "no-store" })' in script
    assert "showHalt(body.halt);" in script
    assert "Authorization: `Bearer ${token}`" in script
    # The token lives in its field only: the one thing the page stores is the ticker list.
    assert script.count("Storage.setItem(") == 1
    assert "localStorage.setItem(STORAGE_KEY, JSON.stringify(state.tickers))" in script
    assert "sessionStorage" not in script
    assert "document.cookie" not in script


async def test_the_page_has_tables_for_orders_and_positions_and_a_pnl_line(
    gateway: Gateway,
) -> None:
    async with client_for(gateway) as http:
        page = (await http.get("/")).text
        script = (await http.get("/static/dashboard.js")).text
    for testid in [
        "pnl",
        "trading-mode",
        "pnl-realised-today",
        "pnl-realised-total",
        "pnl-unrealised",
        "positions-card",
        "position-rows",
        "orders-card",
        "order-rows",
    ]:
        assert f'data-testid="{testid}"' in page, testid
    # Hidden until /api/trading says there is a desk to show.
    for card in ("positions-card", "orders-card"):
        tag = re.search(rf'<section[^>]*data-testid="{card}"[^>]*>', page)
        assert tag is not None, card
        assert " hidden" in tag.group(), card
    # What the gateway sends is put on the page as text, never parsed as HTML.
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script
