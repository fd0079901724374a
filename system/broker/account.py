"""One account at one broker, over the shared gateway: what every broker's client does alike.

``AccountClient`` holds the HTTP client, the ``BrokerGateway`` and the ``OrderLedger``, and
owns the order flow every broker shares: a client order id is used once; an order whose
answer is lost is recorded as of unknown outcome and never sent again; ``reconcile`` settles
it from the broker's list of today's orders. A broker's client (``KisClient``,
``KiwoomClient``) adds its wire: how an order is sent and acknowledged (``_send_order``) and
how today's orders are listed (``daily_orders``).
"""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
from abc import abstractmethod
from dataclasses import dataclass

import httpx

from system.broker.clock import Today, kst_today, loop_time
from system.broker.errors import OrderOutcomeUnknown
from system.broker.gateway import BrokerGateway, OrderPermit, TokenIssue, Unanswered, Wire
from system.broker.http import BrokerHttp
from system.broker.ledger import OrderLedger
from system.broker.models import BrokerMetrics, DailyOrder, OrderAck, OrderRequest
from system.broker.ratelimit import RateLimiter
from system.broker.settings import BrokerSettings
from system.broker.token import TokenManager
from system.broker.transport import BrokerTransport
from system.broker.wire import Counters
from system.lifecycle import Lifecycle


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default verification context, built once per process: loading the CA bundle
    costs ~15 ms, paid by every client the service (or each scenario run) creates."""
    return httpx.create_ssl_context()


@dataclass
class Sending:
    """One order on its way: when it went on the wire, once it has."""

    order: OrderRequest
    sent_at: float | None = None

    def on_the_wire(self) -> float:
        self.sent_at = loop_time()
        return self.sent_at


class AccountClient(Lifecycle):
    """The shared part of a broker client; use ``async with`` or ``aclose``.

    ``transport`` is the test seam (respx, an ASGI app); ``rng`` makes retry jitter
    reproducible; ``today`` gives the KST trading date for order inquiries.
    """

    order_endpoint: str  # the order request, e.g. "POST /uapi/…/order-cash", in errors

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        wire: Wire,
        issue: TokenIssue,
        counters: Counters,
        http: BrokerHttp,
        rng: random.Random | None = None,
        today: Today = kst_today,
    ) -> None:
        self._http = http
        self._gateway = BrokerGateway(
            settings, http, rng or random.Random(), wire=wire, issue=issue, counters=counters
        )
        self._ledger = OrderLedger()
        self._today = today

    @staticmethod
    def http_client(
        settings: BrokerSettings, transport: httpx.AsyncBaseTransport | None
    ) -> BrokerHttp:
        return BrokerHttp(
            settings.base_url,
            transport or BrokerTransport(verify=tls_context()),
            httpx.Timeout(settings.timeout_s),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def tokens(self) -> TokenManager:
        return self._gateway.tokens

    @property
    def unanswered(self) -> Unanswered:
        return self._gateway.unanswered

    @property
    def limiter(self) -> RateLimiter:
        return self._gateway.limiter

    @property
    def order_permit(self) -> OrderPermit | None:
        """Asked of every order just before it goes on the wire, after it has its token and
        its place in the budget: a reason to hold it back (``OrderBlocked``), or None."""
        return self._gateway.order_permit

    @order_permit.setter
    def order_permit(self, permit: OrderPermit | None) -> None:
        self._gateway.order_permit = permit

    @property
    def unknown_orders(self) -> list[OrderOutcomeUnknown]:
        """Orders sent without a verdict and not yet reconciled, oldest first."""
        return self._ledger.pending_unknown()

    @property
    def metrics(self) -> BrokerMetrics:
        counters, tokens = self._gateway.counters, self._gateway.tokens
        # The gateway's counters and the token manager's are the snapshot's fields.
        return BrokerMetrics(
            **vars(counters),  # flat ints: no deep copy (this runs per metrics read)
            token_issuance_attempts=tokens.issuance_attempts,
            token_issuances_succeeded=tokens.issuances_succeeded,
            token_cooldown_rejections=tokens.cooldown_rejections,
        )

    async def place_order(self, order: OrderRequest) -> OrderAck:
        """Send a cash order once; ``ValueError`` if its client order id was already used.

        Raises ``OrderRejected`` (not placed; fix and re-send), ``BrokerUnavailable`` or a
        token/rate error (not sent; may be re-sent), or ``OrderOutcomeUnknown`` (may be placed:
        do not re-send, call ``reconcile``).
        """
        self._ledger.begin(order)
        sending = Sending(order)
        try:
            ack = await self._send_order(sending)
        except OrderOutcomeUnknown as exc:
            self._unknown(exc)
            raise
        except asyncio.CancelledError:
            if sending.sent_at is None:
                self._ledger.release(order.client_order_id)
            else:  # cancelled while the order was on the wire: it may have been placed
                reason = "place_order() was cancelled while the order was in flight"
                self._unknown(
                    OrderOutcomeUnknown(
                        order=order,
                        sent_at=sending.sent_at,
                        endpoint=self.order_endpoint,
                        reason=reason,
                    )
                )
            raise
        except BaseException:
            self._ledger.release(order.client_order_id)
            raise
        self._ledger.acked(ack)
        return ack

    @abstractmethod
    async def _send_order(self, sending: Sending) -> OrderAck:
        """Send ``sending.order`` and read its ack, calling ``sending.on_the_wire()`` just
        before it leaves. An answer that took the order without a usable order number is
        ``OrderOutcomeUnknown``."""

    async def reconcile(self, unknown: OrderOutcomeUnknown | OrderRequest) -> OrderAck | None:
        """Settle an order of unknown outcome from today's orders at the broker.

        Returns the ack if the broker has the order (it is recorded; never re-send it), or
        ``None`` if it does not (its client order id is free to be placed again). Give the
        broker a moment after the failure before asking, so a late order has been booked.
        """
        order = unknown.order if isinstance(unknown, OrderOutcomeUnknown) else unknown
        known = self._ledger.ack_for(order.client_order_id)
        if known is not None:
            return known
        self._ledger.check_not_in_flight(order)
        booked = await self.daily_orders()
        row = self._ledger.match(order, booked)
        if row is None:
            self._ledger.release(order.client_order_id)
            self._gateway.counters.orders_confirmed_absent += 1
            return None
        ack = OrderAck(order.client_order_id, row.odno, row.org_no, row.order_time)
        self._ledger.acked(ack)
        self._gateway.counters.orders_reconciled += 1
        return ack

    @abstractmethod
    async def daily_orders(self, *, odno: str = "") -> list[DailyOrder]:
        """Today's (KST) orders in this account; with ``odno``, that one order alone."""

    def _unknown(self, error: OrderOutcomeUnknown) -> None:
        self._ledger.unknown(error)
        self._gateway.counters.orders_unknown += 1
