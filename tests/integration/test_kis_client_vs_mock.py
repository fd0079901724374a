"""The system's KIS client against the mock broker on real loopback sockets.

Servers start inside each test so they share the test's loop and clock: the looptime tests
run minutes of broker time (the token minute, cooldowns) in milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from mocks.broker import BrokerConfig, create_app
from mocks.control_client import BrokerControl
from mocks.server import serve
from system.broker import (
    BrokerUnavailable,
    KisClient,
    KisSettings,
    OrderOutcomeUnknown,
    OrderRequest,
    TokenCooldown,
)

PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price"
ORDER = "/uapi/domestic-stock/v1/trading/order-cash"


@asynccontextmanager
async def stack(
    config: BrokerConfig | None = None, **settings: Any
) -> AsyncIterator[tuple[KisClient, BrokerControl]]:
    async with serve(create_app(config or BrokerConfig())) as server:
        kis = KisSettings(
            base_url=server.url,
            appkey="PSint" + "i" * 31,
            appsecret="i" * 180,
            account="50012345-01",
            **settings,
        )
        async with KisClient(kis) as client, BrokerControl(server.url) as control:
            yield client, control


async def test_token_price_order_inquiry_and_balance_over_sockets() -> None:
    async with stack() as (client, control):
        quote = await client.get_price("005930")
        assert quote.lower_limit <= quote.price <= quote.upper_limit
        book = await client.get_order_book("005930")
        assert book.asks[0][0] > book.bids[0][0]
        ack = await client.place_order(OrderRequest("c-1", "buy", "005930", 3))
        (row,) = await client.daily_orders()
        assert (row.odno, row.quantity, row.filled_quantity) == (ack.odno, 3, 3)
        balance = await client.balance()
        assert [(h.code, h.quantity) for h in balance.holdings] == [("005930", 3)]
        orders = await control.journal(path=ORDER)
        assert len(orders) == 1
        assert orders[0].headers["hashkey"]  # the order carried a hashkey the mock accepted
        assert orders[0].code == "APBK0013"


async def test_concurrent_first_callers_cause_one_issuance() -> None:
    async with stack() as (client, control):
        await asyncio.gather(*(client.get_price("005930") for _ in range(10)))
        assert len(await control.journal(path="/oauth2/tokenP")) == 1


@pytest.mark.looptime
async def test_expired_token_storm_never_cascades_into_egw00133() -> None:
    async with stack() as (client, control):
        await client.get_price("005930")
        await asyncio.sleep(5)
        await control.expire_tokens()
        results = await asyncio.gather(
            *(client.get_price("005930") for _ in range(30)), return_exceptions=True
        )
        assert all(isinstance(r, TokenCooldown) for r in results), results
        await asyncio.sleep(max(r.retry_after for r in results if isinstance(r, TokenCooldown)))
        await client.get_price("005930")
        tokens = await control.journal(path="/oauth2/tokenP")
        assert len(tokens) == 2
        assert all(t.code != "EGW00133" for t in tokens)


@pytest.mark.looptime
async def test_real_profile_budget_is_used_but_never_exceeded() -> None:
    async with stack() as (client, control):
        await asyncio.gather(*(client.get_price("005930") for _ in range(60)))
        quotes = await control.journal(path=PRICE)
        assert [e.code for e in quotes].count("EGW00201") == 0
        times = [e.at for e in quotes]
        assert max(sum(1 for t in times if s <= t < s + 1.0) for s in times) <= 18
        assert times[-1] - times[0] < 60 / 18 + 1.5  # it used the budget, not a trickle


async def test_injected_egw00201_is_waited_out_and_retried() -> None:
    async with stack(rate_limit_wait_s=0.05) as (client, control):
        await client.get_price("005930")
        await control.add_fault(
            {
                "where": {"path": PRICE},
                "what": {"kind": "error", "code": "EGW00201"},
                "when": {"first": 2},
            }
        )
        await client.get_price("005930")
        codes = [e.code for e in await control.journal(path=PRICE)]
        assert codes == ["MCA00000", "EGW00201", "EGW00201", "MCA00000"]


async def test_a_hanging_broker_is_a_connection_error_naming_the_endpoint() -> None:
    async with stack(timeout_s=0.2, read_retries=1, backoff_base_s=0.01) as (client, control):
        await client.get_price("005930")
        await control.add_fault({"where": {"path": PRICE}, "what": {"kind": "hang"}})
        with pytest.raises(BrokerUnavailable, match="inquire-price") as caught:
            await client.get_price("005930")
        assert isinstance(caught.value, ConnectionError)
        assert len(await control.journal(path=PRICE)) == 3  # one success, two tries


async def test_a_late_order_is_unknown_then_reconciled_never_resent() -> None:
    async with stack(timeout_s=0.3) as (client, control):
        await client.get_price("005930")
        await control.add_fault(
            {"where": {"path": ORDER}, "what": {"kind": "delay", "seconds": 0.6}}
        )
        order = OrderRequest("late-1", "buy", "005930", 2)
        with pytest.raises(OrderOutcomeUnknown) as caught:
            await client.place_order(order)
        await asyncio.sleep(0.5)  # the broker books it after the client gave up
        ack = await client.reconcile(caught.value)
        assert ack is not None
        assert len(await control.journal(path=ORDER)) == 1


async def test_a_reset_order_never_reached_the_book_and_reconciles_to_none() -> None:
    async with stack() as (client, control):
        await client.get_price("005930")
        await control.add_fault(
            {"where": {"path": ORDER}, "what": {"kind": "reset"}, "when": {"first": 1}}
        )
        with pytest.raises(OrderOutcomeUnknown) as caught:
            await client.place_order(OrderRequest("reset-1", "buy", "005930", 1))
        assert await client.reconcile(caught.value) is None
        ack = await client.place_order(OrderRequest("reset-1", "buy", "005930", 1))
        assert ack.odno


async def test_gateway_errors_under_http_200_are_still_recognised() -> None:
    async with stack(token_cooldown_s=0.0) as (client, control):
        await client.get_price("005930")
        await control.configure(gateway_error_status=200, token_interval_s=0)
        await control.expire_tokens()
        await client.get_price("005930")
        codes = [e.code for e in await control.journal(path=PRICE)]
        assert codes == ["MCA00000", "EGW00123", "MCA00000"]
