"""History checks over a whole trading run, Jepsen-style: the broker's records against the
system's, every anomaly reported by kind with the ids that show it.

The broker's side is the truth of what was placed and filled (the mock's account, read
after the run); the system's side is what it believed (the service's order records) and
decided (its halts). Nothing here trusts the system's own arithmetic: the limits are
checked by replaying the broker's fills.

- ``orders_placed_once``: no broker order without a system order behind it (a duplicate, or
  one placed and never known), no system order claiming two broker orders.
- ``orders_not_lost``: every order the system holds as placed is at the broker, and every
  one it calls rejected says why.
- ``limits_never_exceeded``: at no moment did the realised loss of a day or of the run, the
  money in one stock, or the number of stocks held pass its limit.
- ``no_orders_while_halted``: no order reached the broker between a halt and its release.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from harness.result import Check
from system.service import OrderRecord

# The statuses of a system order that say it is at the broker.
PLACED = ("acked", "reconciled")
# How many offending ids an anomaly lists before it says "and N more".
SHOWN = 5


@dataclass(frozen=True)
class BrokerOrder:
    """One order in the broker's books: ``at`` in scenario seconds, ``day`` its KST date."""

    odno: str
    side: Literal["buy", "sell"]
    code: str
    quantity: int
    filled_quantity: int
    fill_price: int
    at: float
    day: date


@dataclass(frozen=True)
class HaltWindow:
    """Trading halted from ``start`` until ``end`` (None: never released), in scenario
    seconds."""

    reason: str
    start: float
    end: float | None

    def covers(self, at: float) -> bool:
        # A release and an order at the same instant: the release came first.
        return self.start <= at and (self.end is None or at < self.end)


@dataclass(frozen=True)
class Limits:
    """The limits the run's risk settings set (None: no limit)."""

    daily_loss: int | None = None
    cumulative_loss: int | None = None
    exposure_per_asset: int | None = None
    concurrent_positions: int | None = None


@dataclass
class Anomalies:
    """Ids by kind of anomaly, in the order found."""

    found: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, kind: str, what: str) -> None:
        self.found[kind].append(what)

    def check(self, description: str, fine: str) -> Check:
        if not self.found:
            return Check(description, True, fine, "invariant")
        parts = []
        for kind, ids in self.found.items():
            shown = ", ".join(ids[:SHOWN])
            more = f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""
            parts.append(f"{kind} ({len(ids)}): {shown}{more}")
        return Check(description, False, "; ".join(parts), "invariant")


def orders_placed_once(records: Sequence[OrderRecord], booked: Sequence[BrokerOrder]) -> Check:
    description = "orders placed once: every broker order is one the system knows, none twice"
    claims: dict[str, list[str]] = defaultdict(list)
    for record in records:
        if record.odno is not None:
            claims[record.odno].append(record.client_order_id)
    anomalies = Anomalies()
    for order in booked:
        if order.odno not in claims:
            what = f"{order.side} {order.quantity} {order.code} at t={order.at:.1f}"
            anomalies.add("placed but unknown to the system", f"ODNO {order.odno} ({what})")
    for odno, ids in claims.items():
        if len(ids) > 1:
            anomalies.add("one broker order claimed twice", f"ODNO {odno} by {', '.join(ids)}")
    return anomalies.check(
        description, f"{len(booked)} broker order(s), each known to the system once"
    )


def orders_not_lost(records: Sequence[OrderRecord], booked: Sequence[BrokerOrder]) -> Check:
    description = "orders not lost: each one placed is at the broker, each refused says why"
    at_broker = {order.odno for order in booked}
    anomalies = Anomalies()
    for record in records:
        if record.status in PLACED and record.odno not in at_broker:
            anomalies.add(
                "placed but not at the broker",
                f"{record.client_order_id} (ODNO {record.odno})",
            )
        if record.status == "rejected" and not any("rejected" in what for _, what in record.events):
            anomalies.add("rejected without a reason", record.client_order_id)
    placed = sum(1 for record in records if record.status in PLACED)
    return anomalies.check(description, f"{placed} placed order(s), all at the broker")


def limits_never_exceeded(booked: Sequence[BrokerOrder], limits: Limits) -> Check:
    """Replays the broker's fills in time order, by average cost as the broker books them."""
    description = "limits never exceeded: loss per day and in all, money per stock, stocks held"
    anomalies = Anomalies()
    held: dict[str, tuple[int, int]] = {}  # code -> (quantity, cost)
    by_day: dict[date, int] = defaultdict(int)
    total = 0
    worst_day = 0
    for order in sorted(booked, key=lambda o: (o.at, o.odno)):
        if order.filled_quantity <= 0:
            continue
        quantity, cost = held.get(order.code, (0, 0))
        label = f"ODNO {order.odno} at t={order.at:.1f}"
        if order.side == "buy":
            quantity += order.filled_quantity
            cost += order.filled_quantity * order.fill_price
        else:
            sold = min(order.filled_quantity, quantity)
            # All of it (also nothing of nothing), or its share of the cost.
            out = cost if sold == quantity else round(cost * sold / quantity)
            realised = sold * order.fill_price - out
            quantity, cost = quantity - sold, cost - out
            by_day[order.day] += realised
            total += realised
            worst_day = min(worst_day, by_day[order.day])
            if limits.daily_loss is not None and by_day[order.day] < -limits.daily_loss:
                anomalies.add(
                    "daily loss past its limit",
                    f"{label}: {order.day} at {by_day[order.day]:,} won",
                )
            if limits.cumulative_loss is not None and total < -limits.cumulative_loss:
                anomalies.add("cumulative loss past its limit", f"{label}: {total:,} won")
        if quantity:
            held[order.code] = (quantity, cost)
        else:
            held.pop(order.code, None)
        if limits.exposure_per_asset is not None and cost > limits.exposure_per_asset:
            anomalies.add("money in one stock past its cap", f"{label}: {order.code} {cost:,} won")
        if limits.concurrent_positions is not None and len(held) > limits.concurrent_positions:
            anomalies.add("too many stocks held at once", f"{label}: {len(held)} held")
    return anomalies.check(
        description,
        f"{sum(1 for o in booked if o.filled_quantity)} fill(s) replayed; worst day "
        f"{worst_day:,} won, in all {total:,} won",
    )


def no_orders_while_halted(booked: Sequence[BrokerOrder], halts: Iterable[HaltWindow]) -> Check:
    description = "no orders while halted: none reached the broker between a halt and its release"
    windows = list(halts)
    anomalies = Anomalies()
    for order in booked:
        for window in windows:
            if window.covers(order.at):
                anomalies.add(
                    f"order during a {window.reason} halt",
                    f"ODNO {order.odno} at t={order.at:.1f}",
                )
                break
    return anomalies.check(
        description, f"{len(windows)} halt(s), {len(booked)} broker order(s), none inside one"
    )
