"""Cash orders at /api/dostk/ordr: kt10000 (주식 매수주문) and kt10001 (주식 매도주문).

``{dmst_stex_tp, stk_cd, ord_qty, ord_uv, trde_tp, cond_uv}`` → ``{ord_no (7 digits),
dmst_stex_tp, return_code: 0, return_msg}``. The order goes into the same account book as
KIS orders (``mocks.broker.account``: fill model, cash reservation, limits, tick sizes,
market events), in the account of the token's app key (``state``).

- trde_tp: 0 보통 (limit, at ord_uv) and 3 시장가 (market; ord_uv ignored). Kiwoom's other
  order types (조건부지정가, IOC/FOK, 시간외, ...) are refused with 1517 naming trde_tp: the
  book has no matching engine for them.
- A limit order without a price is refused as captured, "[2000](308003:주문단가를
  입력하십시요)"; the book's own refusals (cash, holdings, tick, limits, VI) come back as
  2000 with the book's reason code inside (``codes``).
- An unlisted code is 1902, as captured for kt10001 ("종목 정보가 없습니다").
- On the paper profile (Kiwoom's mockapi) only KRX takes orders, as the guide notes for the
  mock-investing domain; NXT/SOR get "[2000](RC9000:모의투자에서는 해당업무가 제공되지
  않습니다.)", a message captured from mockapi.
- return_msg "매도주문이 완료되었습니다." for kt10001 (the guide's example); kt10000's
  example says "정상적으로 처리되었습니다", which the mock keeps.
"""

from __future__ import annotations

import re

from fastapi import APIRouter

from mocks.broker.account import OrderRefused, Side
from mocks.broker.kiwoom import codes
from mocks.broker.kiwoom.codes import KiwoomError, OrderRejected
from mocks.broker.kiwoom.gateway import ORDR, Answer, Call, Gateway, choice, count, text
from mocks.broker.kiwoom.state import order_number

VENUES = frozenset({"KRX", "NXT", "SOR"})
LIMIT, MARKET = "0", "3"
_DIVISION = {LIMIT: "00", MARKET: "01"}  # the book's ORD_DVSN
_DONE = {"buy": codes.OK_MESSAGE, "sell": "매도주문이 완료되었습니다."}


def place(gateway: Gateway, call: Call, side: Side) -> Answer:
    kiwoom = gateway.kiwoom
    broker = kiwoom.broker
    fields = call.fields
    venue = choice(fields, "dmst_stex_tp", VENUES)
    code = text(fields, "stk_cd")
    if kiwoom.listings.get(code) is None:
        raise KiwoomError(1902, code)
    quantity = count(fields, "ord_qty")
    kind = text(fields, "trde_tp")
    if kind not in _DIVISION:
        raise KiwoomError(1517, "trde_tp", "모의 브로커는 0(보통)과 3(시장가)만 받습니다")
    price = 0
    if kind == LIMIT:
        given = text(fields, "ord_uv", required=False)
        if not re.fullmatch(r"\d{1,12}", given) or int(given) <= 0:
            raise OrderRejected("308003", text="주문단가를 입력하십시요")
        price = int(given)
    if broker.config.profile == "paper" and venue != "KRX":
        raise OrderRejected("RC9000", text="모의투자에서는 해당업무가 제공되지 않습니다.")
    try:
        order = broker.accounts.place(
            kiwoom.account(call.appkey),
            side=side,
            code=code,
            quantity=quantity,
            price=price,
            division=_DIVISION[kind],
            step=broker.step(),
            placed_at=broker.clock.wall(),
        )
    except OrderRefused as refused:
        raise OrderRejected(refused.code, refused.detail) from None
    kiwoom.venues[order.odno] = venue
    return Answer(codes.success(_DONE[side], ord_no=order_number(order.odno), dmst_stex_tp=venue))


def router(gateway: Gateway) -> APIRouter:
    api = APIRouter()
    gateway.serve(
        api,
        ORDR,
        {
            "kt10000": lambda call: place(gateway, call, "buy"),
            "kt10001": lambda call: place(gateway, call, "sell"),
        },
    )
    return api
