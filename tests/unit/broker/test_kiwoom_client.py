"""The Kiwoom client's reads: Kiwoom's numbers and rows, and its pages.

The answers are written out as Kiwoom's guide shows them: signed quote prices, zero-padded
account figures, "A"-prefixed codes in account rows, cont-yn/next-key paging.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import httpx
import pytest
import respx

from system.broker import MalformedResponse, OrderOutcomeUnknown, OrderRequest
from system.broker.clock import KST
from system.broker.kiwoom import KiwoomClient, KiwoomSettings

pytestmark = pytest.mark.looptime

BASE_URL = "https://kiwoom.test"
NOW = datetime(2026, 3, 2, 9, 30, 5, tzinfo=KST)
ACNT = "/api/dostk/acnt"


def client() -> KiwoomClient:
    settings = KiwoomSettings(base_url=BASE_URL, appkey="KWc" + "k" * 33, secretkey="s" * 40)
    return KiwoomClient(settings, today=lambda: date(2026, 3, 2), wall=lambda: NOW)


def ok(more: str = "", **fields: Any) -> httpx.Response:
    headers = {"cont-yn": "Y", "next-key": more} if more else {"cont-yn": "N", "next-key": ""}
    return httpx.Response(
        200, json={"return_code": 0, "return_msg": "정상", **fields}, headers=headers
    )


def token() -> httpx.Response:
    return httpx.Response(
        200,
        json={"expires_dt": "20260303093005", "token": "kw", "return_code": 0, "return_msg": ""},
    )


def order_row(
    ord_no: str, *, side: str = "현금매수", filled: int = 3, price: int = 0
) -> dict[str, str]:
    return {
        "ord_no": ord_no,
        "stk_cd": "A005930",
        "ord_qty": "0000000003",
        "ord_uv": f"{price:010d}",
        "cntr_qty": f"{filled:010d}",
        "cntr_uv": "0000071000" if filled else "0000000000",
        "ord_remnq": f"{3 - filled:010d}",
        "io_tp_nm": side,
        "ord_tm": "09:15:01",
        "mdfy_cncl": "",
    }


async def test_a_quote_reads_signed_prices_and_takes_krx_tick() -> None:
    with respx.mock(base_url=BASE_URL) as broker:
        broker.post("/oauth2/token").mock(return_value=token())
        broker.post("/api/dostk/stkinfo").mock(
            return_value=ok(
                stk_cd="005930",
                cur_prc="-69500",
                pred_pre="-500",
                flu_rt="-0.71",
                trde_qty="1234567",
                open_pric="+70100",
                high_pric="+70500",
                low_pric="-69400",
                upl_pric="+91000",
                lst_pric="-49000",
                base_pric="70000",
            )
        )
        async with client() as kiwoom:
            quote = await kiwoom.get_price("005930")
    assert (quote.price, quote.change, quote.change_rate) == (69500, -500, -0.71)
    assert (quote.open, quote.high, quote.low) == (70100, 70500, 69400)
    assert (quote.upper_limit, quote.lower_limit, quote.base_price) == (91000, 49000, 70000)
    assert quote.tick == 100  # KRX: 50,000 to 200,000 won


async def test_todays_orders_follow_every_page_with_the_next_key() -> None:
    with respx.mock(base_url=BASE_URL) as broker:
        broker.post("/oauth2/token").mock(return_value=token())
        acnt = broker.post(ACNT).mock(
            side_effect=[
                ok("page-2", acnt_ord_cntr_prps_dtl=[order_row("0000001")]),
                ok(acnt_ord_cntr_prps_dtl=[order_row("0000002", side="현금매도", filled=0)]),
            ]
        )
        async with client() as kiwoom:
            orders = await kiwoom.daily_orders()
    assert [(o.odno, o.side, o.code, o.filled_quantity) for o in orders] == [
        ("0000001", "buy", "005930", 3),
        ("0000002", "sell", "005930", 0),
    ]
    assert orders[0].order_time == "091501"
    first, second = (json.loads(c.request.content) for c in acnt.calls)
    assert first == second
    assert first["ord_dt"] == "20260302"
    assert "next-key" not in acnt.calls[0].request.headers
    assert acnt.calls[1].request.headers["next-key"] == "page-2"


async def test_a_page_that_says_more_without_a_new_key_stops_the_walk() -> None:
    with respx.mock(base_url=BASE_URL) as broker:
        broker.post("/oauth2/token").mock(return_value=token())
        broker.post(ACNT).mock(return_value=ok("same", acnt_ord_cntr_prps_dtl=[]))
        async with client() as kiwoom:
            with pytest.raises(MalformedResponse, match="same next-key"):
                await kiwoom.daily_orders()


async def test_the_balance_joins_holdings_and_takes_cash_from_the_totals() -> None:
    holding = {
        "stk_cd": "A005930",
        "stk_nm": "삼성전자",
        "rmnd_qty": "000000000000003",
        "trde_able_qty": "000000000000003",
        "pur_pric": "000000000070000",
        "cur_prc": "000000071000",
        "evlt_amt": "000000000213000",
        "evltv_prft": "000000000003000",
        "prft_rt": "1.43",
    }
    totals = {"tot_evlt_amt": "000000000213000", "prsm_dpst_aset_amt": "000000100003000"}
    with respx.mock(base_url=BASE_URL) as broker:
        broker.post("/oauth2/token").mock(return_value=token())
        broker.post(ACNT).mock(
            side_effect=[
                ok("p2", acnt_evlt_remn_indv_tot=[holding], **totals),
                ok(acnt_evlt_remn_indv_tot=[{**holding, "stk_cd": "A000660"}], **totals),
            ]
        )
        async with client() as kiwoom:
            balance = await kiwoom.balance()
    assert [(h.code, h.quantity, h.price) for h in balance.holdings] == [
        ("005930", 3, 71000),
        ("000660", 3, 71000),
    ]
    assert (balance.cash, balance.total_value, balance.net_assets) == (
        99_790_000,
        213_000,
        100_003_000,
    )


async def test_an_order_goes_out_once_and_an_answer_without_ord_no_is_unknown() -> None:
    with respx.mock(base_url=BASE_URL) as broker:
        broker.post("/oauth2/token").mock(return_value=token())
        ordr = broker.post("/api/dostk/ordr").mock(side_effect=[ok(ord_no="0000007"), ok()])
        async with client() as kiwoom:
            ack = await kiwoom.place_order(OrderRequest("c-1", "buy", "005930", 3, 70000))
            with pytest.raises(OrderOutcomeUnknown, match="ord_no"):
                await kiwoom.place_order(OrderRequest("c-2", "sell", "005930", 1))
            assert [u.order.client_order_id for u in kiwoom.unknown_orders] == ["c-2"]
    assert (ack.odno, ack.ord_tmd) == ("0000007", "093005")
    limit, market = (json.loads(c.request.content) for c in ordr.calls)
    assert (limit["trde_tp"], limit["ord_uv"], limit["stk_cd"]) == ("0", "70000", "005930")
    assert (market["trde_tp"], market["ord_uv"]) == ("3", "")
    assert [c.request.headers["api-id"] for c in ordr.calls] == ["kt10000", "kt10001"]
