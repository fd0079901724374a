"""The Kiwoom profile's TRs: stock info and list, charts, orders into the account book,
balance and the order inquiry that reconciles an order, with cont-yn/next-key paging."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest
from fastapi import FastAPI

from mocks import krx
from mocks.market import LISTINGS
from tests.unit.mocks.conftest import (
    ACNT,
    CHART,
    ORDR,
    STKINFO,
    Kiwoom,
    client_for,
    kiwoom_order,
)

# Virtual loop time: the market steps once a second of loop time, so answers compared
# across requests must not straddle a step on a slow machine.
pytestmark = pytest.mark.looptime

SAMSUNG = {"stk_cd": "005930"}
KOSDAQ = {"086520", "247540", "293490"}
TODAY = "20260302"  # conftest.KW_OPEN
BALANCE = {"qry_tp": "1", "dmst_stex_tp": "KRX"}
ORDERS = {"qry_tp": "1", "stk_bond_tp": "0", "sell_tp": "0", "dmst_stex_tp": "%"}


def unsigned(value: str) -> int:
    return abs(int(value))


async def test_stock_info_quotes_the_market_with_kiwoom_signs(kiwoom: Kiwoom) -> None:
    answer = await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)
    assert answer.status_code == 200
    assert (answer.headers["api-id"], answer.headers["cont-yn"]) == ("ka10001", "N")
    info = answer.json()
    assert (info["return_code"], info["stk_cd"], info["stk_nm"]) == (0, "005930", "삼성전자")
    base, price = int(info["base_pric"]), unsigned(info["cur_prc"])
    change = price - base
    assert int(info["pred_pre"]) == change
    assert info["cur_prc"] == (f"+{price}" if change > 0 else f"-{price}" if change else str(price))
    assert info["flu_rt"] in (f"{change / base * 100:+.2f}", "0.00")
    assert info["pre_sig"] == ("2" if change > 0 else "5" if change < 0 else "3")
    lower, upper = krx.daily_limits(base)
    assert (info["upl_pric"], info["lst_pric"]) == (f"+{upper}", f"-{lower}")
    assert unsigned(info["low_pric"]) <= price <= unsigned(info["high_pric"])
    assert int(info["trde_qty"]) > 0


async def test_a_venue_suffix_quotes_the_same_stock(kiwoom: Kiwoom) -> None:
    krx_info = (await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json()
    nxt_info = (await kiwoom.tr(STKINFO, "ka10001", {"stk_cd": "005930_NX"})).json()
    assert nxt_info["stk_cd"] == "005930_NX"
    assert nxt_info["cur_prc"] == krx_info["cur_prc"]


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        ({"stk_cd": "999999"}, 1902, "종목코드=999999"),
        ({"stk_cd": "12"}, 1902, "종목코드=12"),
        ({"stk_cd": "005930_XX"}, 1901, "시장 코드값이 존재하지 않습니다. 종목코드=005930_XX"),
        ({}, 1511, "필수입력 파라미터=stk_cd"),
    ],
)
async def test_unknown_symbols_and_missing_fields(
    kiwoom: Kiwoom, body: dict[str, str], code: int, text: str
) -> None:
    answer = await kiwoom.tr(STKINFO, "ka10001", body)
    assert answer.status_code == 200
    assert answer.json()["return_code"] == code
    assert answer.json()["return_msg"].endswith(text)


async def test_stock_list_pages_with_cont_yn_and_next_key_until_n(kiwoom: Kiwoom) -> None:
    pages = await kiwoom.pages(STKINFO, "ka10099", {"mrkt_tp": "0"}, "list")
    kospi = sorted(code for code, _, _ in LISTINGS if code not in KOSDAQ)
    assert [len(page) for page in pages] == [10, 10, len(kospi) - 20]
    rows = [row for page in pages for row in page]
    assert [row["code"] for row in rows] == kospi
    samsung = next(row for row in rows if row["code"] == "005930")
    assert samsung["name"] == "삼성전자"
    assert (samsung["marketCode"], samsung["marketName"], samsung["nxtEnable"]) == (
        "0",
        "거래소",
        "Y",
    )
    assert len(samsung["listCount"]) == 16
    assert len(samsung["lastPrice"]) == 8
    info = (await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json()
    assert int(samsung["lastPrice"]) == int(info["base_pric"])
    datetime.strptime(samsung["regDay"], "%Y%m%d")


async def test_kosdaq_and_markets_without_listings(kiwoom: Kiwoom) -> None:
    (kosdaq,) = await kiwoom.pages(STKINFO, "ka10099", {"mrkt_tp": "10"}, "list")
    assert sorted(row["code"] for row in kosdaq) == sorted(KOSDAQ)
    assert {row["marketName"] for row in kosdaq} == {"코스닥"}
    assert await kiwoom.pages(STKINFO, "ka10099", {"mrkt_tp": "8"}, "list") == [[]]
    refused = await kiwoom.tr(STKINFO, "ka10099", {"mrkt_tp": "99"})
    assert refused.json()["return_code"] == 1517


async def test_a_next_key_must_belong_to_the_query(kiwoom: Kiwoom) -> None:
    first = await kiwoom.tr(STKINFO, "ka10099", {"mrkt_tp": "0"})
    key = first.headers["next-key"]
    assert (first.headers["cont-yn"], bool(key)) == ("Y", True)
    chart = {"stk_cd": "005930", "base_dt": TODAY, "upd_stkpc_tp": "1"}
    foreign = await kiwoom.tr(CHART, "ka10081", chart, **{"cont-yn": "Y", "next-key": key})
    assert foreign.json()["return_code"] == 1517
    keyless = await kiwoom.tr(STKINFO, "ka10099", {"mrkt_tp": "0"}, **{"cont-yn": "Y"})
    assert keyless.json()["return_code"] == 1511
    stamp = key.partition("-")[0]
    beyond = await kiwoom.tr(
        STKINFO, "ka10099", {"mrkt_tp": "0"}, **{"cont-yn": "Y", "next-key": f"{stamp}-999"}
    )
    assert beyond.json()["return_code"] == 1517


async def test_daily_chart_is_newest_first_and_meets_today(kiwoom: Kiwoom) -> None:
    chart = {"stk_cd": "005930", "base_dt": TODAY, "upd_stkpc_tp": "1"}
    pages = await kiwoom.pages(CHART, "ka10081", chart, "stk_dt_pole_chart_qry")
    rows = [row for page in pages for row in page]
    assert len(pages) == 7  # today and 60 trading days, 10 a page
    assert len(rows) == 61
    days = [datetime.strptime(row["dt"], "%Y%m%d").date() for row in rows]
    assert days[0] == date(2026, 3, 2)
    assert days == sorted(days, reverse=True)
    assert all(day.weekday() < 5 for day in days)
    info = (await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json()
    assert int(rows[0]["cur_prc"]) == unsigned(info["cur_prc"])
    assert rows[0]["trde_qty"] == info["trde_qty"]
    # Yesterday closed at today's base price, and every change is against the day before.
    assert int(rows[1]["cur_prc"]) == int(info["base_pric"])
    for newer, older in itertools.pairwise(rows):
        assert int(newer["pred_pre"]) == int(newer["cur_prc"]) - int(older["cur_prc"])
        move = int(newer["pred_pre"])
        assert newer["pred_pre_sig"] == ("2" if move > 0 else "5" if move < 0 else "3")
        low, high = int(newer["low_pric"]), int(newer["high_pric"])
        assert low <= int(newer["open_pric"]) <= high
        assert low <= int(newer["cur_prc"]) <= high
    assert set(rows[0]) == {
        "dt",
        "cur_prc",
        "open_pric",
        "high_pric",
        "low_pric",
        "trde_qty",
        "trde_prica",
        "pred_pre",
        "pred_pre_sig",
        "trde_tern_rt",
    }


async def test_daily_chart_starts_at_base_dt(kiwoom: Kiwoom) -> None:
    chart = {"stk_cd": "005930", "base_dt": "20260220", "upd_stkpc_tp": "0"}
    answer = await kiwoom.tr(CHART, "ka10081", chart)
    assert answer.json()["stk_cd"] == "005930"
    assert answer.json()["stk_dt_pole_chart_qry"][0]["dt"] == "20260220"
    bad = await kiwoom.tr(CHART, "ka10081", {**chart, "base_dt": "2026-02-20"})
    assert bad.json()["return_code"] == 1517


async def test_daily_history_is_seeded(make_kiwoom_app: Callable[..., FastAPI]) -> None:
    async def closes(seed: int) -> list[str]:
        async with client_for(make_kiwoom_app(seed=seed, requests_per_second=100)) as http:
            kiwoom = Kiwoom(http)
            await kiwoom.issue()
            chart = {"stk_cd": "000660", "base_dt": "20260227", "upd_stkpc_tp": "1"}
            rows = (await kiwoom.tr(CHART, "ka10081", chart)).json()["stk_dt_pole_chart_qry"]
            return [row["cur_prc"] for row in rows]

    assert await closes(5) == await closes(5)
    assert await closes(5) != await closes(6)


INVESTOR_CHART = {
    "dt": TODAY,
    "stk_cd": "005930",
    "amt_qty_tp": "1",
    "trde_tp": "0",
    "unit_tp": "1000",
}
INSTITUTIONS = (
    "fnnc_invt",
    "insrnc",
    "invtrt",
    "etc_fnnc",
    "bank",
    "penfnd_etc",
    "samo_fund",
    "natn",
)


async def test_investor_chart_nets_balance_across_groups_and_pages(kiwoom: Kiwoom) -> None:
    pages = await kiwoom.pages(CHART, "ka10060", INVESTOR_CHART, "stk_invsr_orgn_chart")
    rows = [row for page in pages for row in page]
    assert len(pages) > 1
    assert len(rows) == 61
    daily = (
        await kiwoom.tr(
            CHART, "ka10081", {"stk_cd": "005930", "base_dt": TODAY, "upd_stkpc_tp": "1"}
        )
    ).json()["stk_dt_pole_chart_qry"]
    for row, bar in zip(rows, daily, strict=False):
        assert row["dt"] == bar["dt"]
        assert unsigned(row["cur_prc"]) == int(bar["cur_prc"])
        assert row["pred_pre"] == bar["pred_pre"]
        assert row["acc_trde_prica"] == bar["trde_prica"]
        assert int(row["orgn"]) == sum(int(row[group]) for group in INSTITUTIONS)
        groups = ("ind_invsr", "frgnr_invsr", "orgn", "etc_corp", "natfor")
        assert sum(int(row[group]) for group in groups) == 0


@pytest.mark.parametrize(("trade", "sign"), [("1", 1), ("2", -1)])
async def test_investor_chart_buys_are_positive_and_sells_negative(
    kiwoom: Kiwoom, trade: str, sign: int
) -> None:
    body = {**INVESTOR_CHART, "amt_qty_tp": "2", "unit_tp": "1", "trde_tp": trade}
    rows = (await kiwoom.tr(CHART, "ka10060", body)).json()["stk_invsr_orgn_chart"]
    groups = ("ind_invsr", "frgnr_invsr", *INSTITUTIONS, "etc_corp", "natfor")
    volumes = (
        await kiwoom.tr(
            CHART, "ka10081", {"stk_cd": "005930", "base_dt": TODAY, "upd_stkpc_tp": "1"}
        )
    ).json()["stk_dt_pole_chart_qry"]
    for row, bar in zip(rows, volumes, strict=False):
        flows = [int(row[group]) * sign for group in groups]
        assert min(flows) >= 0
        assert sum(flows) == int(bar["trde_qty"])  # unit_tp 1: shares


async def test_investor_chart_needs_its_fields(kiwoom: Kiwoom) -> None:
    missing = await kiwoom.tr(
        CHART, "ka10060", {k: v for k, v in INVESTOR_CHART.items() if k != "dt"}
    )
    assert missing.json()["return_code"] == 1511
    bad_unit = await kiwoom.tr(CHART, "ka10060", {**INVESTOR_CHART, "unit_tp": "10"})
    assert bad_unit.json()["return_code"] == 1517


async def test_an_order_then_the_balance_shows_the_position(kiwoom: Kiwoom) -> None:
    answer = await kiwoom.tr(ORDR, "kt10000", kiwoom_order(qty=3))
    assert answer.status_code == 200
    placed = answer.json()
    assert (placed["return_code"], placed["dmst_stex_tp"]) == (0, "KRX")
    assert len(placed["ord_no"]) == 7
    assert placed["ord_no"].isdigit()
    price = unsigned((await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json()["cur_prc"])
    balance = (await kiwoom.tr(ACNT, "kt00018", BALANCE)).json()
    (holding,) = balance["acnt_evlt_remn_indv_tot"]
    assert (holding["stk_cd"], holding["stk_nm"]) == ("A005930", "삼성전자")
    assert holding["rmnd_qty"] == "000000000000003"
    assert holding["trde_able_qty"] == "000000000000003"
    assert holding["tdy_buyq"] == "000000000000003"
    assert int(holding["pur_amt"]) == 3 * price
    assert int(holding["cur_prc"]) == price
    assert len(holding["cur_prc"]) == 12
    assert int(balance["tot_pur_amt"]) == 3 * price
    assert int(balance["prsm_dpst_aset_amt"]) == 100_000_000  # cash + holdings at cost
    assert balance["return_code"] == 0


async def test_a_sell_reduces_the_position_and_both_orders_reconcile(kiwoom: Kiwoom) -> None:
    bought = (await kiwoom.tr(ORDR, "kt10000", kiwoom_order(qty=5))).json()
    sold = (await kiwoom.tr(ORDR, "kt10001", kiwoom_order(qty=2))).json()
    assert sold["return_msg"] == "매도주문이 완료되었습니다."
    (holding,) = (await kiwoom.tr(ACNT, "kt00018", BALANCE)).json()["acnt_evlt_remn_indv_tot"]
    assert int(holding["rmnd_qty"]) == 3
    assert int(holding["tdy_sellq"]) == 2
    rows = (await kiwoom.tr(ACNT, "kt00007", ORDERS)).json()["acnt_ord_cntr_prps_dtl"]
    assert [(r["ord_no"], r["io_tp_nm"]) for r in rows] == [
        (bought["ord_no"], "현금매수"),
        (sold["ord_no"], "현금매도"),
    ]
    reversed_rows = (await kiwoom.tr(ACNT, "kt00007", {**ORDERS, "qry_tp": "2"})).json()
    assert [r["ord_no"] for r in reversed_rows["acnt_ord_cntr_prps_dtl"]] == [
        sold["ord_no"],
        bought["ord_no"],
    ]


async def test_the_order_inquiry_finds_an_order_by_number_code_and_side(kiwoom: Kiwoom) -> None:
    """How a client reconciles an order whose answer it never got: ask for the day's orders
    of that code and side from a number on, and read the fill."""
    await kiwoom.tr(ORDR, "kt10000", kiwoom_order(code="000660", qty=1))
    target = (await kiwoom.tr(ORDR, "kt10000", kiwoom_order(qty=4))).json()["ord_no"]
    query = {**ORDERS, "sell_tp": "2", "stk_cd": "005930", "fr_ord_no": target, "ord_dt": TODAY}
    (row,) = (await kiwoom.tr(ACNT, "kt00007", query)).json()["acnt_ord_cntr_prps_dtl"]
    assert (row["ord_no"], row["stk_cd"], row["trde_tp"]) == (target, "A005930", "시장가")
    assert (row["ord_qty"], row["cntr_qty"], row["ord_remnq"]) == (
        "0000000004",
        "0000000004",
        "0000000000",
    )
    assert int(row["cntr_uv"]) > 0
    datetime.strptime(row["ord_tm"], "%H:%M:%S")
    sells = (await kiwoom.tr(ACNT, "kt00007", {**query, "sell_tp": "1"})).json()
    assert sells["acnt_ord_cntr_prps_dtl"] == []
    yesterday = (await kiwoom.tr(ACNT, "kt00007", {**query, "ord_dt": "20260227"})).json()
    assert yesterday["acnt_ord_cntr_prps_dtl"] == []


async def test_unfilled_and_filled_orders_list_apart(kiwoom: Kiwoom) -> None:
    info = (await kiwoom.tr(STKINFO, "ka10001", SAMSUNG)).json()
    floor = unsigned(info["lst_pric"])
    resting = (await kiwoom.tr(ORDR, "kt10000", kiwoom_order(qty=2, price=floor))).json()
    filled = (await kiwoom.tr(ORDR, "kt10000", kiwoom_order(qty=1))).json()
    unfilled = (await kiwoom.tr(ACNT, "kt00007", {**ORDERS, "qry_tp": "3"})).json()
    (row,) = unfilled["acnt_ord_cntr_prps_dtl"]
    assert (row["ord_no"], row["trde_tp"], row["ord_remnq"]) == (
        resting["ord_no"],
        "보통",
        "0000000002",
    )
    assert int(row["ord_uv"]) == floor
    fills = (await kiwoom.tr(ACNT, "kt00007", {**ORDERS, "qry_tp": "4"})).json()
    assert [r["ord_no"] for r in fills["acnt_ord_cntr_prps_dtl"]] == [filled["ord_no"]]


async def test_orders_record_their_venue(kiwoom: Kiwoom) -> None:
    placed = (await kiwoom.tr(ORDR, "kt10000", kiwoom_order(qty=1, venue="NXT"))).json()
    assert placed["dmst_stex_tp"] == "NXT"
    nxt = (await kiwoom.tr(ACNT, "kt00007", {**ORDERS, "dmst_stex_tp": "NXT"})).json()
    assert [r["dmst_stex_tp"] for r in nxt["acnt_ord_cntr_prps_dtl"]] == ["NXT"]
    krx_only = (await kiwoom.tr(ACNT, "kt00007", {**ORDERS, "dmst_stex_tp": "KRX"})).json()
    assert krx_only["acnt_ord_cntr_prps_dtl"] == []


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        ({**kiwoom_order(), "trde_tp": "0"}, 2000, "[2000](308003:주문단가를 입력하십시요)"),
        (kiwoom_order(qty=100_000), 2000, "[2000](APBK0952:"),
        (kiwoom_order(price=70_001), 2000, "[2000](APBK1680:"),
        (kiwoom_order(code="999999"), 1902, "종목코드=999999"),
        ({**kiwoom_order(), "trde_tp": "5"}, 1517, "파라미터=trde_tp"),
        ({**kiwoom_order(), "ord_qty": "0"}, 1517, "파라미터=ord_qty"),
        ({**kiwoom_order(), "dmst_stex_tp": "NYSE"}, 1517, "파라미터=dmst_stex_tp"),
        ({k: v for k, v in kiwoom_order().items() if k != "stk_cd"}, 1511, "파라미터=stk_cd"),
    ],
)
async def test_refused_orders(kiwoom: Kiwoom, body: dict[str, str], code: int, text: str) -> None:
    answer = await kiwoom.tr(ORDR, "kt10000", body)
    assert answer.status_code == 200
    assert answer.json()["return_code"] == code
    assert text in answer.json()["return_msg"]
    assert (await kiwoom.http.get("/_squall/account/orders")).json() == []


async def test_selling_what_is_not_held_is_refused(kiwoom: Kiwoom) -> None:
    answer = await kiwoom.tr(ORDR, "kt10001", kiwoom_order(qty=1))
    assert answer.json()["return_code"] == 2000
    assert answer.json()["return_msg"].startswith("[2000](APBK0400:")


async def test_paper_takes_orders_on_krx_only(make_kiwoom_app: Callable[..., FastAPI]) -> None:
    async with client_for(make_kiwoom_app(profile="paper", requests_per_second=100)) as http:
        kiwoom = Kiwoom(http)
        await kiwoom.issue()
        nxt = (await kiwoom.tr(ORDR, "kt10000", kiwoom_order(qty=1, venue="NXT"))).json()
        krx_order = (await kiwoom.tr(ORDR, "kt10000", kiwoom_order(qty=1))).json()
    assert nxt == {
        "return_code": 2000,
        "return_msg": "[2000](RC9000:모의투자에서는 해당업무가 제공되지 않습니다.)",
    }
    assert krx_order["return_code"] == 0


async def test_balance_pages_and_repeats_its_totals(
    make_kiwoom_app: Callable[..., FastAPI],
) -> None:
    async with client_for(make_kiwoom_app(requests_per_second=100, kiwoom_page_size=4)) as http:
        kiwoom = Kiwoom(http)
        await kiwoom.issue()
        codes = ["005930", "000660", "000270", "035720", "015760", "011200"]
        for code in codes:
            assert (await kiwoom.tr(ORDR, "kt10000", kiwoom_order(code=code, qty=1))).json()[
                "return_code"
            ] == 0
        first = await kiwoom.tr(ACNT, "kt00018", BALANCE)
        key = first.headers["next-key"]
        second = await kiwoom.tr(ACNT, "kt00018", BALANCE, **{"cont-yn": "Y", "next-key": key})
    assert (first.headers["cont-yn"], second.headers["cont-yn"]) == ("Y", "N")
    rows = first.json()["acnt_evlt_remn_indv_tot"] + second.json()["acnt_evlt_remn_indv_tot"]
    assert [row["stk_cd"] for row in rows] == [f"A{code}" for code in sorted(codes)]
    totals = ("tot_pur_amt", "tot_evlt_amt", "prsm_dpst_aset_amt")
    assert [first.json()[t] for t in totals] == [second.json()[t] for t in totals]
    assert sum(int(row["pur_amt"]) for row in rows) == int(first.json()["tot_pur_amt"])


async def test_account_number_matches_the_control_planes_book(kiwoom: Kiwoom) -> None:
    number = (await kiwoom.tr(ACNT, "ka00001", {})).json()["acctNo"]
    assert len(number) == 10
    assert number.isdigit()
    await kiwoom.tr(ORDR, "kt10000", kiwoom_order(qty=1))
    (order,) = (await kiwoom.http.get("/_squall/account/orders")).json()
    assert order["account"] == f"{number[:8]}-{number[8:]}"
    assert (order["side"], order["code"], order["quantity"]) == ("buy", "005930", 1)


async def test_each_app_key_trades_its_own_account(kiwoom: Kiwoom) -> None:
    other = Kiwoom(kiwoom.http)
    await other.issue(appkey="someone" + "e" * 36)
    await kiwoom.tr(ORDR, "kt10000", kiwoom_order(qty=2))
    theirs: dict[str, Any] = (await other.tr(ACNT, "kt00018", BALANCE)).json()
    assert theirs["acnt_evlt_remn_indv_tot"] == []
    assert int(theirs["prsm_dpst_aset_amt"]) == 100_000_000
