"""Account TRs at /api/dostk/acnt, read from the account book of the token's app key:
ka00001 (계좌번호조회), kt00018 (계좌평가잔고내역요청) and kt00007 (계좌별주문체결내역상세요청).

kt00007 is the inquiry to reconcile an order whose answer was lost: it lists a day's
orders filled or not, each with its ord_no, filled quantity and price and what remains.
(ka10075 미체결요청 lists only unfilled orders, so a market order that filled at once
would be missing from it: not an answer to "did my order go in?")

kt00018 ``{qry_tp, dmst_stex_tp}``: totals (tot_pur_amt, tot_evlt_amt, tot_evlt_pl,
tot_prft_rt, prsm_dpst_aset_amt = cash + holdings at the current price, loans 0) on every
page, and ``acnt_evlt_remn_indv_tot[]`` one row per holding, by code, ``kiwoom_page_size``
a page. stk_cd carries Kiwoom's "A" prefix; money and quantities are zero-padded (15
digits, 12 for prices) as in the guide. The mock charges no fees or taxes (their fields
are 0). trde_able_qty is the holding less open sell orders. qry_tp (1 합산, 2 개별) and
the venue list the same rows: the book keeps one lot per code and no venue per holding.

kt00007 ``{ord_dt, qry_tp, stk_bond_tp, sell_tp, stk_cd, fr_ord_no, dmst_stex_tp}``:
ord_dt blank is today (KST); qry_tp 1 order of entry, 2 reversed, 3 unfilled only, 4
filled only; stk_bond_tp 2 (bonds) lists nothing; sell_tp 1 sells, 2 buys; stk_cd blank is
every code ("A005930" or "005930"); fr_ord_no lists that order and later ones;
dmst_stex_tp "%" is every venue. Rows as the guide's example: quantities and prices
zero-padded to 10, acpt_tp "접수", io_tp_nm 현금매수/현금매도, comm_ord_tp "OpenAPI" (the
mock's word for orders that came in over REST).
"""

from __future__ import annotations

import re
from datetime import date

from fastapi import APIRouter

from mocks.broker.account import Account, Order
from mocks.broker.kiwoom import codes
from mocks.broker.kiwoom.codes import KiwoomError
from mocks.broker.kiwoom.formats import padded, rate
from mocks.broker.kiwoom.gateway import ACNT, Answer, Call, Gateway, choice, day, text
from mocks.broker.kiwoom.paging import page
from mocks.broker.kiwoom.state import ACCOUNT_PRODUCT, account_number, order_number

STOCK_PREFIX = "A"  # Kiwoom's prefix on a stock's code in account rows (J: ELW, Q: ETN)


def account_number_inquiry(gateway: Gateway, call: Call) -> Answer:
    number = account_number(call.appkey) + ACCOUNT_PRODUCT
    return Answer(codes.success(acctNo=number))


def _today_quantity(account: Account, code: str, side: str, today: date) -> int:
    return sum(
        order.filled_quantity
        for order in account.orders
        if order.code == code and order.side == side and order.placed_at.date() == today
    )


def balance(gateway: Gateway, call: Call) -> Answer:
    kiwoom = gateway.kiwoom
    broker = kiwoom.broker
    choice(call.fields, "qry_tp", {"1", "2"})
    choice(call.fields, "dmst_stex_tp", {"KRX", "NXT"})
    account = kiwoom.account(call.appkey)
    step, today = broker.step(), kiwoom.today()
    holdings = sorted(account.holdings.values(), key=lambda holding: holding.code)
    prices = {h.code: broker.market.tick(h.code, step).price for h in holdings}
    worth = sum(h.quantity * prices[h.code] for h in holdings)
    cost = sum(h.cost for h in holdings)
    rows = []
    for holding in holdings:
        instrument = broker.market.instruments[holding.code]
        value = holding.quantity * prices[holding.code]
        open_sells = sum(
            order.remaining
            for order in account.orders
            if order.side == "sell" and order.code == holding.code
        )
        rows.append(
            {
                "stk_cd": STOCK_PREFIX + holding.code,
                "stk_nm": instrument.name,
                "evltv_prft": padded(value - holding.cost, 15),
                "prft_rt": rate((value - holding.cost) / holding.cost * 100),
                "pur_pric": padded(round(holding.cost / holding.quantity), 15),
                "pred_close_pric": padded(instrument.base_price, 12),
                "rmnd_qty": padded(holding.quantity, 15),
                "trde_able_qty": padded(holding.quantity - open_sells, 15),
                "cur_prc": padded(prices[holding.code], 12),
                "pred_buyq": padded(0, 15),
                "pred_sellq": padded(0, 15),
                "tdy_buyq": padded(_today_quantity(account, holding.code, "buy", today), 15),
                "tdy_sellq": padded(_today_quantity(account, holding.code, "sell", today), 15),
                "pur_amt": padded(holding.cost, 15),
                "pur_cmsn": padded(0, 15),
                "evlt_amt": padded(value, 15),
                "sell_cmsn": padded(0, 15),
                "tax": padded(0, 15),
                "sum_cmsn": padded(0, 15),
                "poss_rt": rate(value / worth * 100 if worth else 0.0),
                "crd_tp": "00",
                "crd_tp_nm": "",
                "crd_loan_dt": "",
            }
        )
    size = broker.config.kiwoom_page_size
    shown, more = page(rows, call, size=size, scope=account.cano)
    totals = {
        "tot_pur_amt": padded(cost, 15),
        "tot_evlt_amt": padded(worth, 15),
        "tot_evlt_pl": padded(worth - cost, 15),
        "tot_prft_rt": rate((worth - cost) / cost * 100 if cost else 0.0),
        "prsm_dpst_aset_amt": padded(account.cash + worth, 15),
        "tot_loan_amt": padded(0, 15),
        "tot_crd_loan_amt": padded(0, 15),
        "tot_crd_ls_amt": padded(0, 15),
    }
    body = codes.success(codes.INQUIRY_DONE, **totals, acnt_evlt_remn_indv_tot=list(shown))
    return Answer(body, more)


def _order_row(gateway: Gateway, order: Order) -> dict[str, str]:
    market = order.division == "01"
    return {
        "ord_no": order_number(order.odno),
        "stk_cd": STOCK_PREFIX + order.code,
        "trde_tp": "시장가" if market else "보통",
        "crd_tp": "보통매매",
        "ord_qty": padded(order.quantity, 10),
        "ord_uv": padded(order.price, 10),
        "cnfm_qty": padded(0, 10),
        "acpt_tp": "접수",
        "rsrv_tp": "",
        "ord_tm": order.placed_at.strftime("%H:%M:%S"),
        "ori_ord": "0000000",
        "stk_nm": gateway.kiwoom.broker.market.instruments[order.code].name,
        "io_tp_nm": "현금매수" if order.side == "buy" else "현금매도",
        "loan_dt": "",
        "cntr_qty": padded(order.filled_quantity, 10),
        "cntr_uv": padded(order.fill_price, 10),
        "ord_remnq": padded(order.remaining, 10),
        "comm_ord_tp": "OpenAPI",
        "mdfy_cncl": "",
        "cnfm_tm": "",
        "dmst_stex_tp": gateway.kiwoom.venues.get(order.odno, "KRX"),
        "cond_uv": padded(0, 10),
    }


def order_detail(gateway: Gateway, call: Call) -> Answer:
    kiwoom = gateway.kiwoom
    fields = call.fields
    on = day(fields, "ord_dt", required=False) or kiwoom.today()
    listing = choice(fields, "qry_tp", {"1", "2", "3", "4"})
    securities = choice(fields, "stk_bond_tp", {"0", "1", "2"})
    side = {"0": None, "1": "sell", "2": "buy"}[choice(fields, "sell_tp", {"0", "1", "2"})]
    code = text(fields, "stk_cd", required=False).removeprefix(STOCK_PREFIX)
    start = text(fields, "fr_ord_no", required=False)
    if start and not re.fullmatch(r"\d{1,10}", start):
        raise KiwoomError(1517, "fr_ord_no", "숫자여야 합니다")
    venue = choice(fields, "dmst_stex_tp", {"%", "KRX", "NXT", "SOR"})
    orders = [
        order
        for order in kiwoom.account(call.appkey).orders
        if order.placed_at.date() == on
        and securities != "2"  # the book holds stocks only
        and (side is None or order.side == side)
        and (not code or order.code == code)
        and (not start or int(order.odno) >= int(start))
        and (venue == "%" or kiwoom.venues.get(order.odno, "KRX") == venue)
        and (listing != "3" or order.remaining > 0)
        and (listing != "4" or order.filled_quantity > 0)
    ]
    if listing == "2":
        orders.reverse()
    rows = [_order_row(gateway, order) for order in orders]
    size = kiwoom.broker.config.kiwoom_page_size
    scope = f"{on}|{listing}|{securities}|{side}|{code}|{start}|{venue}"
    shown, more = page(rows, call, size=size, scope=scope)
    return Answer(codes.success(codes.INQUIRY_DONE, acnt_ord_cntr_prps_dtl=list(shown)), more)


def router(gateway: Gateway) -> APIRouter:
    api = APIRouter()
    gateway.serve(
        api,
        ACNT,
        {
            "ka00001": lambda call: account_number_inquiry(gateway, call),
            "kt00018": lambda call: balance(gateway, call),
            "kt00007": lambda call: order_detail(gateway, call),
        },
    )
    return api
