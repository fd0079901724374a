"""What the dashboard shows of the trading desk: the recent orders, the open positions marked
at the latest prices, the P&L and the halt. No I/O here; the route is in ``system.gateway.app``.

``GET /api/trading`` needs no token (it only reads, and holds nothing secret: no account,
no credential) and answers **404** ``{"error"}`` when the system runs no trading desk, as
``/api/kill-switch`` does, else **200**::

    {
      "mode": "live",
      "halt": {"engaged": false, "reason": null, "detail": null, "at": null, "automatic": null},
      "orders": [
        {"client_order_id": "closing-bet-005930-…", "side": "buy", "code": "005930",
         "quantity": 12, "price": null, "status": "acked", "odno": "0000117", "reason": null}
      ],
      "positions": [
        {"code": "005930", "quantity": 12, "average_price": 84300.0, "cost": 1011600,
         "last_price": 84500, "market_value": 1014000, "unrealised": 2400}
      ],
      "pnl": {"realised_today": 0, "realised_total": 0, "unrealised": 2400}
    }

- ``mode``: ``paper`` (every signal evaluated, no order sent) or ``live``.
- ``halt``: the body of ``GET /api/kill-switch`` (``system.gateway.kill_switch``).
- ``orders``: the trading service's latest ``RECENT_ORDERS`` client order ids, newest
  (first seen last) first — the desk's and any other caller's. ``price`` is null for a
  market order; ``status`` is the service's (pending, acked, rejected, unknown, reconciled,
  failed); ``odno`` is the broker's order number once known; ``reason`` is what happened
  last to an order that is rejected, failed or of unknown outcome, else null. The stored
  history of every order is ``/api/orders`` (with a database).
- ``positions``: the desk's open positions, by code, marked at the latest price the desk
  handled for the code. A position without one yet has null ``last_price``,
  ``market_value`` and ``unrealised``. ``average_price`` is ``cost / quantity`` rounded to
  0.01 won; every other amount is whole won.
- ``pnl``: realised today (the KST trading day) and over every day the desk has traded,
  and unrealised over the positions that have a price (at cost for the others).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Protocol, runtime_checkable

from system.broker import OrderRequest
from system.gateway.kill_switch import KillSwitchControl, switch_state

# How many orders the answer lists, at most (the dashboard's table).
RECENT_ORDERS = 50

# Statuses whose last event says why the order is not (or may not be) at the broker.
_EXPLAINED = frozenset({"rejected", "failed", "unknown"})


class OpenPosition(Protocol):
    """One open position (``system.trading.positions.Position``)."""

    @property
    def code(self) -> str: ...

    @property
    def quantity(self) -> int: ...

    @property
    def cost(self) -> int: ...

    @property
    def average_price(self) -> float: ...

    def value_at(self, price: int) -> int: ...

    def unrealised_at(self, price: int) -> int: ...


class PositionBook(Protocol):
    """The desk's positions and realised P&L (``system.trading.positions.Book``)."""

    def positions(self) -> Sequence[OpenPosition]: ...

    def realised_on(self, day: date) -> int: ...

    @property
    def realised_total(self) -> int: ...

    def unrealised(self, prices: Mapping[str, int]) -> int:
        """Open P&L at ``prices``; a code without a price counts at cost."""
        ...


class DeskMode(Protocol):
    """The desk's settings, of which the gateway shows the mode."""

    @property
    def mode(self) -> str: ...


class TradingDesk(KillSwitchControl, Protocol):
    """What the gateway needs of the trading desk (``system.trading.desk.Desk``): its kill
    switch, and what it holds and at which prices."""

    @property
    def settings(self) -> DeskMode: ...

    @property
    def book(self) -> PositionBook: ...

    @property
    def marks(self) -> Mapping[str, int]:
        """The latest price the desk handled, per code."""
        ...


class OrderView(Protocol):
    """One order as the trading service saw it (``system.service.OrderRecord``)."""

    @property
    def client_order_id(self) -> str: ...

    @property
    def order(self) -> OrderRequest: ...

    @property
    def status(self) -> str: ...

    @property
    def odno(self) -> str | None: ...

    @property
    def events(self) -> Sequence[tuple[float, str]]: ...


@runtime_checkable
class OrderHistory(Protocol):
    """Where the orders come from (``system.service.TradingService``)."""

    def recent_orders(self, limit: int) -> Sequence[OrderView]:
        """The ``limit`` orders first seen last, newest first."""
        ...


def order_row(record: OrderView) -> dict[str, object]:
    """One entry of ``orders``."""
    order = record.order
    explained = record.status in _EXPLAINED and record.events
    return {
        "client_order_id": record.client_order_id,
        "side": order.side,
        "code": order.code,
        "quantity": order.quantity,
        "price": order.price,
        "status": record.status,
        "odno": record.odno,
        "reason": record.events[-1][1] if explained else None,
    }


def position_row(position: OpenPosition, mark: int | None) -> dict[str, object]:
    """One entry of ``positions``; ``mark`` is the code's latest price, if any."""
    return {
        "code": position.code,
        "quantity": position.quantity,
        "average_price": round(position.average_price, 2),
        "cost": position.cost,
        "last_price": mark,
        "market_value": None if mark is None else position.value_at(mark),
        "unrealised": None if mark is None else position.unrealised_at(mark),
    }


def trading_state(desk: TradingDesk, orders: Sequence[OrderView], today: date) -> dict[str, object]:
    """The body of ``GET /api/trading`` (see the module docstring); ``today`` is the KST
    trading day whose realised P&L is ``realised_today``."""
    book, marks = desk.book, desk.marks
    return {
        "mode": desk.settings.mode,
        "halt": switch_state(desk.halt),
        "orders": [order_row(record) for record in orders[:RECENT_ORDERS]],
        "positions": [position_row(held, marks.get(held.code)) for held in book.positions()],
        "pnl": {
            "realised_today": book.realised_on(today),
            "realised_total": book.realised_total,
            # The book's own sum, so the page shows what the loss limits are marked with.
            "unrealised": book.unrealised(marks),
        },
    }
