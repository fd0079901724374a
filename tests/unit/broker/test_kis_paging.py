"""Today's orders and the balance: queries, tr_ids, and KIS paging (tr_cont, ctx cursors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from system.broker import Balance, DailyOrder, Holding, KisClient, MalformedResponse, paging
from tests.unit.broker.conftest import (
    BALANCE,
    DAILY,
    daily_page,
    daily_row,
    make_settings,
    ok,
)

pytestmark = [pytest.mark.looptime, pytest.mark.usefixtures("token_route")]


def holding_row(code: str, qty: str = "10") -> dict[str, str]:
    return {
        "pdno": code,
        "prdt_name": f"종목{code}",
        "hldg_qty": qty,
        "ord_psbl_qty": qty,
        "pchs_avg_pric": "70250.5000",
        "prpr": "71000",
        "evlu_amt": "710000",
        "evlu_pfls_amt": "7495",
        "evlu_pfls_rt": "1.07",
    }


def totals(cash: str) -> list[dict[str, str]]:
    return [
        {
            "dnca_tot_amt": cash,
            "nxdy_excc_amt": cash,
            "tot_evlu_amt": "9000000",
            "nass_amt": "8900000",
        }
    ]


def balance_page(
    rows: list[dict[str, str]], tr_cont: str, cash: str = "1000000", fk: str = "", nk: str = ""
) -> httpx.Response:
    body: dict[str, Any] = {
        "output1": rows,
        "output2": totals(cash),
        "ctx_area_fk100": fk,
        "ctx_area_nk100": nk,
    }
    return ok(body, tr_cont=tr_cont)


async def test_daily_orders_sends_the_documented_query(
    broker: respx.MockRouter, client: KisClient
) -> None:
    route = broker.get(DAILY).mock(return_value=daily_page([]))
    assert await client.daily_orders() == []
    request = route.calls.last.request
    assert request.headers["tr_id"] == "TTTC0081R"
    assert request.headers["tr_cont"] == ""
    assert dict(request.url.params) == {
        "CANO": "50012345",
        "ACNT_PRDT_CD": "01",
        "INQR_STRT_DT": "20260302",
        "INQR_END_DT": "20260302",
        "SLL_BUY_DVSN_CD": "00",
        "INQR_DVSN": "00",
        "PDNO": "",
        "CCLD_DVSN": "00",
        "ORD_GNO_BRNO": "",
        "ODNO": "",
        "INQR_DVSN_3": "00",
        "INQR_DVSN_1": "",
        "EXCG_ID_DVSN_CD": "KRX",
        "CTX_AREA_FK100": "",
        "CTX_AREA_NK100": "",
    }


async def test_one_orders_row_is_asked_for_by_its_number(
    broker: respx.MockRouter, client: KisClient
) -> None:
    route = broker.get(DAILY).mock(return_value=daily_page([]))
    assert await client.daily_orders(odno="0000000042") == []
    assert route.calls.last.request.url.params["ODNO"] == "0000000042"


async def test_daily_orders_parses_rows(broker: respx.MockRouter, client: KisClient) -> None:
    row = daily_row("0000000042", side="01", qty="7", price="0", cancelled="Y")
    row.update(tot_ccld_qty="3", avg_prvs="70100.5", rmn_qty="4")
    broker.get(DAILY).mock(return_value=daily_page([row]))
    assert await client.daily_orders() == [
        DailyOrder(
            order_date="20260302",
            org_no="91252",
            odno="0000000042",
            side="sell",
            code="005930",
            quantity=7,
            price=0,
            order_time="091501",
            filled_quantity=3,
            average_price=70100.5,
            remaining_quantity=4,
            cancelled=True,
        )
    ]


@pytest.mark.parametrize(("first", "middle", "last"), [("F", "M", "D"), ("M", "M", "E")])
async def test_paging_follows_tr_cont_and_echoes_the_cursor(
    broker: respx.MockRouter, client: KisClient, first: str, middle: str, last: str
) -> None:
    route = broker.get(DAILY).mock(
        side_effect=[
            daily_page([daily_row("1")], first, fk="FK-A", nk="NK-1"),
            daily_page([daily_row("2")], middle, fk="FK-A", nk="NK-2"),
            daily_page([daily_row("3")], last),
        ]
    )
    orders = await client.daily_orders()
    assert [order.odno for order in orders] == ["1", "2", "3"]
    sent = [call.request for call in route.calls]
    assert [request.headers["tr_cont"] for request in sent] == ["", "N", "N"]
    cursors = [
        (request.url.params["CTX_AREA_FK100"], request.url.params["CTX_AREA_NK100"])
        for request in sent
    ]
    assert cursors == [("", ""), ("FK-A", "NK-1"), ("FK-A", "NK-2")]


async def test_a_page_without_tr_cont_is_the_last(
    broker: respx.MockRouter, client: KisClient
) -> None:
    route = broker.get(DAILY).mock(return_value=ok({"output1": [daily_row("1")]}))
    assert len(await client.daily_orders()) == 1
    assert route.call_count == 1


async def test_a_cursor_that_does_not_move_stops_the_paging(
    broker: respx.MockRouter, client: KisClient
) -> None:
    route = broker.get(DAILY).mock(return_value=daily_page([daily_row("1")], "M", fk="X", nk="Y"))
    with pytest.raises(MalformedResponse, match="same cursor"):
        await client.daily_orders()
    assert route.call_count == 2


async def test_endless_pages_are_cut_off(
    broker: respx.MockRouter, client: KisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "MAX_PAGES", 5)
    pages = iter(range(1000))

    def next_page(request: httpx.Request) -> httpx.Response:
        return daily_page([], "M", nk=f"NK-{next(pages)}")

    route = broker.get(DAILY).mock(side_effect=next_page)
    with pytest.raises(MalformedResponse, match="more pages follow after 5 pages"):
        await client.daily_orders()
    assert route.call_count == 5


async def test_an_unknown_side_code_is_malformed(
    broker: respx.MockRouter, client: KisClient
) -> None:
    broker.get(DAILY).mock(return_value=daily_page([daily_row("1", side="09")]))
    with pytest.raises(MalformedResponse, match="sll_buy_dvsn_cd '09'"):
        await client.daily_orders()


async def test_balance_sends_the_documented_query(
    broker: respx.MockRouter, client: KisClient
) -> None:
    route = broker.get(BALANCE).mock(return_value=balance_page([], "D"))
    await client.balance()
    request = route.calls.last.request
    assert request.headers["tr_id"] == "TTTC8434R"
    assert dict(request.url.params) == {
        "CANO": "50012345",
        "ACNT_PRDT_CD": "01",
        "AFHR_FLPR_YN": "N",
        "OFL_YN": "",
        "INQR_DVSN": "02",
        "UNPR_DVSN": "01",
        "FUND_STTL_ICLD_YN": "N",
        "FNCG_AMT_AUTO_RDPT_YN": "N",
        "PRCS_DVSN": "00",
        "CTX_AREA_FK100": "",
        "CTX_AREA_NK100": "",
    }


async def test_balance_joins_holdings_over_pages_and_takes_totals_from_the_last(
    broker: respx.MockRouter, client: KisClient
) -> None:
    route = broker.get(BALANCE).mock(
        side_effect=[
            balance_page([holding_row("005930"), holding_row("000660")], "F", "111", nk="P2"),
            balance_page([holding_row("035420", qty="2")], "D", "222"),
        ]
    )
    balance = await client.balance()
    assert [holding.code for holding in balance.holdings] == ["005930", "000660", "035420"]
    assert balance.holdings[0] == Holding(
        code="005930",
        name="종목005930",
        quantity=10,
        orderable_quantity=10,
        average_price=70250.5,
        price=71000,
        value=710000,
        profit_loss=7495,
        profit_loss_rate=1.07,
    )
    assert (balance.cash, balance.total_value, balance.net_assets) == (222, 9000000, 8900000)
    assert isinstance(balance, Balance)
    assert route.calls.last.request.url.params["CTX_AREA_NK100"] == "P2"
    assert route.calls.last.request.headers["tr_cont"] == "N"


async def test_balance_reads_totals_only_from_the_last_page(
    broker: respx.MockRouter, client: KisClient
) -> None:
    first = ok({"output1": [holding_row("005930")], "ctx_area_nk100": "P2"}, tr_cont="M")
    broker.get(BALANCE).mock(side_effect=[first, balance_page([], "E", "333")])
    balance = await client.balance()
    assert balance.cash == 333
    assert len(balance.holdings) == 1


async def test_balance_accepts_totals_as_a_single_object(
    broker: respx.MockRouter, client: KisClient
) -> None:
    body = {"output1": [], "output2": totals("5")[0]}
    broker.get(BALANCE).mock(return_value=ok(body, tr_cont="D"))
    assert (await client.balance()).cash == 5


async def test_balance_without_totals_is_malformed(
    broker: respx.MockRouter, client: KisClient
) -> None:
    broker.get(BALANCE).mock(return_value=ok({"output1": [], "output2": []}, tr_cont="D"))
    with pytest.raises(MalformedResponse, match="output2"):
        await client.balance()


@pytest.mark.parametrize(("path", "tr_id"), [(DAILY, "VTTC0081R"), (BALANCE, "VTTC8434R")])
async def test_paper_inquiries_use_v_tr_ids(
    broker: respx.MockRouter, make_client: Callable[..., KisClient], path: str, tr_id: str
) -> None:
    route = broker.get(path).mock(return_value=balance_page([], "D"))
    client = make_client(make_settings(profile="paper"))
    await (client.daily_orders() if path == DAILY else client.balance())
    assert route.calls.last.request.headers["tr_id"] == tr_id
