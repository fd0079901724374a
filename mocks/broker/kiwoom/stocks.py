"""Stock information at /api/dostk/stkinfo: ka10001 (주식기본정보요청) and ka10099
(종목정보 리스트).

ka10001 ``{stk_cd}`` answers the simulated market at the current step, events included:
prices signed against the base price (yesterday's close), limits (upl_pric "+", lst_pric
"-"), base_pric unsigned, pre_sig 1-5 as KIS's prdy_vrss_sign, and the valuation figures
the simulator has (per, eps, pbr, bps, the 250-day high/low, which also serve as the
year's: oyr_hgst/oyr_lwst). flo_stk is in thousands of shares and mac in 억원, from the
seeded share count (``listings``). An unknown code is 1902, an unknown venue suffix 1901.

ka10099 ``{mrkt_tp}`` lists a market's listings by code, ``kiwoom_page_size`` a page.
listCount is zero-padded to 16 digits and lastPrice to 8 (the guide); auditInfo "정상",
state "증거금20%", orderWarning "0" and nxtEnable "Y" are the same for every listing (the
simulator has no such distinctions).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mocks.broker.kiwoom import codes
from mocks.broker.kiwoom.formats import padded, signed, signed_price, signed_rate
from mocks.broker.kiwoom.gateway import STKINFO, Answer, Call, Gateway, choice, text
from mocks.broker.kiwoom.listings import MARKET_NAMES, MARKET_TYPES, Listing
from mocks.broker.kiwoom.paging import page
from mocks.market import day_sign


def stock_info(gateway: Gateway, call: Call) -> Answer:
    kiwoom = gateway.kiwoom
    stock = kiwoom.stock(text(call.fields, "stk_cd"))
    instrument = stock.listing.instrument
    tick = kiwoom.broker.market.tick(instrument.code, kiwoom.broker.step())
    base = instrument.base_price
    change = tick.price - base
    shares = stock.listing.shares
    fields: dict[str, Any] = {
        "stk_cd": stock.raw,
        "stk_nm": instrument.name,
        "setl_mm": "12",
        "flo_stk": str(shares // 1000),
        "mac": str(tick.price * shares // 100_000_000),
        "per": f"{instrument.per:.2f}",
        "eps": str(instrument.eps),
        "pbr": f"{instrument.pbr:.2f}",
        "bps": str(instrument.bps),
        "250hgst": signed_price(instrument.w52_high, base),
        "250lwst": signed_price(instrument.w52_low, base),
        "oyr_hgst": signed_price(instrument.w52_high, base),
        "oyr_lwst": signed_price(instrument.w52_low, base),
        "high_pric": signed_price(tick.high, base),
        "open_pric": signed_price(tick.open, base),
        "low_pric": signed_price(tick.low, base),
        "upl_pric": signed_price(instrument.upper_limit, base),
        "lst_pric": signed_price(instrument.lower_limit, base),
        "base_pric": str(base),
        "cur_prc": signed_price(tick.price, base),
        "pre_sig": day_sign(tick.price, instrument),
        "pred_pre": signed(change),
        "flu_rt": signed_rate(change / base * 100),
        "trde_qty": str(tick.volume),
    }
    return Answer(codes.success(**fields))


def _list_row(listing: Listing) -> dict[str, str]:
    instrument = listing.instrument
    return {
        "code": instrument.code,
        "name": instrument.name,
        "listCount": padded(listing.shares, 16),
        "auditInfo": "정상",
        "regDay": listing.listed_on.strftime("%Y%m%d"),
        "lastPrice": padded(instrument.base_price, 8),
        "state": "증거금20%",
        "marketCode": listing.market,
        "marketName": MARKET_NAMES[listing.market],
        "upName": "",
        "upSizeName": "",
        "companyClassName": "",
        "orderWarning": "0",
        "nxtEnable": "Y",
    }


def stock_list(gateway: Gateway, call: Call) -> Answer:
    market = choice(call.fields, "mrkt_tp", MARKET_TYPES)
    rows = [_list_row(listing) for listing in gateway.kiwoom.listings.of_market(market)]
    size = gateway.kiwoom.broker.config.kiwoom_page_size
    shown, more = page(rows, call, size=size, scope=market)
    return Answer(codes.success(list=list(shown)), more)


def router(gateway: Gateway) -> APIRouter:
    api = APIRouter()
    gateway.serve(
        api,
        STKINFO,
        {
            "ka10001": lambda call: stock_info(gateway, call),
            "ka10099": lambda call: stock_list(gateway, call),
        },
    )
    return api
