"""The system's Kiwoom client against the mock broker's Kiwoom profile on real loopback
sockets: the same BrokerClient contract as KIS, over Kiwoom's wire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from mocks.broker import BrokerConfig, create_app
from mocks.control_client import BrokerControl
from mocks.server import serve
from system.broker import BrokerClient, OrderOutcomeUnknown, OrderRequest
from system.broker.kiwoom import KiwoomClient, KiwoomSettings

STKINFO = "/api/dostk/stkinfo"
ORDR = "/api/dostk/ordr"
SECRETKEY = "KwInTeGrAtIoN-" + "s" * 26


@asynccontextmanager
async def stack(
    config: BrokerConfig | None = None, **settings: Any
) -> AsyncIterator[tuple[KiwoomClient, BrokerControl]]:
    app = create_app(config or BrokerConfig(api="kiwoom"))
    async with serve(app) as server:
        kiwoom = KiwoomSettings(
            base_url=server.url, appkey="KWint" + "i" * 31, secretkey=SECRETKEY, **settings
        )
        async with KiwoomClient(kiwoom) as client, BrokerControl(server.url) as control:
            yield client, control


async def test_quote_order_inquiry_and_balance_over_sockets() -> None:
    async with stack() as (client, control):
        broker: BrokerClient = client  # the trading core's view of it
        quote = await broker.get_price("005930")
        assert quote.lower_limit <= quote.price <= quote.upper_limit
        assert quote.price % quote.tick == 0
        before = await broker.balance()
        ack = await broker.place_order(OrderRequest("kw-1", "buy", "005930", 3))
        (row,) = await broker.daily_orders(odno=ack.odno)
        assert (row.odno, row.side, row.quantity, row.filled_quantity) == (ack.odno, "buy", 3, 3)
        after = await broker.balance()
        assert [(h.code, h.quantity) for h in after.holdings] == [("005930", 3)]
        assert after.cash == before.cash - round(row.average_price * 3)
        (entry,) = await control.journal(path=ORDR)
        assert entry.tr_id == "kt10000"
        assert SECRETKEY not in str(entry.to_json())


async def test_a_token_the_broker_expired_is_replaced_and_the_read_goes_on() -> None:
    async with stack(token_cooldown_s=0.0) as (client, control):
        await client.get_price("005930")
        await control.expire_tokens()
        await client.get_price("005930")
        codes = [e.code for e in await control.journal(path=STKINFO)]
        assert codes == ["0", "8005", "0"]
        assert len(await control.journal(path="/oauth2/token")) == 2


@pytest.mark.looptime
async def test_the_budget_is_used_but_never_exceeded() -> None:
    async with stack() as (client, control):
        await asyncio.gather(*(client.get_price("005930") for _ in range(20)))
        quotes = await control.journal(path=STKINFO)
        assert [e.code for e in quotes].count("1700") == 0
        times = [e.at for e in quotes]
        assert max(sum(1 for t in times if s <= t < s + 1.0) for s in times) <= 5


async def test_an_injected_1700_is_waited_out_and_retried() -> None:
    async with stack(rate_limit_wait_s=0.05) as (client, control):
        await client.get_price("005930")
        await control.add_fault(
            {
                "where": {"tr_id": "ka10001"},
                "what": {"kind": "error", "code": "1700"},
                "when": {"first": 1},
            }
        )
        await client.get_price("005930")
        codes = [e.code for e in await control.journal(path=STKINFO)]
        assert codes == ["0", "1700", "0"]


async def test_a_lost_order_answer_is_unknown_then_reconciled_never_resent() -> None:
    async with stack(timeout_s=0.5) as (client, control):
        await client.get_price("005930")
        await control.add_fault(
            {"where": {"path": ORDR}, "what": {"kind": "drop"}, "when": {"first": 1}}
        )
        order = OrderRequest("kw-lost", "buy", "005930", 2)
        with pytest.raises(OrderOutcomeUnknown) as caught:
            await client.place_order(order)
        ack = await client.reconcile(caught.value)
        assert ack is not None
        assert client.unknown_orders == []
        assert len(await control.journal(path=ORDR)) == 1


async def test_an_order_reset_before_the_book_reconciles_to_none_and_may_be_sent() -> None:
    async with stack() as (client, control):
        await client.get_price("005930")
        await control.add_fault(
            {"where": {"path": ORDR}, "what": {"kind": "reset"}, "when": {"first": 1}}
        )
        with pytest.raises(OrderOutcomeUnknown) as caught:
            await client.place_order(OrderRequest("kw-reset", "sell", "005930", 1))
        assert await client.reconcile(caught.value) is None
