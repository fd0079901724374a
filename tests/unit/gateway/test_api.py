"""``GET /api/quotes/{code}`` and ``POST /api/orders`` (system.gateway.api), in process."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from system.broker.errors import (
    BrokerUnavailable,
    OrderBlocked,
    OrderOutcomeUnknown,
    OrderRejected,
    RateLimited,
)
from system.broker.models import OrderAck, OrderRequest
from system.gateway import Gateway, GatewaySettings
from system.gateway.api import parse_order
from system.gateway.kill_switch import Refusal
from tests.unit.gateway.fakes import FakeDesk, FakeFeed, FakeHalt, FakeService

TOKEN = "op-Zq8wJ1mV4rT7yB2nK5xC"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ORDER = {"client_order_id": "ops-1", "side": "buy", "code": "005930", "quantity": 2}


class FakePlacer(FakeService):
    """A service that places orders: ``outcome`` is the ack, or the error to raise."""

    def __init__(self) -> None:
        super().__init__({"005930": 80100})
        self.placed: list[OrderRequest] = []
        self.outcome: Exception | None = None

    async def place_order(self, order: OrderRequest) -> OrderAck:
        self.placed.append(order)
        if self.outcome is not None:
            raise self.outcome
        return OrderAck(order.client_order_id, "0000012345", "91252", "090102")


def client_for(service: FakeService, desk: FakeDesk | None = None) -> httpx.AsyncClient:
    gateway = Gateway(service, FakeFeed(), GatewaySettings(operator_token=TOKEN), kill_switch=desk)
    return httpx.AsyncClient(transport=httpx.ASGITransport(gateway.app), base_url="http://gw")


async def test_a_quote_comes_from_the_service() -> None:
    async with client_for(FakeService({"005930": 80100})) as http:
        answer = await http.get("/api/quotes/005930")
    assert answer.status_code == 200
    assert answer.json()["quote"]["price"] == 80100


@pytest.mark.parametrize("code", ["5930", "00593A", "0059300", "%EC%82%BC"])
async def test_a_malformed_code_is_refused_before_the_broker(code: str) -> None:
    service = FakeService({"005930": 80100})
    async with client_for(service) as http:
        answer = await http.get(f"/api/quotes/{code}")
    assert answer.status_code == 400
    assert "send six digits, e.g. 005930" in answer.json()["error"]
    assert service.calls == []


async def test_an_unreachable_broker_answers_503_with_retry_after() -> None:
    service = FakeService({})  # every quote raises BrokerUnavailable
    async with client_for(service) as http:
        answer = await http.get("/api/quotes/000660")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert "broker unreachable" in answer.json()["error"]


async def test_an_order_is_placed_with_the_operator_token() -> None:
    service = FakePlacer()
    async with client_for(service) as http:
        answer = await http.post("/api/orders", json=ORDER, headers=AUTH)
    assert answer.status_code == 201
    assert answer.json() == {
        "status": "placed",
        "order": {
            "client_order_id": "ops-1",
            "odno": "0000012345",
            "org_no": "91252",
            "ord_tmd": "090102",
        },
    }
    assert service.placed == [OrderRequest("ops-1", "buy", "005930", 2)]


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong-token-0000000"}, 401)],
)
async def test_an_order_without_the_token_is_refused_unread(
    headers: dict[str, str], status: int
) -> None:
    service = FakePlacer()
    async with client_for(service) as http:
        answer = await http.post("/api/orders", json=ORDER, headers=headers)
    assert answer.status_code == status
    assert "operator token" in answer.json()["error"]
    assert TOKEN not in answer.text
    assert service.placed == []


async def test_no_order_goes_out_while_trading_is_halted() -> None:
    service = FakePlacer()
    desk = FakeDesk(FakeHalt("daily loss limit", "lost 2,000,000", 10.0, automatic=True))
    async with client_for(service, desk) as http:
        answer = await http.post("/api/orders", json=ORDER, headers=AUTH)
    assert answer.status_code == 409
    assert "trading is halted (daily loss limit" in answer.json()["error"]
    assert service.placed == []


def _unknown(order: OrderRequest) -> Exception:
    return OrderOutcomeUnknown(order=order, sent_at=1.0, endpoint="POST order-cash", reason="lost")


@pytest.mark.parametrize(
    ("outcome", "status", "kind"),
    [
        (
            OrderRejected(endpoint="x", msg_cd="APBK0952", msg1="잔고부족", status_code=200),
            422,
            "rejected",
        ),
        (BrokerUnavailable("x: broker unreachable"), 503, "not-sent"),
        (ValueError("ops-1 is already placed"), 409, "duplicate"),
        ("unknown", 202, "unknown"),
        ("blocked", 409, "halted"),
    ],
)
async def test_each_outcome_has_its_answer(outcome: Any, status: int, kind: str) -> None:
    service = FakePlacer()
    order = OrderRequest("ops-1", "buy", "005930", 2)
    if outcome == "unknown":
        outcome = _unknown(order)
    elif outcome == "blocked":
        outcome = OrderBlocked(order=order, endpoint="x", reason="halted")
    service.outcome = outcome
    async with client_for(service) as http:
        answer = await http.post("/api/orders", json=ORDER, headers=AUTH)
    assert answer.status_code == status
    assert answer.json()["status"] == kind
    assert ("retry-after" in answer.headers) == (status == 503)


async def test_a_rate_limited_order_says_when_to_retry() -> None:
    service = FakePlacer()
    service.outcome = RateLimited(endpoint="x", retries=3, retry_after=2.2, msg1="초당")
    async with client_for(service) as http:
        answer = await http.post("/api/orders", json=ORDER, headers=AUTH)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "3"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (json.dumps({**ORDER, "account": "x"}).encode(), "unknown field(s) 'account'"),
        (json.dumps({"side": "buy"}).encode(), "has no client_order_id, code, quantity"),
        (json.dumps({**ORDER, "client_order_id": " "}).encode(), "non-empty string"),
        (json.dumps({**ORDER, "client_order_id": "x" * 65}).encode(), "at most 64"),
        (json.dumps({**ORDER, "side": "short"}).encode(), 'side must be "buy" or "sell"'),
        (json.dumps({**ORDER, "code": 5930}).encode(), "string of six digits"),
        (json.dumps({**ORDER, "quantity": 0}).encode(), "positive whole number of shares"),
        (json.dumps({**ORDER, "quantity": True}).encode(), "positive whole number of shares"),
        (json.dumps({**ORDER, "price": 1.5}).encode(), "positive whole number of won"),
    ],
)
def test_a_malformed_order_says_what_is_wrong(body: bytes, says: str) -> None:
    refusal = parse_order(body)
    assert isinstance(refusal, Refusal)
    assert refusal.status == 400
    assert says in refusal.message


async def test_a_service_that_places_no_orders_answers_404() -> None:
    async with client_for(FakeService()) as http:
        answer = await http.post("/api/orders", json=ORDER, headers=AUTH)
    assert answer.status_code == 404
