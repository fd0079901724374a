"""Positions and P&L from fills: what the loss limits and the exposure caps read.

Average-cost accounting, as Korean brokers report it (``pchs_avg_pric``): a buy raises the
quantity and moves the average price; a sell realises ``(price - average) * quantity`` and
leaves the average alone. Fees and taxes are left out: the mock broker charges none, and a
P&L that matched no statement would only confuse the loss limits' arithmetic.

Pure bookkeeping: the caller says when (``at``, loop time) and which KST trading day a fill
belongs to, so a scenario on virtual time books the same P&L as one on the wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from system.broker.models import Side


class OversoldError(ValueError):
    """A sell for more than the position holds: the system never shorts, so a fill like
    this means its books and the broker's disagree."""


@dataclass(frozen=True)
class Fill:
    """Shares that changed hands for one order: ``quantity`` at ``price`` (KRW)."""

    client_order_id: str
    code: str
    side: Side
    quantity: int
    price: int
    at: float
    day: date

    def __post_init__(self) -> None:
        if self.quantity <= 0 or self.price <= 0:
            raise ValueError(
                f"a fill needs a positive quantity and price; got {self.quantity} @ {self.price}"
            )


@dataclass(frozen=True)
class Position:
    """What is held of one stock: ``quantity`` shares bought at ``average_price`` on
    average; ``cost`` is what they cost in all (KRW)."""

    code: str
    quantity: int
    cost: int

    @property
    def average_price(self) -> float:
        return self.cost / self.quantity if self.quantity else 0.0

    def value_at(self, price: int) -> int:
        return self.quantity * price

    def unrealised_at(self, price: int) -> int:
        return self.value_at(price) - self.cost


@dataclass
class Book:
    """Every position and the realised P&L, per KST day and in all."""

    _positions: dict[str, Position] = field(default_factory=dict)
    _realised_by_day: dict[date, int] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)

    @property
    def realised_total(self) -> int:
        """The realised P&L of every day together."""
        return sum(self._realised_by_day.values())

    def apply(self, fill: Fill) -> int:
        """Book ``fill``; returns the P&L it realised (0 for a buy)."""
        held = self._positions.get(fill.code, Position(fill.code, 0, 0))
        if fill.side == "buy":
            self._positions[fill.code] = Position(
                fill.code, held.quantity + fill.quantity, held.cost + fill.quantity * fill.price
            )
            self.fills.append(fill)
            return 0
        if fill.quantity > held.quantity:
            raise OversoldError(
                f"{fill.client_order_id}: sold {fill.quantity} of {fill.code} holding "
                f"{held.quantity}; the system's books and the broker's disagree"
            )
        # The cost leaves in proportion; integer division would drift, so the last share
        # out takes whatever cost remains.
        remaining = held.quantity - fill.quantity
        cost_out = held.cost if remaining == 0 else round(held.cost * fill.quantity / held.quantity)
        realised = fill.quantity * fill.price - cost_out
        if remaining:
            self._positions[fill.code] = Position(fill.code, remaining, held.cost - cost_out)
        else:
            self._positions.pop(fill.code, None)
        self._realised_by_day[fill.day] = self._realised_by_day.get(fill.day, 0) + realised
        self.fills.append(fill)
        return realised

    def position(self, code: str) -> Position | None:
        return self._positions.get(code)

    def positions(self) -> list[Position]:
        """Open positions, by code."""
        return [self._positions[code] for code in sorted(self._positions)]

    def realised_on(self, day: date) -> int:
        return self._realised_by_day.get(day, 0)

    def exposure(self, code: str) -> int:
        """What is at stake in ``code``: the cost of the shares held."""
        held = self._positions.get(code)
        return 0 if held is None else held.cost

    def unrealised(self, prices: Mapping[str, int]) -> int:
        """Open P&L at ``prices`` (a code without a price counts at cost)."""
        return sum(
            held.unrealised_at(prices[code])
            for code, held in self._positions.items()
            if code in prices
        )
