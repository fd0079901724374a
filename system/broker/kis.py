"""``KisClient``: the system's async client for the KIS Open API (domestic stocks).

Reads (quotes, order book, balance, today's orders, hashkey) are retried when the broker is
unavailable. Orders are sent at most once per client order id: an order whose outcome is
unknown raises ``OrderOutcomeUnknown`` and is settled by ``reconcile``, never re-sent blindly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import httpx

from system.broker import parse
from system.broker.account import AccountClient, Sending
from system.broker.clock import Today, kst_today
from system.broker.errors import MalformedResponse, OrderOutcomeUnknown
from system.broker.gateway import Call, KisWire, Reply
from system.broker.models import (
    Balance,
    DailyOrder,
    Holding,
    OrderAck,
    OrderBook,
    OrderRequest,
    Quote,
    check_code,
)
from system.broker.oauth import kis_token_issuer
from system.broker.paging import follow_pages, more_follows
from system.broker.settings import KisSettings
from system.broker.wire import Counters, encode_json

PRICE_PATH = "/uapi/domestic-stock/v1/quotations/inquire-price"
ORDER_BOOK_PATH = "/uapi/domestic-stock/v1/quotations/inquire-asking-price-exp-ccn"
HASHKEY_PATH = "/uapi/hashkey"
APPROVAL_PATH = "/oauth2/Approval"
ORDER_PATH = "/uapi/domestic-stock/v1/trading/order-cash"
DAILY_ORDERS_PATH = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"
BALANCE_PATH = "/uapi/domestic-stock/v1/trading/inquire-balance"

ORDER_TR_IDS = {"buy": "TTTC0012U", "sell": "TTTC0011U"}


class KisClient(AccountClient):
    """One KIS account over one shared ``BrokerHttp``; use ``async with`` or ``aclose``.

    ``transport`` is the test seam (respx, an ASGI app); ``rng`` makes retry jitter
    reproducible; ``today`` gives the KST trading date for order inquiries.
    """

    order_endpoint = f"POST {ORDER_PATH}"

    def __init__(
        self,
        settings: KisSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        today: Today = kst_today,
    ) -> None:
        self.settings = settings
        http = self.http_client(settings, transport)
        counters = Counters()
        self._wire = KisWire(settings)
        super().__init__(
            settings,
            wire=self._wire,
            issue=kis_token_issuer(settings, http, counters),
            counters=counters,
            http=http,
            rng=rng,
            today=today,
        )

    async def get_price(self, code: str) -> Quote:
        """Current price, change, day range and limits of ``code`` (6 digits)."""
        check_code(code)
        call = Call("GET", PRICE_PATH, tr_id="FHKST01010100", params=_stock_query(code))
        return await self._gateway.read(
            call, lambda reply: parse.quote(code, reply.body, endpoint=call.endpoint)
        )

    async def get_order_book(self, code: str) -> OrderBook:
        """Ten ask and bid levels of ``code``, best first."""
        check_code(code)
        call = Call("GET", ORDER_BOOK_PATH, tr_id="FHKST01010200", params=_stock_query(code))
        return await self._gateway.read(
            call, lambda reply: parse.order_book(code, reply.body, endpoint=call.endpoint)
        )

    async def hashkey(self, body: Mapping[str, Any]) -> str:
        """The broker's hash of ``body`` as this client serialises it (``POST /uapi/hashkey``)."""
        return await self._hashkey(encode_json(body))

    async def approval_key(self) -> str:
        """A new realtime (WebSocket) approval key, from ``POST /oauth2/Approval``.

        The realtime feed puts it in every subscribe message. It is a credential like the
        appsecret: never log it. Retried like a read when the broker is unavailable; a
        refusal (e.g. an unknown appkey) raises ``BrokerRejected``.
        """
        settings = self.settings
        credentials = {
            "grant_type": "client_credentials",
            "appkey": settings.appkey,
            # KIS names the appsecret "secretkey" on this endpoint only.
            "secretkey": settings.appsecret.get_secret_value(),
        }
        call = Call("POST", APPROVAL_PATH, content=encode_json(credentials), authorized=False)
        advice = "retry, and check that base_url points at the KIS Open API"
        return await self._gateway.read(call, _text_of(call, "approval_key", advice))

    async def _send_order(self, sending: Sending) -> OrderAck:
        order = sending.order
        content = encode_json(self._order_body(order))
        # The broker hashes the bytes it receives, so both requests carry these bytes.
        hashkey = await self._hashkey(content)
        tr_id = self._wire.tr_id(ORDER_TR_IDS[order.side])
        call = Call("POST", ORDER_PATH, tr_id=tr_id, content=content, hashkey=hashkey)
        sent_at = sending.on_the_wire()
        reply = await self._gateway.exchange(call, order=order)
        try:
            return parse.order_ack(order.client_order_id, reply.body, endpoint=call.endpoint)
        except MalformedResponse as exc:
            # rt_cd "0": the broker took the order, but without its number only
            # reconcile can tell which one it is.
            reason = "the broker accepted it (rt_cd 0) but sent no usable order number (ODNO)"
            raise OrderOutcomeUnknown(
                order=order, sent_at=sent_at, endpoint=call.endpoint, reason=reason
            ) from exc

    async def daily_orders(self, *, odno: str = "") -> list[DailyOrder]:
        """Today's (KST) orders in this account, all pages; with ``odno``, that one order
        alone (the broker filters it: one small answer instead of the day's book)."""
        day = self._today().strftime("%Y%m%d")
        query = {
            **self._account_query(),
            "INQR_STRT_DT": day,
            "INQR_END_DT": day,
            "SLL_BUY_DVSN_CD": "00",
            "INQR_DVSN": "00",
            "PDNO": "",
            "CCLD_DVSN": "00",
            "ORD_GNO_BRNO": "",
            "ODNO": odno,
            "INQR_DVSN_3": "00",
            "INQR_DVSN_1": "",
            "EXCG_ID_DVSN_CD": "KRX",
        }
        endpoint = f"GET {DAILY_ORDERS_PATH}"
        pages = await follow_pages(
            self._gateway,
            DAILY_ORDERS_PATH,
            self._wire.tr_id("TTTC0081R"),
            query,
            lambda reply: [
                parse.daily_order(row)
                for row in parse.rows(reply.body, "output1", endpoint=endpoint)
            ],
        )
        return [order for page in pages for order in page]

    async def balance(self) -> Balance:
        """Holdings (all pages) and the account's money totals (from the last page)."""
        query = {
            **self._account_query(),
            "AFHR_FLPR_YN": "N",
            "OFL_YN": "",
            "INQR_DVSN": "02",
            "UNPR_DVSN": "01",
            "FUND_STTL_ICLD_YN": "N",
            "FNCG_AMT_AUTO_RDPT_YN": "N",
            "PRCS_DVSN": "00",
        }
        endpoint = f"GET {BALANCE_PATH}"

        def page(reply: Reply) -> tuple[list[Holding], Balance | None]:
            rows = parse.rows(reply.body, "output1", endpoint=endpoint)
            holdings = [parse.holding(row) for row in rows]
            # Totals are read from the last page only; earlier pages may omit them.
            last = None if more_follows(reply) else parse.balance([], reply.body, endpoint=endpoint)
            return holdings, last

        pages = await follow_pages(
            self._gateway, BALANCE_PATH, self._wire.tr_id("TTTC8434R"), query, page
        )
        holdings = [holding for page_holdings, _ in pages for holding in page_holdings]
        totals = pages[-1][1]
        if totals is None:  # unreachable: follow_pages returns after a last page
            raise MalformedResponse(f"{endpoint}: no last page", endpoint=endpoint)
        return replace(totals, holdings=holdings)

    async def _hashkey(self, content: bytes) -> str:
        call = Call("POST", HASHKEY_PATH, content=content, authorized=False)
        advice = "nothing was sent with it — retry"
        return await self._gateway.read(call, _text_of(call, "HASH", advice))

    def _order_body(self, order: OrderRequest) -> dict[str, str]:
        return {
            **self._account_query(),
            "PDNO": order.code,
            "ORD_DVSN": "01" if order.price is None else "00",  # 01 market, 00 limit
            "ORD_QTY": str(order.quantity),
            "ORD_UNPR": str(order.price or 0),
            "EXCG_ID_DVSN_CD": "KRX",
        }

    def _account_query(self) -> dict[str, str]:
        return {"CANO": self.settings.cano, "ACNT_PRDT_CD": self.settings.acnt_prdt_cd}


def _text_of(call: Call, key: str, advice: str) -> Callable[[Reply], str]:
    """A parser for the answers of ``/uapi/hashkey`` and ``/oauth2/Approval``, which carry
    their one value under ``key`` and no ``rt_cd``."""

    def parse_reply(reply: Reply) -> str:
        value = reply.body.get(key)
        if not isinstance(value, str) or not value:
            raise MalformedResponse(
                f"{call.endpoint}: the answer carries no {key}; {advice}", endpoint=call.endpoint
            )
        return value

    return parse_reply


def _stock_query(code: str) -> dict[str, str]:
    return {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": code}
