"""What the trading core asks of a broker, whichever broker it is.

``TradingService``, the desk's fills and the app talk to one account through this protocol,
never to a broker's wire: ``KisClient`` speaks the KIS Open API behind it, and a second
broker (Kiwoom's REST API) goes behind the same one. Each implementation owns its broker's
tokens, per-second budget, re-authentication, paging and order reconciliation, and raises
the errors of ``system.broker.errors`` whatever its broker's codes, so a caller's retry
policy reads the same for both.
"""

from __future__ import annotations

from typing import Protocol

from system.broker.errors import OrderOutcomeUnknown
from system.broker.gateway import OrderPermit, Unanswered
from system.broker.models import (
    Balance,
    BrokerMetrics,
    DailyOrder,
    OrderAck,
    OrderRequest,
    Quote,
)


class TokenState(Protocol):
    """The access token as health sees it."""

    @property
    def token(self) -> str | None:
        """The usable token, None when there is none now."""
        ...

    @property
    def cooldown_remaining(self) -> float:
        """Seconds before the broker allows another token issuance (0 when it does)."""
        ...


class BrokerClient(Protocol):
    """One account at one broker: quotes, orders and the account's books."""

    order_permit: OrderPermit | None
    """Asked just before each order leaves; a reason refuses it (``OrderBlocked``)."""

    @property
    def tokens(self) -> TokenState: ...

    @property
    def unanswered(self) -> Unanswered:
        """Requests in a row the broker left without any answer."""
        ...

    @property
    def metrics(self) -> BrokerMetrics: ...

    @property
    def unknown_orders(self) -> list[OrderOutcomeUnknown]:
        """Orders whose outcome is unknown and not yet reconciled."""
        ...

    async def get_price(self, code: str) -> Quote: ...

    async def place_order(self, order: OrderRequest) -> OrderAck: ...

    async def reconcile(self, unknown: OrderOutcomeUnknown | OrderRequest) -> OrderAck | None:
        """The broker's record of an order whose answer was lost: its ack if the broker
        has it, None if it does not (so sending it is safe)."""
        ...

    async def daily_orders(self, *, odno: str = "") -> list[DailyOrder]:
        """Today's orders at the broker (one order's rows when ``odno`` is given)."""
        ...

    async def balance(self) -> Balance: ...

    async def aclose(self) -> None: ...
