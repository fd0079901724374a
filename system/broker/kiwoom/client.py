"""``KiwoomClient``: the system's client for Kiwoom's REST API (domestic stocks), behind the
same ``BrokerClient`` protocol as ``KisClient``.

TRs used (``BROKER_FACTS.md``; the mock's choices in ``docs/kiwoom.md`` agree):

- ka10001 at /api/dostk/stkinfo: the quote.
- kt10000 (buy) / kt10001 (sell) at /api/dostk/ordr: cash orders on KRX, limit (trde_tp 0)
  or market (3).
- kt00007 at /api/dostk/acnt: today's orders, filled or not, the inquiry that settles an
  order whose answer was lost (ka10075 would miss a market order that filled at once).
- kt00018 at /api/dostk/acnt: holdings and the account's totals.

Reads are retried when the broker is unavailable; an order is sent at most once per client
order id and settled by ``reconcile`` when its answer is lost (``AccountClient``).
"""

from __future__ import annotations

import random

import httpx

from system.broker.account import AccountClient, Sending
from system.broker.clock import Now, Today, kst_now, kst_today
from system.broker.errors import MalformedResponse, OrderOutcomeUnknown
from system.broker.gateway import Call
from system.broker.kiwoom import parse
from system.broker.kiwoom.oauth import kiwoom_token_issuer
from system.broker.kiwoom.paging import follow_pages
from system.broker.kiwoom.settings import KiwoomSettings
from system.broker.kiwoom.wire import KiwoomWire
from system.broker.models import Balance, DailyOrder, OrderAck, Quote, check_code
from system.broker.wire import Counters, encode_json

STKINFO_PATH = "/api/dostk/stkinfo"
ORDER_PATH = "/api/dostk/ordr"
ACCOUNT_PATH = "/api/dostk/acnt"
ORDER_API_IDS = {"buy": "kt10000", "sell": "kt10001"}
LIMIT, MARKET = "0", "3"  # trde_tp


class KiwoomClient(AccountClient):
    """One Kiwoom app's account over one shared ``BrokerHttp``; use ``async with``
    or ``aclose``.

    ``transport`` is the test seam; ``rng`` makes retry jitter reproducible; ``today`` gives
    the KST trading date for order inquiries and ``wall`` the KST wall clock, against which
    a token's ``expires_dt`` is read.
    """

    order_endpoint = f"POST {ORDER_PATH}"

    def __init__(
        self,
        settings: KiwoomSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        today: Today = kst_today,
        wall: Now = kst_now,
    ) -> None:
        self.settings = settings
        http = self.http_client(settings, transport)
        counters = Counters()
        super().__init__(
            settings,
            wire=KiwoomWire(),
            issue=kiwoom_token_issuer(settings, http, counters, wall=wall),
            counters=counters,
            http=http,
            rng=rng,
            today=today,
        )
        self._wall = wall

    async def get_price(self, code: str) -> Quote:
        """Current price, change, day range and limits of ``code`` (6 digits)."""
        check_code(code)
        call = Call("POST", STKINFO_PATH, tr_id="ka10001", content=encode_json({"stk_cd": code}))
        return await self._gateway.read(
            call, lambda reply: parse.quote(code, reply.body, endpoint=call.endpoint)
        )

    async def _send_order(self, sending: Sending) -> OrderAck:
        order = sending.order
        body = {
            "dmst_stex_tp": "KRX",
            "stk_cd": order.code,
            "ord_qty": str(order.quantity),
            "ord_uv": "" if order.price is None else str(order.price),
            "trde_tp": MARKET if order.price is None else LIMIT,
            "cond_uv": "",
        }
        call = Call("POST", ORDER_PATH, tr_id=ORDER_API_IDS[order.side], content=encode_json(body))
        sent_at = sending.on_the_wire()
        reply = await self._gateway.exchange(call, order=order)
        at = self._wall().strftime("%H%M%S")
        try:
            return parse.order_ack(order.client_order_id, reply.body, endpoint=call.endpoint, at=at)
        except MalformedResponse as exc:
            # return_code 0: the broker took the order, but without its number only
            # reconcile can tell which one it is.
            reason = "the broker accepted it (return_code 0) but sent no usable ord_no"
            raise OrderOutcomeUnknown(
                order=order, sent_at=sent_at, endpoint=call.endpoint, reason=reason
            ) from exc

    async def daily_orders(self, *, odno: str = "") -> list[DailyOrder]:
        """Today's (KST) orders in this account, all pages; with ``odno``, that one order
        (kt00007 lists it and the later ones; the rest are left out here)."""
        body = {
            "ord_dt": self._today().strftime("%Y%m%d"),
            "qry_tp": "1",  # in order of entry
            "stk_bond_tp": "1",  # stocks
            "sell_tp": "0",  # both sides
            "stk_cd": "",
            "fr_ord_no": odno,
            "dmst_stex_tp": "%",  # every venue
        }
        endpoint = f"POST {ACCOUNT_PATH}"
        pages = await follow_pages(
            self._gateway,
            ACCOUNT_PATH,
            "kt00007",
            body,
            lambda reply: parse.daily_orders(reply.body, endpoint=endpoint),
        )
        orders = [order for page in pages for order in page]
        return [order for order in orders if order.odno == odno] if odno else orders

    async def balance(self) -> Balance:
        """Holdings (all pages) and the account's money (from the last page)."""
        endpoint = f"POST {ACCOUNT_PATH}"
        pages = await follow_pages(
            self._gateway,
            ACCOUNT_PATH,
            "kt00018",
            {"qry_tp": "1", "dmst_stex_tp": "KRX"},
            lambda reply: (
                parse.holdings(reply.body, endpoint=endpoint),
                parse.balance(reply.body, endpoint=endpoint),
            ),
        )
        holdings = [holding for page_holdings, _ in pages for holding in page_holdings]
        totals = pages[-1][1]
        return Balance(holdings, totals.cash, totals.total_value, totals.net_assets)
