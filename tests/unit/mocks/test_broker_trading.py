"""Quotes, hashkey, orders into the simulated account, order inquiry and balance paging."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mocks import krx
from tests.unit.mocks.conftest import (
    ACCOUNT,
    APPKEY,
    APPSECRET,
    BALANCE,
    BOOK,
    DAILY,
    SAMSUNG,
    Kis,
    client_for,
    order_body,
)


async def hashkey(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    answer = await http.post(
        "/uapi/hashkey", json=body, headers={"appkey": APPKEY, "appsecret": APPSECRET}
    )
    assert answer.json()["JsonBody"] == body
    return str(answer.json()["HASH"])


async def test_price_fields_are_consistent(kis: Kis) -> None:
    output = (await kis.price()).json()["output"]
    price, base = int(output["stck_prpr"]), int(output["stck_sdpr"])
    assert int(output["prdy_vrss"]) == price - base
    assert int(output["aspr_unit"]) == krx.tick_size(price)
    assert (int(output["stck_llam"]), int(output["stck_mxpr"])) == krx.daily_limits(base)
    assert int(output["stck_lwpr"]) <= price <= int(output["stck_hgpr"])


async def test_order_book_has_ten_levels_around_the_price(kis: Kis) -> None:
    answer = await kis.http.get(BOOK, params=SAMSUNG, headers=kis.headers("FHKST01010200"))
    book = answer.json()["output1"]
    price = int(answer.json()["output2"]["stck_prpr"])
    asks = [int(book[f"askp{n}"]) for n in range(1, 11)]
    bids = [int(book[f"bidp{n}"]) for n in range(1, 11)]
    assert asks[0] > price > bids[0]
    assert asks == sorted(asks)
    assert bids == sorted(bids, reverse=True)
    assert int(book["total_askp_rsqn"]) == sum(int(book[f"askp_rsqn{n}"]) for n in range(1, 11))


async def test_order_with_matching_hashkey_fills_and_shows_in_balance(kis: Kis) -> None:
    body = order_body(qty=3)
    answer = await kis.order(body, hashkey=await hashkey(kis.http, body))
    assert answer.json()["rt_cd"] == "0"
    assert answer.json()["msg_cd"] == "APBK0013"
    output = answer.json()["output"]
    assert set(output) == {"KRX_FWDG_ORD_ORGNO", "ODNO", "ORD_TMD"}
    assert len(output["ODNO"]) == 10
    balance = await kis.http.get(BALANCE, params=ACCOUNT, headers=kis.headers("TTTC8434R"))
    (holding,) = balance.json()["output1"]
    assert (holding["pdno"], holding["hldg_qty"]) == ("005930", "3")
    summary = balance.json()["output2"][0]
    cost = int(holding["pchs_amt"])
    assert int(summary["dnca_tot_amt"]) == 100_000_000 - cost


async def test_hashkey_of_a_differently_formatted_body_still_matches(kis: Kis) -> None:
    body = order_body(qty=1)
    key = await hashkey(kis.http, body)
    spaced = json.dumps(dict(reversed(list(body.items()))), indent=2)
    answer = await kis.http.post(
        "/uapi/domestic-stock/v1/trading/order-cash",
        content=spaced,
        headers=kis.headers("TTTC0012U", hashkey=key),
    )
    assert answer.json()["rt_cd"] == "0"


async def test_order_whose_hashkey_does_not_match_is_rejected(kis: Kis) -> None:
    key = await hashkey(kis.http, order_body(qty=1))
    answer = await kis.order(order_body(qty=1000), hashkey=key)
    assert (answer.json()["rt_cd"], answer.json()["msg_cd"]) == ("1", "OPSQ2003")
    daily = await kis.http.get(
        DAILY,
        params={**ACCOUNT, "INQR_STRT_DT": "19000101", "INQR_END_DT": "29991231"},
        headers=kis.headers("TTTC0081R"),
    )
    assert daily.json()["output1"] == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({**order_body(), "CANO": "123"}, "OPSQ2002"),
        ({**order_body(), "PDNO": "999999"}, "KIOK0560"),
        ({**order_body(), "ORD_QTY": "0"}, "OPSQ2001"),
        ({**order_body(), "ORD_DVSN": "09"}, "OPSQ2001"),
        ({**order_body(), "ORD_DVSN": []}, "OPSQ2001"),  # found by tests/fuzz: was a 500
        ({**order_body(), "PDNO": 5930}, "OPSQ2001"),
        (order_body(price=70_010), "APBK1680"),  # 100-won tick band
        (order_body(price=10), "APBK1681"),  # far below the lower limit
        (order_body(qty=100_000), "APBK0952"),  # more than the cash
    ],
)
async def test_order_validation(kis: Kis, body: dict[str, Any], code: str) -> None:
    answer = await kis.order(body)
    assert (answer.json()["rt_cd"], answer.json()["msg_cd"]) == ("1", code)


async def test_selling_more_than_held_is_refused(kis: Kis) -> None:
    assert (await kis.order(order_body(qty=2))).json()["rt_cd"] == "0"
    assert (await kis.order(order_body(qty=3), tr_id="TTTC0011U")).json()["msg_cd"] == "APBK0400"
    assert (await kis.order(order_body(qty=2), tr_id="TTTC0011U")).json()["rt_cd"] == "0"


async def test_unmarketable_limit_order_rests_unfilled(kis: Kis) -> None:
    lower = int((await kis.price()).json()["output"]["stck_llam"])
    placed = await kis.order(order_body(qty=1, price=lower))
    odno = placed.json()["output"]["ODNO"]
    daily = await kis.http.get(
        DAILY,
        params={**ACCOUNT, "INQR_STRT_DT": "19000101", "INQR_END_DT": "29991231", "ODNO": odno},
        headers=kis.headers("TTTC0081R"),
    )
    (row,) = daily.json()["output1"]
    assert (row["odno"], row["tot_ccld_qty"], row["rmn_qty"]) == (odno, "0", "1")


async def test_paper_profile_wants_v_tr_ids(make_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_app(profile="paper", requests_per_second=100)) as http:
        kis = Kis(http)
        await kis.issue()
        assert (await kis.order(order_body(qty=1))).json()["msg_cd"] == "OPSQ0002"
        assert (await kis.order(order_body(qty=1), tr_id="VTTC0012U")).json()["rt_cd"] == "0"


async def pages(kis: Kis, path: str, tr_id: str, params: dict[str, str]) -> list[httpx.Response]:
    answers = []
    fk = nk = ""
    cont = ""
    for _ in range(20):
        query = {**params, "CTX_AREA_FK100": fk, "CTX_AREA_NK100": nk}
        answer = await kis.http.get(path, params=query, headers=kis.headers(tr_id, tr_cont=cont))
        answers.append(answer)
        if answer.headers["tr_cont"] in ("D", "E"):
            return answers
        fk, nk, cont = answer.json()["ctx_area_fk100"], answer.json()["ctx_area_nk100"], "N"
    raise AssertionError("paging never ended")


async def test_balance_pages_follow_tr_cont(make_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_app(balance_page_size=2, requests_per_second=1000)) as http:
        kis = Kis(http)
        await kis.issue()
        codes = ["005930", "000660", "035720", "015760", "011200"]
        for code in codes:
            assert (await kis.order(order_body(code=code, qty=1))).json()["rt_cd"] == "0"
        answers = await pages(kis, BALANCE, "TTTC8434R", ACCOUNT)
        assert [a.headers["tr_cont"] for a in answers] == ["F", "M", "E"]
        held = [row["pdno"] for a in answers for row in a.json()["output1"]]
        assert held == sorted(codes)


async def test_daily_orders_page_and_filter(make_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_app(order_page_size=2, requests_per_second=1000)) as http:
        kis = Kis(http)
        await kis.issue()
        for qty in (1, 2, 3):
            await kis.order(order_body(qty=qty))
        query = {
            **ACCOUNT,
            "INQR_STRT_DT": "19000101",
            "INQR_END_DT": "29991231",
            "INQR_DVSN": "01",
        }
        answers = await pages(kis, DAILY, "TTTC0081R", query)
        assert [a.headers["tr_cont"] for a in answers] == ["F", "E"]
        rows = [row for a in answers for row in a.json()["output1"]]
        assert [row["ord_qty"] for row in rows] == ["1", "2", "3"]
        assert all(row["sll_buy_dvsn_cd"] == "02" for row in rows)
        one_page = await pages(kis, DAILY, "TTTC0081R", {**query, "SLL_BUY_DVSN_CD": "01"})
        assert one_page[0].headers["tr_cont"] == "D"
        assert one_page[0].json()["output1"] == []


async def test_a_bad_cursor_is_rejected(kis: Kis) -> None:
    answer = await kis.http.get(
        BALANCE,
        params={**ACCOUNT, "CTX_AREA_NK100": "banana"},
        headers=kis.headers("TTTC8434R", tr_cont="N"),
    )
    assert answer.json()["msg_cd"] == "OPSQ2001"


async def test_a_body_past_the_journals_limit_reaches_the_route_whole(kis: Kis) -> None:
    # In-process (no server's 413 in front), in chunks: the fault injector reads the first
    # 64 KiB for the journal and must hand all of it, and the rest, to the route.
    body = {"PDNO": "005930", "NOTE": "x" * 200_000}
    raw = json.dumps(body).encode()

    async def chunks() -> Any:
        for start in range(0, len(raw), 8192):
            yield raw[start : start + 8192]

    answer = await kis.http.post(
        "/uapi/hashkey",
        content=chunks(),
        headers={"appkey": APPKEY, "appsecret": APPSECRET, "content-type": "application/json"},
    )
    assert answer.status_code == 200
    assert answer.json()["JsonBody"] == body
