"""Domestic stock trading: hashkey, cash orders, daily order inquiry and balance."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mocks.broker import codes
from mocks.broker.account import Account, Order, OrderRefused, Side
from mocks.broker.gateway import Rejection, admit, require, upper_query
from mocks.broker.paging import page
from mocks.broker.state import Broker

BASE = "/uapi/domestic-stock/v1/trading"

# Current and legacy ids: TTTC0012U/TTTC0011U, and the TTTC0802U/TTTC0801U clients still send.
_ORDER_SIDES: dict[str, Side] = {
    "TTTC0012U": "buy",
    "TTTC0011U": "sell",
    "TTTC0802U": "buy",
    "TTTC0801U": "sell",
}
_DAILY_ORDERS = ("TTTC0081R", "TTTC8001R")
_BALANCE = ("TTTC8434R",)


def hash_body(payload: object) -> str:
    """The hashkey of a JSON body: SHA-256 over its canonical form.

    KIS doesn't publish its algorithm; hashing the canonical JSON (sorted keys, no spaces)
    makes the check indifferent to how a client formats the same body.
    """
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        payload = json.loads(await request.body() or b"null")
    except ValueError:
        raise Rejection("OPSQ2001", "JSON body") from None
    if not isinstance(payload, dict):
        raise Rejection("OPSQ2001", "JSON body")
    return payload


def _account(broker: Broker, fields: dict[str, Any]) -> Account:
    cano, product = fields.get("CANO"), fields.get("ACNT_PRDT_CD")
    if not (isinstance(cano, str) and len(cano) == 8 and cano.isdigit()):
        raise Rejection("OPSQ2002", "CANO")
    if not (isinstance(product, str) and len(product) == 2 and product.isdigit()):
        raise Rejection("OPSQ2002", "ACNT_PRDT_CD")
    return broker.accounts.get(cano, product)


def _int_field(fields: dict[str, Any], name: str, *, positive: bool) -> int:
    value = fields.get(name)
    if not isinstance(value, str) or not value.isdigit() or (positive and int(value) <= 0):
        raise Rejection("OPSQ2001", name)
    return int(value)


def _order_row(order: Order, name: str) -> dict[str, str]:
    return {
        "ord_dt": order.placed_at.strftime("%Y%m%d"),
        "ord_gno_brno": order.org_no,
        "odno": order.odno,
        "orgn_odno": "",
        "ord_dvsn_cd": order.division,
        "ord_dvsn_name": "시장가" if order.division == "01" else "지정가",
        "sll_buy_dvsn_cd": "02" if order.side == "buy" else "01",
        "sll_buy_dvsn_cd_name": "현금매수" if order.side == "buy" else "현금매도",
        "pdno": order.code,
        "prdt_name": name,
        "ord_qty": str(order.quantity),
        "ord_unpr": str(order.price),
        "ord_tmd": order.placed_at.strftime("%H%M%S"),
        "tot_ccld_qty": str(order.filled_quantity),
        "avg_prvs": str(order.fill_price),
        "cncl_yn": "N",
        "tot_ccld_amt": str(order.filled_quantity * order.fill_price),
        "rmn_qty": str(order.remaining),
        "rjct_qty": "0",
        "excg_id_dvsn_cd": "KRX",
    }


def router(broker: Broker) -> APIRouter:
    api = APIRouter()

    @api.post("/uapi/hashkey")
    async def hashkey(request: Request) -> JSONResponse:
        admit(request, broker, services=set(), token=False)
        payload = await _json_object(request)
        return JSONResponse({"JsonBody": payload, "HASH": hash_body(payload)})

    @api.post(f"{BASE}/order-cash")
    async def order_cash(request: Request) -> JSONResponse:
        sides = {broker.tr_id(tr): side for tr, side in _ORDER_SIDES.items()}
        tr_id = admit(request, broker, services=set(sides))
        fields = await _json_object(request)
        given_hash = request.headers.get("hashkey")
        if given_hash is not None and given_hash.strip().lower() != hash_body(fields):
            raise Rejection("OPSQ2003")
        account = _account(broker, fields)
        code = require(fields, "PDNO", r"\d{6}")
        division = require(fields, "ORD_DVSN", r"0[01]")
        quantity = _int_field(fields, "ORD_QTY", positive=True)
        price = _int_field(fields, "ORD_UNPR", positive=division == "00")
        try:
            order = broker.accounts.place(
                account,
                side=sides[tr_id],
                code=code,
                quantity=quantity,
                price=price,
                division=division,
                step=broker.step(),
                placed_at=broker.clock.wall(),
            )
        except OrderRefused as refused:
            raise Rejection(refused.code, refused.detail) from None
        output = {
            "KRX_FWDG_ORD_ORGNO": order.org_no,
            "ODNO": order.odno,
            "ORD_TMD": order.placed_at.strftime("%H%M%S"),
        }
        return JSONResponse(codes.success("APBK0013", output=output), headers={"tr_id": tr_id})

    @api.get(f"{BASE}/inquire-daily-ccld")
    async def inquire_daily_orders(request: Request) -> JSONResponse:
        tr_id = admit(request, broker, services={broker.tr_id(t) for t in _DAILY_ORDERS})
        query = upper_query(request)
        account = _account(broker, query)
        start = require(query, "INQR_STRT_DT", r"\d{8}")
        end = require(query, "INQR_END_DT", r"\d{8}")
        side = {"00": None, "01": "sell", "02": "buy"}.get(query.get("SLL_BUY_DVSN_CD", "00"))
        filled = query.get("CCLD_DVSN", "00")
        code, odno = query.get("PDNO", ""), query.get("ODNO", "")
        orders = [
            order
            for order in account.orders
            if start <= order.placed_at.strftime("%Y%m%d") <= end
            and (side is None or order.side == side)
            and (not code or order.code == code)
            and (not odno or order.odno == odno.zfill(10))
            and (filled != "01" or order.filled_quantity > 0)
            and (filled != "02" or order.remaining > 0)
        ]
        if query.get("INQR_DVSN", "00") == "00":  # 00: newest first, 01: oldest first
            orders.reverse()
        rows, info, ctx = page(
            orders,
            tr_cont=request.headers.get("tr_cont", ""),
            cursor=query.get("CTX_AREA_NK100", ""),
            size=broker.config.order_page_size,
            scope=f"{account.cano}^{account.product}^{start}^{end}",
        )
        names = broker.market.instruments
        summary = {
            "tot_ord_qty": str(sum(o.quantity for o in orders)),
            "tot_ccld_qty": str(sum(o.filled_quantity for o in orders)),
            "tot_ccld_amt": str(sum(o.filled_quantity * o.fill_price for o in orders)),
            "prsm_tlex_smtl": "0",
            "pchs_avg_pric": "0",
        }
        body = codes.success(
            **ctx,
            output1=[_order_row(o, names[o.code].name) for o in rows],
            output2=summary,
        )
        return JSONResponse(body, headers={"tr_id": tr_id, "tr_cont": info.tr_cont})

    @api.get(f"{BASE}/inquire-balance")
    async def inquire_balance(request: Request) -> JSONResponse:
        tr_id = admit(request, broker, services={broker.tr_id(t) for t in _BALANCE})
        query = upper_query(request)
        account = _account(broker, query)
        step = broker.step()
        holdings = sorted(account.holdings.values(), key=lambda h: h.code)
        valued = []
        for holding in holdings:
            price = broker.market.tick(holding.code, step).price
            value = holding.quantity * price
            average = holding.cost / holding.quantity
            valued.append(
                {
                    "pdno": holding.code,
                    "prdt_name": broker.market.instruments[holding.code].name,
                    "trad_dvsn_name": "현금",
                    "hldg_qty": str(holding.quantity),
                    "ord_psbl_qty": str(holding.quantity),
                    "pchs_avg_pric": f"{average:.4f}",
                    "pchs_amt": str(holding.cost),
                    "prpr": str(price),
                    "evlu_amt": str(value),
                    "evlu_pfls_amt": str(value - holding.cost),
                    "evlu_pfls_rt": f"{(value - holding.cost) / holding.cost * 100:.2f}",
                }
            )
        rows, info, ctx = page(
            valued,
            tr_cont=request.headers.get("tr_cont", ""),
            cursor=query.get("CTX_AREA_NK100", ""),
            size=broker.config.balance_rows_per_page,
            scope=f"{account.cano}^{account.product}",
        )
        securities = sum(int(row["evlu_amt"]) for row in valued)
        cost = sum(h.cost for h in holdings)
        summary = {
            "dnca_tot_amt": str(account.cash),
            "nxdy_excc_amt": str(account.cash),
            "prvs_rcdl_excc_amt": str(account.cash),
            "scts_evlu_amt": str(securities),
            "tot_evlu_amt": str(account.cash + securities),
            "nass_amt": str(account.cash + securities),
            "pchs_amt_smtl_amt": str(cost),
            "evlu_amt_smtl_amt": str(securities),
            "evlu_pfls_smtl_amt": str(securities - cost),
        }
        body = codes.success(**ctx, output1=list(rows), output2=[summary])
        return JSONResponse(body, headers={"tr_id": tr_id, "tr_cont": info.tr_cont})

    return api
