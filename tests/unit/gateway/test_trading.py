"""GET /api/trading: the desk's mode, halt, recent orders, positions marked at its latest
prices and P&L, for anyone, read-only; and its shapes (``system.gateway.trading``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta

import httpx
import pytest

from system.broker import OrderRequest
from system.broker.clock import kst_today
from system.gateway import Gateway, GatewaySettings, create_gateway
from system.gateway.trading import (
    RECENT_ORDERS,
    order_row,
    position_row,
    trading_state,
)
from system.service import OrderRecord, OrderStatus
from system.trading.positions import Fill, Position
from tests.unit.gateway.fakes import FakeDesk, FakeFeed, FakeHalt, FakeOrderService, FakeService

TOKEN = "op-Zq8wJ1mV4rT7yB2nK5xC"
DAY = date(2025, 3, 14)
RUNNING = {"engaged": False, "reason": None, "detail": None, "at": None, "automatic": None}
NO_PNL = {"realised_today": 0, "realised_total": 0, "unrealised": 0}


def record(
    cid: str,
    status: OrderStatus = "acked",
    *,
    side: str = "buy",
    code: str = "005930",
    quantity: int = 10,
    price: int | None = None,
    odno: str | None = None,
    events: tuple[str, ...] = ("requested",),
) -> OrderRecord:
    order = OrderRequest(cid, side, code, quantity, price)  # type: ignore[arg-type]
    return OrderRecord(cid, order, status, odno, [(float(n), e) for n, e in enumerate(events)])


def fill(code: str, side: str, quantity: int, price: int, day: date = DAY) -> Fill:
    return Fill(f"{code}-{side}", code, side, quantity, price, 0.0, day)  # type: ignore[arg-type]


def client_for(gateway: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(gateway.app), base_url="http://gw")


# -- the shapes ----------------------------------------------------------------------------


def test_an_order_row_says_what_was_asked_and_where_it_stands() -> None:
    acked = record("a", "acked", quantity=12, odno="0000117", events=("requested", "acked: 117"))
    limit = record("b", "pending", side="sell", code="000660", quantity=3, price=181_500)
    assert order_row(acked) == {
        "client_order_id": "a",
        "side": "buy",
        "code": "005930",
        "quantity": 12,
        "price": None,  # a market order
        "status": "acked",
        "odno": "0000117",
        "reason": None,
    }
    assert order_row(limit) == {
        "client_order_id": "b",
        "side": "sell",
        "code": "000660",
        "quantity": 3,
        "price": 181_500,
        "status": "pending",
        "odno": None,
        "reason": None,
    }


@pytest.mark.parametrize(
    ("status", "last"),
    [
        ("rejected", "rejected: APBK0919 주문가능금액을 초과 했습니다"),
        ("failed", "gave up, not placed (RateLimited)"),
        ("unknown", "outcome unknown: the answer was lost"),
    ],
)
def test_an_order_that_is_not_placed_or_may_not_be_says_why(status: OrderStatus, last: str) -> None:
    row = order_row(record("a", status, events=("requested", "retrying", last)))
    assert (row["status"], row["reason"]) == (status, last)


def test_a_position_is_marked_at_its_price_or_shown_unpriced() -> None:
    held = Position("005930", 12, 12 * 84_300 + 5)  # an average that is not whole won
    assert position_row(held, 84_500) == {
        "code": "005930",
        "quantity": 12,
        "average_price": 84_300.42,
        "cost": 1_011_605,
        "last_price": 84_500,
        "market_value": 1_014_000,
        "unrealised": 2_395,
    }
    assert position_row(held, None) == {
        "code": "005930",
        "quantity": 12,
        "average_price": 84_300.42,
        "cost": 1_011_605,
        "last_price": None,
        "market_value": None,
        "unrealised": None,
    }


def test_the_state_marks_positions_and_sums_the_pnl() -> None:
    desk = FakeDesk(mode="paper")
    book = desk.book
    book.apply(fill("035420", "buy", 4, 200_000, DAY - timedelta(days=1)))
    book.apply(fill("035420", "sell", 4, 190_000, DAY - timedelta(days=1)))  # -40,000 yesterday
    book.apply(fill("005930", "buy", 10, 70_000))
    book.apply(fill("005930", "sell", 4, 72_000))  # +8,000 today
    book.apply(fill("000660", "buy", 5, 180_000))
    desk.marks.update({"005930": 69_000, "035420": 191_000})  # 000660 has no price yet

    state = trading_state(desk, [], DAY)

    assert state == {
        "mode": "paper",
        "halt": RUNNING,
        "orders": [],
        "positions": [
            {
                "code": "000660",
                "quantity": 5,
                "average_price": 180_000.0,
                "cost": 900_000,
                "last_price": None,
                "market_value": None,
                "unrealised": None,
            },
            {
                "code": "005930",
                "quantity": 6,
                "average_price": 70_000.0,
                "cost": 420_000,
                "last_price": 69_000,
                "market_value": 414_000,
                "unrealised": -6_000,
            },
        ],
        # Unrealised counts the positions with a price only (000660 at cost: 0).
        "pnl": {"realised_today": 8_000, "realised_total": -32_000, "unrealised": -6_000},
    }
    # Won amounts stay whole numbers (JSON integers), never floats.
    assert all(type(value) is int for value in state["pnl"].values())  # type: ignore[attr-defined]


def test_the_state_shows_the_halt_as_the_kill_switch_reports_it() -> None:
    desk = FakeDesk(FakeHalt("daily-loss", "lost 3.1 % of capital today", 77.25, automatic=True))
    assert trading_state(desk, [], DAY)["halt"] == {
        "engaged": True,
        "reason": "daily-loss",
        "detail": "lost 3.1 % of capital today",
        "at": 77.25,
        "automatic": True,
    }


def test_the_state_lists_at_most_the_recent_orders_in_the_order_given() -> None:
    orders = [record(f"o{n}") for n in range(RECENT_ORDERS + 5)]
    listed = trading_state(FakeDesk(), orders, DAY)["orders"]
    assert [row["client_order_id"] for row in listed] == [  # type: ignore[attr-defined]
        f"o{n}" for n in range(RECENT_ORDERS)
    ]


# -- the route -----------------------------------------------------------------------------


@pytest.fixture
def desk() -> FakeDesk:
    return FakeDesk()


@pytest.fixture
def service() -> FakeOrderService:
    return FakeOrderService()


@pytest.fixture
async def http(desk: FakeDesk, service: FakeOrderService) -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(service, FakeFeed(), GatewaySettings(operator_token=TOKEN), kill_switch=desk)
    async with client_for(gateway) as client:
        yield client


async def test_the_route_answers_without_a_token_with_the_latest_orders_first(
    http: httpx.AsyncClient, desk: FakeDesk, service: FakeOrderService
) -> None:
    service.records = [
        record("first", "acked", quantity=14, odno="0000001"),
        record("second", "rejected", quantity=2, events=("requested", "rejected: APBK0919")),
    ]
    desk.book.apply(fill("005930", "buy", 14, 71_400, kst_today()))
    desk.marks["005930"] = 71_500

    response = await http.get("/api/trading")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["mode"] == "live"
    assert body["halt"] == RUNNING
    assert [(o["client_order_id"], o["status"], o["reason"]) for o in body["orders"]] == [
        ("second", "rejected", "rejected: APBK0919"),
        ("first", "acked", None),
    ]
    assert body["positions"] == [
        {
            "code": "005930",
            "quantity": 14,
            "average_price": 71_400.0,
            "cost": 999_600,
            "last_price": 71_500,
            "market_value": 1_001_000,
            "unrealised": 1_400,
        }
    ]
    assert body["pnl"] == {"realised_today": 0, "realised_total": 0, "unrealised": 1_400}
    assert service.limits == [RECENT_ORDERS]
    assert desk.calls == []  # reading switches nothing


async def test_the_realised_pnl_of_today_is_the_kst_day_s(
    http: httpx.AsyncClient, desk: FakeDesk
) -> None:
    before = kst_today()
    for day, price in ((before - timedelta(days=1), 70_000), (before, 72_000)):
        desk.book.apply(fill("005930", "buy", 1, 71_000, day))
        desk.book.apply(fill("005930", "sell", 1, price, day))

    pnl = (await http.get("/api/trading")).json()["pnl"]

    # One sale lost 1,000 yesterday, one made 1,000 today (unless KST's midnight passed
    # during the test, when both are yesterday's).
    assert pnl["realised_total"] == 0
    assert pnl["realised_today"] == (1_000 if kst_today() == before else 0)


async def test_the_route_follows_the_halt(http: httpx.AsyncClient, desk: FakeDesk) -> None:
    desk.halt = FakeHalt("kill switch", "broker incident", 12.5, automatic=False)
    halt = (await http.get("/api/trading")).json()["halt"]
    assert (halt["engaged"], halt["reason"], halt["detail"]) == (
        True,
        "kill switch",
        "broker incident",
    )


async def test_the_answer_holds_no_secret(
    http: httpx.AsyncClient, service: FakeOrderService
) -> None:
    service.records = [record("a")]
    response = await http.get("/api/trading", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert TOKEN not in response.text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_the_route_only_reads(http: httpx.AsyncClient, method: str) -> None:
    response = await http.request(method, "/api/trading", json={"engaged": True})
    assert response.status_code == 405


async def test_without_a_desk_the_route_is_404_with_the_reason() -> None:
    gateway = Gateway(FakeOrderService([record("a")]), FakeFeed(), GatewaySettings())
    async with client_for(gateway) as http:
        response = await http.get("/api/trading")
    assert (response.status_code, response.json()) == (
        404,
        {
            "error": "this system runs no trading desk, so it has no orders, positions or P&L "
            "to show; set SQUALL_TRADING_MODE (paper or live) to run one"
        },
    )


async def test_a_service_without_an_order_history_lists_no_orders(desk: FakeDesk) -> None:
    gateway = Gateway(FakeService(), FakeFeed(), GatewaySettings(), kill_switch=desk)
    assert gateway.order_history is None
    async with client_for(gateway) as http:
        response = await http.get("/api/trading")
    assert response.status_code == 200
    assert response.json()["orders"] == []
    assert response.json()["pnl"] == NO_PNL


async def test_create_gateway_serves_the_route(desk: FakeDesk) -> None:
    service = FakeOrderService([record("a", "acked", odno="1")])
    app = create_gateway(service, FakeFeed(), kill_switch=desk)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as h:
        response = await h.get("/api/trading")
    assert response.status_code == 200
    assert [o["odno"] for o in response.json()["orders"]] == ["1"]
