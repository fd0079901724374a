"""Which client order ids this client has placed, so that no order is ever sent twice.

An id is *free* (never sent, rejected, or reconciled as not placed), *in flight*, *acked*
(the broker gave it an order number), or *unknown* (sent, no verdict). Only a free id may be
sent. The ledger is in memory: a process that restarts with unknown orders must reconcile
them (``KisClient.reconcile`` accepts the bare ``OrderRequest``) before placing them again.
"""

from __future__ import annotations

from collections.abc import Iterable

from system.broker.errors import OrderOutcomeUnknown
from system.broker.models import DailyOrder, OrderAck, OrderRequest


class OrderLedger:
    def __init__(self) -> None:
        self._acks: dict[str, OrderAck] = {}
        self._unknown: dict[str, OrderOutcomeUnknown] = {}
        self._in_flight: set[str] = set()
        self._claimed: dict[str, str] = {}  # broker order number (ODNO) → client order id

    def begin(self, order: OrderRequest) -> None:
        """Reserve ``order``'s id for one send, or refuse with ``ValueError``."""
        cid = order.client_order_id
        if cid in self._acks:
            raise ValueError(
                f"client_order_id {cid!r} was already placed as broker order "
                f"{self._acks[cid].odno}; sending it again would double the order — use a new "
                "client_order_id for a new order"
            )
        if cid in self._unknown:
            raise ValueError(
                f"the outcome of client_order_id {cid!r} is unknown; call reconcile() first — "
                "re-sending before then could double the order"
            )
        self.check_not_in_flight(order)
        self._in_flight.add(cid)

    def check_not_in_flight(self, order: OrderRequest) -> None:
        if order.client_order_id in self._in_flight:
            raise ValueError(
                f"client_order_id {order.client_order_id!r} is being placed right now; "
                "wait for that place_order() call to finish"
            )

    def acked(self, ack: OrderAck) -> None:
        self._in_flight.discard(ack.client_order_id)
        self._unknown.pop(ack.client_order_id, None)
        self._acks[ack.client_order_id] = ack
        self._claimed[ack.odno] = ack.client_order_id

    def unknown(self, error: OrderOutcomeUnknown) -> None:
        self._in_flight.discard(error.order.client_order_id)
        self._unknown[error.order.client_order_id] = error

    def release(self, client_order_id: str) -> None:
        """The order certainly did not reach the exchange: its id is free again."""
        self._in_flight.discard(client_order_id)
        self._unknown.pop(client_order_id, None)

    def ack_for(self, client_order_id: str) -> OrderAck | None:
        return self._acks.get(client_order_id)

    def pending_unknown(self) -> list[OrderOutcomeUnknown]:
        """Orders sent without a verdict, oldest first: what ``reconcile`` should be given."""
        return sorted(self._unknown.values(), key=lambda error: error.sent_at)

    def match(self, order: OrderRequest, booked: Iterable[DailyOrder]) -> DailyOrder | None:
        """The broker's row for ``order``: same stock, side, quantity and price, not claimed.

        Several identical unclaimed rows can only come from identical orders; the earliest is
        taken, so identical orders reconciled in the order they were sent pair up in time.
        """
        price = order.price or 0  # market orders are booked at price 0
        candidates = [
            row
            for row in booked
            if row.code == order.code
            and row.side == order.side
            and row.quantity == order.quantity
            and row.price == price
            and row.odno not in self._claimed
        ]
        return min(candidates, key=lambda row: (row.order_time, row.odno), default=None)
