"""Orders: wire format, hashkey, at-most-once sending, ambiguity and reconciliation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
import respx

from system.broker import (
    BrokerError,
    BrokerRejected,
    BrokerUnavailable,
    KisClient,
    OrderAck,
    OrderBlocked,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderRequest,
    RateLimited,
    TokenCooldown,
)
from tests.unit.broker.conftest import (
    DAILY,
    EGW00133,
    HASHKEY,
    ORDER,
    TOKEN,
    Script,
    daily_page,
    daily_row,
    gateway_error,
    hash_ok,
    make_settings,
    order_ok,
    sent_json,
)

pytestmark = [pytest.mark.looptime, pytest.mark.usefixtures("token_route")]

BUY = OrderRequest("cid-1", "buy", "005930", 10, 70000)


@pytest.fixture
def hashkey_route(broker: respx.MockRouter) -> respx.Route:
    return broker.post(HASHKEY).mock(side_effect=hash_ok)


@pytest.fixture
def order_route(broker: respx.MockRouter, hashkey_route: respx.Route) -> respx.Route:
    return broker.post(ORDER).mock(return_value=order_ok())


async def test_a_limit_buy_is_sent_as_kis_documents_it(
    hashkey_route: respx.Route, order_route: respx.Route, client: KisClient
) -> None:
    ack = await client.place_order(BUY)
    assert ack == OrderAck("cid-1", odno="0000011111", org_no="91252", ord_tmd="091501")
    request = order_route.calls.last.request
    assert request.headers["tr_id"] == "TTTC0012U"
    assert request.headers["authorization"] == "Bearer tok-1"
    assert request.headers["custtype"] == "P"
    assert sent_json(order_route) == {
        "CANO": "50012345",
        "ACNT_PRDT_CD": "01",
        "PDNO": "005930",
        "ORD_DVSN": "00",
        "ORD_QTY": "10",
        "ORD_UNPR": "70000",
        "EXCG_ID_DVSN_CD": "KRX",
    }


async def test_the_hashkey_header_is_the_hash_of_the_exact_bytes_sent(
    hashkey_route: respx.Route, order_route: respx.Route, client: KisClient
) -> None:
    await client.place_order(BUY)
    assert hashkey_route.call_count == 1
    hashed = hashkey_route.calls.last.response.json()["HASH"]
    order_request = order_route.calls.last.request
    assert order_request.headers["hashkey"] == hashed
    assert order_request.content == hashkey_route.calls.last.request.content


async def test_a_market_sell_uses_the_sell_tr_id_and_price_zero(
    order_route: respx.Route, client: KisClient
) -> None:
    await client.place_order(OrderRequest("cid-2", "sell", "000660", 3))
    assert order_route.calls.last.request.headers["tr_id"] == "TTTC0011U"
    body = sent_json(order_route)
    assert (body["ORD_DVSN"], body["ORD_UNPR"], body["ORD_QTY"]) == ("01", "0", "3")


@pytest.mark.parametrize(("side", "tr_id"), [("buy", "VTTC0012U"), ("sell", "VTTC0011U")])
async def test_paper_orders_use_v_tr_ids(
    order_route: respx.Route,
    make_client: Callable[..., KisClient],
    side: str,
    tr_id: str,
) -> None:
    client = make_client(make_settings(profile="paper"))
    await client.place_order(OrderRequest("cid-p", side, "005930", 1, 70000))  # type: ignore[arg-type]
    assert order_route.calls.last.request.headers["tr_id"] == tr_id


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"client_order_id": ""}, "client_order_id"),
        ({"side": "short"}, "side"),
        ({"code": "5930"}, "6 digits"),
        ({"quantity": 0}, "quantity"),
        ({"price": -1}, "price"),
    ],
)
def test_an_invalid_order_request_is_refused(fields: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "client_order_id": "cid",
        "side": "buy",
        "code": "005930",
        "quantity": 1,
        "price": None,
    }
    values.update(fields)
    with pytest.raises(ValueError, match=message):
        OrderRequest(**values)  # type: ignore[arg-type]


async def test_a_second_order_with_an_acknowledged_id_is_refused(
    order_route: respx.Route, client: KisClient
) -> None:
    await client.place_order(BUY)
    with pytest.raises(ValueError, match="already placed as broker order 0000011111"):
        await client.place_order(BUY)
    assert order_route.call_count == 1


async def test_an_id_being_placed_cannot_be_placed_concurrently(
    broker: respx.MockRouter, hashkey_route: respx.Route, client: KisClient
) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(1)
        return order_ok()

    order = broker.post(ORDER).mock(side_effect=slow)
    first = asyncio.create_task(client.place_order(BUY))
    await asyncio.sleep(0.5)
    with pytest.raises(ValueError, match="being placed right now"):
        await client.place_order(BUY)
    await first
    assert order.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("timed out"),
        httpx.WriteTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ReadError("connection reset"),
        httpx.Response(500, text="Internal Server Error"),
        httpx.Response(504, text=""),
        httpx.Response(200, text='{"rt_cd":"0","output":{"ODNO'),
        httpx.Response(200, json={"rt_cd": "0", "msg_cd": "APBK0013", "output": {}}),
    ],
    ids=lambda failure: (
        f"HTTP {failure.status_code} {failure.text[:10]!r}"
        if isinstance(failure, httpx.Response)
        else type(failure).__name__
    ),
)
async def test_an_order_without_a_verdict_is_unknown_and_never_resent(
    broker: respx.MockRouter,
    hashkey_route: respx.Route,
    client: KisClient,
    failure: Exception | httpx.Response,
) -> None:
    order = broker.post(ORDER).mock(side_effect=Script(failure))
    await asyncio.sleep(5)
    with pytest.raises(OrderOutcomeUnknown) as info:
        await client.place_order(BUY)
    assert order.call_count == 1
    error = info.value
    assert error.order is BUY
    assert error.sent_at == pytest.approx(5.0)
    assert error.endpoint == f"POST {ORDER}"
    assert "do not re-send" in str(error)
    assert "reconcile()" in str(error)
    assert not isinstance(error, ConnectionError)  # callers retrying on ConnectionError skip it
    assert client.unknown_orders == [error]
    assert client.metrics.orders_unknown == 1
    with pytest.raises(ValueError, match="call reconcile"):
        await client.place_order(BUY)
    assert order.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("pool")],
    ids=lambda failure: type(failure).__name__,
)
async def test_an_order_that_never_left_is_unavailable_and_may_be_placed_again(
    broker: respx.MockRouter,
    hashkey_route: respx.Route,
    client: KisClient,
    failure: Exception,
) -> None:
    order = broker.post(ORDER).mock(side_effect=Script(failure, order_ok()))
    with pytest.raises(BrokerUnavailable, match="never left this client") as info:
        await client.place_order(BUY)
    assert not isinstance(info.value, OrderOutcomeUnknown)
    assert order.call_count == 1  # not re-sent by the client: the caller decides
    assert client.unknown_orders == []
    assert (await client.place_order(BUY)).odno == "0000011111"
    assert order.call_count == 2


async def test_a_rejected_order_is_order_rejected_and_its_id_is_free_again(
    broker: respx.MockRouter, hashkey_route: respx.Route, client: KisClient
) -> None:
    rejection = httpx.Response(
        200, json={"rt_cd": "1", "msg_cd": "APBK0919", "msg1": "주문가능금액을 초과 했습니다"}
    )
    order = broker.post(ORDER).mock(side_effect=Script(rejection, order_ok()))
    with pytest.raises(OrderRejected) as info:
        await client.place_order(BUY)
    assert isinstance(info.value, BrokerRejected)
    assert info.value.msg_cd == "APBK0919"
    assert order.call_count == 1
    await client.place_order(BUY)
    assert order.call_count == 2


async def test_an_order_refused_for_the_budget_is_retried_safely(
    broker: respx.MockRouter, hashkey_route: respx.Route, client: KisClient
) -> None:
    order = broker.post(ORDER).mock(side_effect=Script(gateway_error("EGW00201"), order_ok()))
    ack = await client.place_order(BUY)
    assert ack.odno == "0000011111"
    assert order.call_count == 2


async def test_an_order_rate_limited_throughout_is_not_placed(
    broker: respx.MockRouter, hashkey_route: respx.Route, client: KisClient
) -> None:
    broker.post(ORDER).mock(side_effect=Script(gateway_error("EGW00201", 200)))
    with pytest.raises(RateLimited):
        await client.place_order(BUY)
    assert client.unknown_orders == []


async def test_an_order_with_an_expired_token_is_retried_once_with_a_new_token(
    broker: respx.MockRouter, client: KisClient, hashkey_route: respx.Route
) -> None:
    tokens = Script(
        httpx.Response(200, json={"access_token": "tok-1", "expires_in": 86400}),
        httpx.Response(200, json={"access_token": "tok-2", "expires_in": 86400}),
    )
    broker.post(TOKEN).mock(side_effect=tokens)
    order = broker.post(ORDER).mock(
        side_effect=Script(order_ok(), gateway_error("EGW00123"), order_ok("0000022222"))
    )
    await client.place_order(BUY)
    await asyncio.sleep(120)
    ack = await client.place_order(OrderRequest("cid-2", "buy", "005930", 10, 70000))
    assert ack.odno == "0000022222"
    assert [call.request.headers["authorization"] for call in order.calls] == [
        "Bearer tok-1",
        "Bearer tok-1",
        "Bearer tok-2",
    ]


async def test_an_order_without_a_token_is_not_sent(
    broker: respx.MockRouter, make_client: Callable[..., KisClient], order_route: respx.Route
) -> None:
    broker.post(TOKEN).mock(return_value=httpx.Response(403, json=EGW00133))
    client = make_client()
    with pytest.raises(BrokerUnavailable):
        await client.place_order(BUY)
    with pytest.raises(TokenCooldown):
        await client.place_order(BUY)  # the id was released: no ValueError
    assert order_route.call_count == 0


async def test_a_place_order_cancelled_in_flight_is_unknown(
    broker: respx.MockRouter, hashkey_route: respx.Route, client: KisClient
) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return order_ok()

    broker.post(ORDER).mock(side_effect=slow)
    task = asyncio.create_task(client.place_order(BUY))
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [error.order for error in client.unknown_orders] == [BUY]
    with pytest.raises(ValueError, match="call reconcile"):
        await client.place_order(BUY)


async def test_a_place_order_cancelled_before_sending_frees_the_id(
    broker: respx.MockRouter, order_route: respx.Route, client: KisClient
) -> None:
    async def slow_hash(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return hash_ok(request)

    broker.post(HASHKEY).mock(side_effect=slow_hash)
    task = asyncio.create_task(client.place_order(BUY))
    await asyncio.sleep(1)
    task.cancel()  # still waiting for the hashkey: the order has not left
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.unknown_orders == []
    assert order_route.call_count == 0
    assert (await client.place_order(BUY)).odno == "0000011111"


async def test_reconcile_finds_a_placed_order_and_it_is_never_resent(
    broker: respx.MockRouter, hashkey_route: respx.Route, client: KisClient
) -> None:
    order = broker.post(ORDER).mock(side_effect=httpx.ReadTimeout("timed out"))
    daily = broker.get(DAILY).mock(
        return_value=daily_page(
            [
                daily_row("0000000007", side="01"),  # a sell: not ours
                daily_row("0000000008", price="69900"),  # another price: not ours
                daily_row("0000000009"),
            ]
        )
    )
    with pytest.raises(OrderOutcomeUnknown) as info:
        await client.place_order(BUY)
    ack = await client.reconcile(info.value)
    assert ack == OrderAck("cid-1", odno="0000000009", org_no="91252", ord_tmd="091501")
    assert client.unknown_orders == []
    assert client.metrics.orders_reconciled == 1
    with pytest.raises(ValueError, match="already placed as broker order 0000000009"):
        await client.place_order(BUY)
    assert order.call_count == 1
    assert await client.reconcile(BUY) == ack  # settled: no second inquiry
    assert daily.call_count == 1


async def test_reconcile_returns_none_when_the_order_is_absent_and_frees_the_id(
    broker: respx.MockRouter, hashkey_route: respx.Route, client: KisClient
) -> None:
    order = broker.post(ORDER).mock(side_effect=Script(httpx.ReadTimeout("timed out"), order_ok()))
    broker.get(DAILY).mock(return_value=daily_page([daily_row("0000000001", qty="11")]))
    with pytest.raises(OrderOutcomeUnknown) as info:
        await client.place_order(BUY)
    assert await client.reconcile(info.value) is None
    assert client.metrics.orders_confirmed_absent == 1
    assert client.unknown_orders == []
    assert (await client.place_order(BUY)).odno == "0000011111"
    assert order.call_count == 2


async def test_reconcile_skips_orders_claimed_by_other_client_ids(
    broker: respx.MockRouter, hashkey_route: respx.Route, client: KisClient
) -> None:
    twin = OrderRequest("cid-twin", "buy", "005930", 10, 70000)
    broker.post(ORDER).mock(
        side_effect=Script(order_ok("0000000001"), httpx.ReadTimeout("timed out"))
    )
    daily = broker.get(DAILY).mock(return_value=daily_page([daily_row("0000000001")]))
    await client.place_order(BUY)
    with pytest.raises(OrderOutcomeUnknown):
        await client.place_order(twin)
    assert await client.reconcile(twin) is None  # 0000000001 is cid-1's, not the twin's
    daily.mock(
        return_value=daily_page([daily_row("0000000001"), daily_row("0000000002", tmd="091502")])
    )
    broker.post(ORDER).mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(OrderOutcomeUnknown):
        await client.place_order(twin)
    ack = await client.reconcile(twin)
    assert ack is not None
    assert ack.odno == "0000000002"


async def test_reconcile_matches_a_market_order_at_price_zero_and_retries_reads(
    broker: respx.MockRouter, hashkey_route: respx.Route, client: KisClient
) -> None:
    market = OrderRequest("cid-m", "sell", "000660", 5)
    broker.post(ORDER).mock(side_effect=httpx.ReadTimeout("timed out"))
    daily = broker.get(DAILY).mock(
        side_effect=Script(
            httpx.Response(503, text="busy"),
            daily_page([daily_row("0000000005", side="01", code="000660", qty="5", price="0")]),
        )
    )
    with pytest.raises(OrderOutcomeUnknown):
        await client.place_order(market)
    ack = await client.reconcile(market)
    assert ack is not None
    assert ack.odno == "0000000005"
    assert daily.call_count == 2


async def test_reconcile_after_a_restart_takes_the_bare_request(
    broker: respx.MockRouter, client: KisClient
) -> None:
    broker.get(DAILY).mock(return_value=daily_page([daily_row("0000000003", cancelled="Y")]))
    ack = await client.reconcile(BUY)  # this client never sent it: e.g. a new process
    assert ack is not None
    assert ack.odno == "0000000003"  # a cancelled order still existed: never re-send it


async def test_reconcile_refuses_an_order_still_in_flight(
    broker: respx.MockRouter, hashkey_route: respx.Route, client: KisClient
) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(1)
        return order_ok()

    broker.post(ORDER).mock(side_effect=slow)
    task = asyncio.create_task(client.place_order(BUY))
    await asyncio.sleep(0.5)
    with pytest.raises(ValueError, match="being placed right now"):
        await client.reconcile(BUY)
    await task


async def test_an_order_the_permit_holds_back_never_leaves_and_its_id_is_free_again(
    broker: respx.MockRouter, hashkey_route: respx.Route, client: KisClient
) -> None:
    order = broker.post(ORDER).mock(side_effect=Script(order_ok()))
    asked: list[str] = []

    def halted(request: OrderRequest) -> str | None:
        asked.append(request.client_order_id)
        return "trading is halted (manual: pressed)"

    client.order_permit = halted
    with pytest.raises(OrderBlocked, match="was not sent: trading is halted") as info:
        await client.place_order(BUY)
    assert isinstance(info.value, BrokerError)
    assert asked == [BUY.client_order_id]
    assert order.call_count == 0  # asked after the token and hashkey, before the wire
    assert client.unknown_orders == []
    client.order_permit = None
    assert (await client.place_order(BUY)).odno == "0000011111"
    assert order.call_count == 1
