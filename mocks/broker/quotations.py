"""Domestic stock quotations: current price (FHKST01010100) and order book (FHKST01010200)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mocks import krx
from mocks.broker import codes
from mocks.broker.gateway import Rejection, admit, require, upper_query
from mocks.broker.state import Broker
from mocks.market import Instrument, day_sign

BASE = "/uapi/domestic-stock/v1/quotations"
MARKETS = "J|NX|UN"  # KRX, NXT, integrated


def _instrument(broker: Broker, query: dict[str, str]) -> Instrument:
    require(query, "FID_COND_MRKT_DIV_CODE", MARKETS)
    code = require(query, "FID_INPUT_ISCD", r"\d{6}")
    instrument = broker.market.instruments.get(code)
    if instrument is None:
        raise Rejection("KIOK0560", code)
    return instrument


def _vi(halted: bool) -> str:
    """VI_CLS_CODE as KIS documents it: Y while a VI applies to the code, else N."""
    return "Y" if halted else "N"


def router(broker: Broker) -> APIRouter:
    api = APIRouter(prefix=BASE)

    @api.get("/inquire-price")
    async def inquire_price(request: Request) -> JSONResponse:
        tr_id = admit(request, broker, services={"FHKST01010100"})
        instrument = _instrument(broker, upper_query(request))
        step = broker.step()
        tick = broker.market.tick(instrument.code, step)
        halted = not broker.market.effect(instrument.code, step).trading
        change = tick.price - instrument.base_price
        output: dict[str, Any] = {
            "iscd_stat_cls_code": "55",
            "stck_prpr": str(tick.price),
            "prdy_vrss": str(change),
            "prdy_vrss_sign": day_sign(tick.price, instrument),
            "prdy_ctrt": f"{change / instrument.base_price * 100:.2f}",
            "acml_tr_pbmn": str(tick.turnover),
            "acml_vol": str(tick.volume),
            "stck_oprc": str(tick.open),
            "stck_hgpr": str(tick.high),
            "stck_lwpr": str(tick.low),
            "stck_mxpr": str(instrument.upper_limit),
            "stck_llam": str(instrument.lower_limit),
            "stck_sdpr": str(instrument.base_price),
            "aspr_unit": str(krx.tick_size(tick.price)),
            "per": f"{instrument.per:.2f}",
            "pbr": f"{instrument.pbr:.2f}",
            "eps": f"{instrument.eps:.2f}",
            "bps": f"{instrument.bps:.2f}",
            "w52_hgpr": str(instrument.w52_high),
            "w52_lwpr": str(instrument.w52_low),
            "vi_cls_code": _vi(halted),
            "temp_stop_yn": "N",
        }
        return JSONResponse(codes.success(output=output), headers={"tr_id": tr_id, "tr_cont": ""})

    @api.get("/inquire-asking-price-exp-ccn")
    async def inquire_order_book(request: Request) -> JSONResponse:
        tr_id = admit(request, broker, services={"FHKST01010200"})
        instrument = _instrument(broker, upper_query(request))
        step = broker.step()
        book = broker.market.order_book(instrument.code, step)
        price = broker.market.tick(instrument.code, step).price
        levels: dict[str, str] = {}
        for side, rows in (("ask", book.asks), ("bid", book.bids)):
            for n in range(1, 11):
                level = rows[n - 1] if n <= len(rows) else None
                levels[f"{side}p{n}"] = str(level.price if level else 0)
                levels[f"{side}p_rsqn{n}"] = str(level.quantity if level else 0)
        output1 = {
            "aspr_acpt_hour": broker.clock.wall().strftime("%H%M%S"),
            **levels,
            "total_askp_rsqn": str(sum(level.quantity for level in book.asks)),
            "total_bidp_rsqn": str(sum(level.quantity for level in book.bids)),
        }
        output2 = {
            "antc_mkop_cls_code": "112",
            "stck_prpr": str(price),
            "stck_oprc": str(broker.market.tick(instrument.code, step).open),
            "antc_cnpr": str(price),
            "antc_cntg_vrss_sign": day_sign(price, instrument),
            "antc_cntg_vrss": str(price - instrument.base_price),
            "antc_vol": "0",
            "stck_shrn_iscd": instrument.code,
            "vi_cls_code": _vi(not broker.market.effect(instrument.code, step).trading),
        }
        return JSONResponse(
            codes.success(output1=output1, output2=output2),
            headers={"tr_id": tr_id, "tr_cont": ""},
        )

    return api
