"""Market events through the broker: the control plane, quotes, the book and fills."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from mocks.control_client import BrokerControl, ControlError
from mocks.market_events import Gap, LimitDown, VolatilityInterruption
from tests.unit.mocks.conftest import (
    ACCOUNT,
    BOOK,
    DAILY,
    SAMSUNG,
    Kis,
    client_for,
    order_body,
)

EVENTS = "/_squall/market/events"
CODE = "005930"


@dataclass
class Broker:
    app: FastAPI
    kis: Kis
    control: BrokerControl

    async def start(self) -> None:
        """Issue the token, which starts the mock's clock: inside the test, so a looptime
        test's virtual clock is the one it reads."""
        assert (await self.kis.issue()).status_code == 200

    async def quote(self) -> dict[str, str]:
        output: dict[str, str] = (await self.kis.price()).json()["output"]
        return output

    async def order(self, body: dict[str, str], *, sell: bool = False) -> dict[str, Any]:
        answer = await self.kis.order(body, tr_id="TTTC0011U" if sell else "TTTC0012U")
        result: dict[str, Any] = answer.json()
        return result

    async def order_row(self, odno: str) -> dict[str, str]:
        daily = await self.kis.http.get(
            DAILY,
            params={**ACCOUNT, "INQR_STRT_DT": "19000101", "INQR_END_DT": "29991231", "ODNO": odno},
            headers=self.kis.headers("TTTC0081R"),
        )
        (row,) = daily.json()["output1"]
        return dict(row)


@pytest.fixture
async def broker(make_app: Callable[..., FastAPI]) -> AsyncIterator[Broker]:
    app = make_app(requests_per_second=1000, initial_cash=10_000_000)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with (
        client_for(app) as http,
        BrokerControl("http://broker.test", transport=transport) as control,
    ):
        yield Broker(app, Kis(http), control)


# -- the control plane -----------------------------------------------------------------


async def test_events_go_in_come_back_as_stored_and_clear(broker: Broker) -> None:
    await broker.start()
    control = broker.control
    gap = await control.add_market_event({"kind": "gap", "code": CODE, "at": 120, "pct": -8})
    assert gap == Gap(kind="gap", code=CODE, at=120, pct=-8)
    vi = await control.add_market_event(VolatilityInterruption(kind="vi", code="000660"))
    assert vi == VolatilityInterruption(kind="vi", code="000660", at=1, for_=120)  # next second
    later = await control.add_market_event({"kind": "gap", "code": CODE, "at": 200, "pct": 2})
    assert await control.market_events() == [gap, vi, later]  # in the order added
    raw = await broker.kis.http.get(EVENTS)
    assert raw.json() == [
        {"kind": "gap", "code": CODE, "at": 120, "pct": -8.0},
        {"kind": "vi", "code": "000660", "at": 1, "for": 120},
        {"kind": "gap", "code": CODE, "at": 200, "pct": 2.0},
    ]
    assert await control.clear_market_events() == 3
    assert await control.market_events() == []


async def test_a_reset_clears_the_events(broker: Broker) -> None:
    await broker.start()
    await broker.control.add_market_event({"kind": "limit-up", "code": CODE, "at": 0})
    upper = (await broker.quote())["stck_mxpr"]
    assert (await broker.quote())["stck_prpr"] == upper
    await broker.control.reset()
    assert await broker.control.market_events() == []
    await broker.kis.issue()  # the reset forgot the token too
    assert (await broker.quote())["stck_prpr"] != upper


@pytest.mark.parametrize(
    ("content", "status", "detail"),
    [
        ("{not json", 400, "not valid JSON"),
        ("[1, 2]", 400, "as a JSON object"),
        ('{"code": "005930", "at": 5}', 422, "needs a kind: one of gap, limit-up, limit-down, vi"),
        ('{"kind": "gap", "code": "005930", "at": 5}', 422, "invalid market event: gap.pct:"),
        ('{"kind": "vi", "code": "005930", "at": 5, "for": 1.5}', 422, "vi.for: Input should"),
        ('{"kind": "gap", "code": "123456", "at": 5, "pct": 1}', 422, "123456 is not listed"),
        ('{"kind": "limit-up", "code": "005930", "at": 3, "extra": 1}', 422, "extra: Extra"),
    ],
)
async def test_bad_events_are_refused_with_a_reason(
    broker: Broker, content: str, status: int, detail: str
) -> None:
    await broker.start()
    answer = await broker.kis.http.post(
        EVENTS, content=content, headers={"content-type": "application/json"}
    )
    assert answer.status_code == status
    assert detail in answer.json()["detail"]
    assert await broker.control.market_events() == []


@pytest.mark.looptime
async def test_an_event_in_the_past_is_a_conflict(broker: Broker) -> None:
    await broker.start()
    await asyncio.sleep(30.5)
    with pytest.raises(ControlError, match=r"409: .*rewrite prices already quoted.*at >= 30"):
        await broker.control.add_market_event({"kind": "gap", "code": CODE, "at": 29, "pct": 5})
    stored = await broker.control.add_market_event({"kind": "gap", "code": CODE, "pct": 5})
    assert stored.at == 31


async def test_the_client_checks_an_event_before_sending_it(broker: Broker) -> None:
    await broker.start()
    with pytest.raises(ValidationError, match="a gap of 0 %"):
        await broker.control.add_market_event({"kind": "gap", "code": CODE, "pct": 0})


async def test_remote_callers_are_refused(make_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_app(), host="10.1.2.3") as remote:
        answer = await remote.post(EVENTS, json={"kind": "vi", "code": CODE})
        assert answer.status_code == 403
        assert (await remote.delete(EVENTS)).status_code == 403


# -- quotes and the book ---------------------------------------------------------------


@pytest.mark.looptime
async def test_a_vi_shows_in_the_quote_and_refuses_market_orders(broker: Broker) -> None:
    await broker.start()
    await broker.control.add_market_event({"kind": "vi", "code": CODE, "at": 10, "for": 120})
    await asyncio.sleep(9.5)
    before = await broker.quote()
    assert before["vi_cls_code"] == "N"
    await asyncio.sleep(1)  # step 10: halted
    during = await broker.quote()
    assert during["vi_cls_code"] == "Y"
    assert (during["stck_prpr"], during["acml_vol"]) == (before["stck_prpr"], before["acml_vol"])
    refused = await broker.order(order_body(qty=1))
    assert (refused["rt_cd"], refused["msg_cd"]) == ("1", "APBK1690")
    assert "변동성완화장치(VI)" in refused["msg1"]
    assert "005930, 단일가매매 120초 남음" in refused["msg1"]
    # A limit order joins the (unmodelled) auction: booked, unfilled.
    resting = await broker.order(order_body(qty=1, price=int(during["stck_mxpr"])))
    assert resting["rt_cd"] == "0"
    row = await broker.order_row(resting["output"]["ODNO"])
    assert (row["tot_ccld_qty"], row["rmn_qty"]) == ("0", "1")
    await asyncio.sleep(119)  # step 129: the last second of the halt
    assert (await broker.order(order_body(qty=1)))["msg_cd"] == "APBK1690"
    await asyncio.sleep(1)  # step 130: trading again
    after = await broker.quote()
    assert after["vi_cls_code"] == "N"
    assert int(after["acml_vol"]) > int(before["acml_vol"])
    filled = await broker.order(order_body(qty=1))
    assert filled["rt_cd"] == "0"
    row = await broker.order_row(filled["output"]["ODNO"])
    assert (row["tot_ccld_qty"], row["avg_prvs"]) == ("1", after["stck_prpr"])


@pytest.mark.looptime
async def test_limit_up_pins_the_quote_and_leaves_buys_resting(broker: Broker) -> None:
    await broker.start()
    held = await broker.order(order_body(qty=2))  # bought before the limit: something to sell
    assert held["rt_cd"] == "0"
    await broker.control.add_market_event({"kind": "limit-up", "code": CODE, "at": 5, "for": 60})
    await asyncio.sleep(5.5)
    quote = await broker.quote()
    upper = quote["stck_mxpr"]
    assert (quote["stck_prpr"], quote["prdy_vrss_sign"]) == (upper, "1")
    book = await broker.kis.http.get(
        BOOK, params=SAMSUNG, headers=broker.kis.headers("FHKST01010200")
    )
    levels = book.json()["output1"]
    assert [levels[f"askp{n}"] for n in range(1, 11)] == ["0"] * 10
    assert levels["bidp1"] == upper
    assert int(levels["bidp_rsqn1"]) >= 200_000
    # No sellers: a market buy is booked and waits in the queue at the limit...
    buy = await broker.order(order_body(qty=50))
    assert buy["rt_cd"] == "0"
    row = await broker.order_row(buy["output"]["ODNO"])
    assert (row["tot_ccld_qty"], row["rmn_qty"], row["ord_unpr"]) == ("0", "50", "0")
    # ...holding cash at the upper limit (seed 0: 100,100 won), so the same again is more
    # than the 10,000,000 minus what is held and spoken for.
    assert int(upper) * 50 * 2 > 10_000_000
    assert (await broker.order(order_body(qty=50)))["msg_cd"] == "APBK0952"
    # A sell meets the queue and fills at the limit.
    sell = await broker.order(order_body(qty=2), sell=True)
    row = await broker.order_row(sell["output"]["ODNO"])
    assert (row["tot_ccld_qty"], row["avg_prvs"]) == ("2", upper)


@pytest.mark.looptime
async def test_limit_down_leaves_sells_resting_and_fills_buys_at_the_limit(
    broker: Broker,
) -> None:
    await broker.start()
    await broker.order(order_body(qty=1))
    event = LimitDown(kind="limit-down", code=CODE, at=3, for_=10)
    assert await broker.control.add_market_event(event) == event
    await asyncio.sleep(3.5)
    lower = (await broker.quote())["stck_llam"]
    assert (await broker.quote())["stck_prpr"] == lower
    sell = await broker.order(order_body(qty=1), sell=True)
    row = await broker.order_row(sell["output"]["ODNO"])
    assert (row["tot_ccld_qty"], row["rmn_qty"]) == ("0", "1")
    buy = await broker.order(order_body(qty=1))
    row = await broker.order_row(buy["output"]["ODNO"])
    assert (row["tot_ccld_qty"], row["avg_prvs"]) == ("1", lower)
    await asyncio.sleep(10)  # step 13: the limit is over
    assert (await broker.quote())["stck_prpr"] != lower


# -- the accounts' books ---------------------------------------------------------------


async def test_the_books_list_every_order_with_its_fill_and_when_it_was_booked(
    broker: Broker,
) -> None:
    await broker.start()
    await asyncio.sleep(1)
    bought = await broker.order(order_body(CODE, qty=3))
    refused = await broker.order(order_body(CODE, qty=99), sell=True)  # holds only 3
    assert refused["rt_cd"] == "1"
    price = int((await broker.quote())["stck_prpr"])
    rows = await broker.control.account_orders()
    assert [(r["odno"], r["side"], r["code"], r["quantity"]) for r in rows] == [
        (bought["output"]["ODNO"], "buy", CODE, 3)
    ]
    (row,) = rows
    assert (row["filled_quantity"], row["fill_price"]) == (3, price)
    assert row["at"] == pytest.approx(1.0, abs=0.5)
    assert len(row["day"]) == 10
    await broker.control.reset()
    assert await broker.control.account_orders() == []
