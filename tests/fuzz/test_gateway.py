"""The gateway's surfaces under fuzzed input: its REST bodies and headers, and its
WebSocket client messages over a real socket.

REST: every answer is a documented status with a JSON ``{"error": ...}`` body saying what is
wrong, never a 500; the operator token never comes back in an answer; and nothing changes
(no halt, no release, no order) unless the request carried the token.
WebSocket: every message gets a documented answer (or, past the size limit, a 1009 close
of that connection alone), and another client is served throughout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from system.broker.models import OrderAck, OrderRequest
from system.gateway import Gateway, GatewaySettings, create_gateway
from system.gateway.protocol import ErrorCode
from system.gateway.server import serve
from tests.fuzz.strategies import HEADER_VALUES, JSON_VALUES, TEXT, bodies, mostly, variants
from tests.unit.gateway.fakes import FakeDesk, FakeFeed, FakeService

TOKEN = "op-fuzz-Zq8wJ1mV4rT7yB2nK5xC"
ORDER = {"client_order_id": "fz-1", "side": "buy", "code": "005930", "quantity": 2}
COMMAND = {"engaged": True, "detail": "fuzz"}
ROUTES = [
    ("GET", "/health", None),
    ("GET", "/metrics", None),
    ("GET", "/api/orders", None),
    ("GET", "/api/trading", None),
    ("GET", "/api/kill-switch", None),
    ("POST", "/api/kill-switch", COMMAND),
    ("POST", "/api/kill-switch", {"engaged": False}),
    ("GET", "/api/quotes/005930", None),
    ("POST", "/api/orders", ORDER),
    ("GET", "/", None),
]
# What the gateway's REST answers may be: each a documented refusal or a success.
STATUSES = {200, 201, 202, 400, 401, 403, 404, 405, 409, 413, 415, 422, 503}


class Placer(FakeService):
    """A service that takes every order it is given, and remembers it."""

    def __init__(self) -> None:
        super().__init__({"005930": 80100})
        self.placed: list[OrderRequest] = []

    async def place_order(self, order: OrderRequest) -> OrderAck:
        self.placed.append(order)
        return OrderAck(order.client_order_id, "0000012345", "91252", "090102")


@st.composite
def rest_requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], bytes]:
    method, path, valid = draw(st.sampled_from(ROUTES))
    if draw(st.integers(0, 7)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
        path = draw(st.sampled_from([path, "/api/quotes/", "/api/quotes/%00", "/api/x"]))
    if path.startswith("/api/quotes/") and draw(st.booleans()):
        path = "/api/quotes/" + draw(
            st.sampled_from(["5930", "００５９３０", "005930%0A", "abcdef"])
        )
    headers: dict[str, Any] = {
        "authorization": draw(
            mostly(
                f"Bearer {TOKEN}",
                st.sampled_from([None, TOKEN, f"bearer {TOKEN}", f"Bearer {TOKEN}x", "Bearer "])
                | HEADER_VALUES,
            )
        ),
        "content-type": draw(
            mostly("application/json", st.sampled_from([None, "text/plain"]) | HEADER_VALUES)
        ),
    }
    body = draw(bodies(variants(valid) if valid else JSON_VALUES))
    return method, path, {k: v for k, v in headers.items() if v is not None}, body


@given(request=rest_requests())
async def test_every_rest_answer_is_documented_and_nothing_changes_without_the_token(
    request: tuple[str, str, dict[str, Any], bytes],
) -> None:
    method, path, headers, body = request
    # A fresh gateway per example: whether this request changed anything must be judged
    # against a known start, not against what earlier examples did.
    service, desk = Placer(), FakeDesk()
    gateway = Gateway(service, FakeFeed(), GatewaySettings(operator_token=TOKEN), kill_switch=desk)
    transport = httpx.ASGITransport(gateway.app, client=("127.0.0.1", 40000))
    await gateway.start()
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=10) as http:
            answer = await http.request(method, path, headers=headers, content=body)
    finally:
        await gateway.stop()
    event(f"{method} {path.split('/')[-1][:12]} → {answer.status_code}")
    assert answer.status_code in STATUSES, answer.text
    assert TOKEN not in answer.text, "the operator token came back in an answer"
    if answer.status_code >= 400 and method != "HEAD" and path != "/health":
        problem = answer.json()
        assert isinstance(problem.get("error") or problem.get("detail"), str), problem
    # The scheme is case-insensitive (RFC 9110), the token itself is not.
    scheme, _, presented = str(headers.get("authorization", "")).strip().partition(" ")
    authorized = scheme.lower() == "bearer" and presented.strip() == TOKEN
    if not authorized:
        assert desk.calls == [], f"changed the kill switch without the token: {desk.calls}"
        assert service.placed == [], "placed an order without the token"


@pytest.fixture
async def gateway_server() -> AsyncIterator[str]:
    app = create_gateway(
        FakeService({"005930": 80100, "000660": 182500}),
        FakeFeed(),
        GatewaySettings(max_message_bytes=4096, heartbeat_interval_s=3600, pong_timeout_s=7200),
    )
    async with serve(app) as server:
        yield server.ws_url


async def _answers(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every message the gateway sent before its answer to a ping sent now: one client's
    messages are answered in order, so the pong marks the end of the previous answer."""
    await ws.send(json.dumps({"type": "ping"}))
    seen = []
    async with asyncio.timeout(5):
        while (message := json.loads(await ws.recv()))["type"] != "pong":
            seen.append(message)
    return seen


SERVER_TYPES = {"connected", "subscribed", "unsubscribed", "price_update", "feed_status"}
SERVER_TYPES |= {"signal", "ping", "error"}
ERROR_CODES = set(ErrorCode.__args__)  # type: ignore[attr-defined]
VALID_MESSAGES = [
    {"type": "subscribe", "ticker": "005930"},
    {"type": "subscribe", "topic": "signals"},
    {"type": "unsubscribe", "ticker": "005930"},
    {"type": "unsubscribe", "topic": "signals"},
    {"type": "pong", "ts": 1.5},
    {"type": "ping"},
]
NEAR_MISSES = st.sampled_from(VALID_MESSAGES).flatmap(variants).map(json.dumps)
MESSAGES = st.one_of(
    NEAR_MISSES,  # twice: half the examples are near misses, which reach past the parser
    NEAR_MISSES,
    bodies().map(lambda raw: raw.decode("utf-8", "replace")),
    TEXT,
    st.binary(max_size=64),
)


@given(messages=st.lists(MESSAGES, min_size=1, max_size=4))
async def test_every_ws_message_is_answered_and_another_client_is_served(
    gateway_server: str, messages: list[str | bytes]
) -> None:
    async with (
        connect(gateway_server, ping_interval=None, max_size=None) as fuzzed,
        connect(gateway_server, ping_interval=None) as bystander,
    ):
        closed = None
        for message in messages:
            try:
                await fuzzed.send(message)
                answers = await _answers(fuzzed)
            except ConnectionClosed as error:
                closed = error
                break
            for answer in answers:
                assert answer.get("type") in SERVER_TYPES, answer
                event(answer["type"])
                if answer["type"] == "error":
                    assert answer.get("code") in ERROR_CODES, answer
                    assert isinstance(answer.get("message"), str), answer
                    event(f"error {answer['code']}")
        if closed is not None:
            # Only a message over the limit may cost the sender its connection.
            assert closed.rcvd is not None, "closed without a close frame"
            assert closed.rcvd.code == 1009, closed
            event("closed 1009")
        await bystander.send(json.dumps({"type": "subscribe", "ticker": "000660"}))
        answered = await _answers(bystander)
        assert {"type": "subscribed", "ticker": "000660"} in answered, answered
