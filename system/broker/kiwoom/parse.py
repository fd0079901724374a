"""From Kiwoom's TR answers to the domain types in ``system.broker.models``.

Kiwoom writes every number as a string (``BROKER_FACTS.md``, the API guide's examples):
quote prices carry the sign of their move from the previous close ("+72100", "-69500"), so
a price is the number's size and a change keeps its sign; account figures are zero-padded
("000000000373500"); a stock in an account row has an "A" before its code ("A005930").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from system.broker.models import Balance, DailyOrder, Holding, OrderAck, Quote, Side
from system.broker.parse import Fields, rows
from system.krx import tick_size

STOCK_PREFIX = "A"


def quote(code: str, body: Mapping[str, Any], *, endpoint: str) -> Quote:
    """ka10001 (주식기본정보요청). Kiwoom quotes no tick: it is KRX's for the price."""
    out = Fields(body, endpoint=endpoint, where="the ka10001 answer")
    price = abs(out.integer("cur_prc"))
    return Quote(
        code=code,
        price=price,
        change=out.integer("pred_pre"),
        change_rate=out.real("flu_rt"),
        volume=out.integer("trde_qty"),
        open=abs(out.integer("open_pric")),
        high=abs(out.integer("high_pric")),
        low=abs(out.integer("low_pric")),
        upper_limit=abs(out.integer("upl_pric")),
        lower_limit=abs(out.integer("lst_pric")),
        base_price=abs(out.integer("base_pric")),
        tick=tick_size(price),
    )


def order_ack(client_order_id: str, body: Mapping[str, Any], *, endpoint: str, at: str) -> OrderAck:
    """kt10000/kt10001: the order number (``ord_no``). Kiwoom sends no branch and no time;
    ``at`` is the client's own HHMMSS (KST) when the answer came."""
    out = Fields(body, endpoint=endpoint, where="the order answer")
    odno = out.text("ord_no").strip()
    if not odno:
        raise out.fail("ord_no", "is empty")
    return OrderAck(client_order_id, odno, "", at)


def daily_orders(body: Mapping[str, Any], *, endpoint: str) -> list[DailyOrder]:
    """kt00007 (계좌별주문체결내역상세요청) rows, ``acnt_ord_cntr_prps_dtl``."""
    return [_daily_order(row) for row in rows(body, "acnt_ord_cntr_prps_dtl", endpoint=endpoint)]


def _daily_order(row: Fields) -> DailyOrder:
    filled = row.integer("cntr_qty")
    return DailyOrder(
        order_date="",  # the inquiry is for one day, which the caller asked for
        org_no="",
        odno=row.text("ord_no").strip(),
        side=_side(row),
        code=_code(row.text("stk_cd")),
        quantity=row.integer("ord_qty"),
        price=row.integer("ord_uv"),
        order_time=row.text("ord_tm").replace(":", ""),
        filled_quantity=filled,
        average_price=float(row.integer("cntr_uv")) if filled else 0.0,
        remaining_quantity=row.integer("ord_remnq"),
        cancelled="취소" in row.record.get("mdfy_cncl", ""),
    )


def _side(row: Fields) -> Side:
    """From ``io_tp_nm`` (현금매수, 현금매도, ...)."""
    name = row.text("io_tp_nm")
    if "매도" in name:
        return "sell"
    if "매수" in name:
        return "buy"
    raise row.fail("io_tp_nm", "names neither a buy (매수) nor a sell (매도)")


def holdings(body: Mapping[str, Any], *, endpoint: str) -> list[Holding]:
    """kt00018 (계좌평가잔고내역요청) rows, ``acnt_evlt_remn_indv_tot``."""
    return [
        Holding(
            code=_code(row.text("stk_cd")),
            name=row.text("stk_nm"),
            quantity=row.integer("rmnd_qty"),
            orderable_quantity=row.integer("trde_able_qty"),
            average_price=row.real("pur_pric"),
            price=abs(row.integer("cur_prc")),
            value=row.integer("evlt_amt"),
            profit_loss=row.integer("evltv_prft"),
            profit_loss_rate=row.real("prft_rt"),
        )
        for row in rows(body, "acnt_evlt_remn_indv_tot", endpoint=endpoint)
    ]


def balance(body: Mapping[str, Any], *, endpoint: str) -> Balance:
    """kt00018's totals. Kiwoom gives the estimated deposit assets (``prsm_dpst_aset_amt``:
    cash plus holdings at the current price) and the holdings' value (``tot_evlt_amt``);
    the cash is their difference."""
    out = Fields(body, endpoint=endpoint, where="the kt00018 answer")
    assets = out.integer("prsm_dpst_aset_amt")
    value = out.integer("tot_evlt_amt")
    return Balance(holdings=[], cash=assets - value, total_value=value, net_assets=assets)


def _code(stk_cd: str) -> str:
    return stk_cd.strip().removeprefix(STOCK_PREFIX)
