"""The broker's answers and the client's requests, as the trading code wants to see them.

KIS sends every number as a string under abbreviated Korean-romanised keys (``stck_prpr``);
these types carry parsed values under domain names, and keep nothing of the wire format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Side = Literal["buy", "sell"]

# ASCII digits, the whole string: ``^\d{6}$`` would also pass "005930\n" and other
# scripts' digits, and a code goes into URLs, topic names and the broker's bodies.
_CODE = re.compile(r"[0-9]{6}")


def check_code(code: str) -> str:
    """``code`` if it is a 6-digit KRX ticker (e.g. ``"005930"``), else ``ValueError``."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise ValueError(
            f"stock code must be 6 digits, like '005930' (Samsung Electronics); got {code!r}"
        )
    return code


@dataclass(frozen=True)
class OrderRequest:
    """A cash order to place; ``price=None`` is a market order.

    ``client_order_id`` is the caller's idempotency key: the client sends at most one order
    per id (see ``KisClient.place_order``).
    """

    client_order_id: str
    side: Side
    code: str
    quantity: int
    price: int | None = None

    def __post_init__(self) -> None:
        if not self.client_order_id:
            raise ValueError("client_order_id must not be empty: it is the order's identity")
        if self.side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', got {self.side!r}")
        check_code(self.code)
        if self.quantity <= 0:
            raise ValueError(f"quantity must be a positive number of shares, got {self.quantity}")
        if self.price is not None and self.price <= 0:
            raise ValueError(
                f"price must be positive (or None for a market order), got {self.price}"
            )


@dataclass(frozen=True)
class OrderAck:
    """The broker accepted the order: its number (``ODNO``), branch and time (``HHMMSS``)."""

    client_order_id: str
    odno: str
    org_no: str
    ord_tmd: str


@dataclass(frozen=True)
class Quote:
    """Current price of one stock (``inquire-price``)."""

    code: str
    price: int
    change: int
    change_rate: float
    volume: int
    open: int
    high: int
    low: int
    upper_limit: int
    lower_limit: int
    base_price: int
    tick: int


@dataclass(frozen=True)
class OrderBook:
    """Ten levels a side, best first, as ``(price, quantity)``; empty levels left out."""

    code: str
    asks: list[tuple[int, int]]
    bids: list[tuple[int, int]]
    time: str


@dataclass(frozen=True)
class DailyOrder:
    """One of today's orders as the broker books them (``inquire-daily-ccld``)."""

    order_date: str
    org_no: str
    odno: str
    side: Side
    code: str
    quantity: int
    price: int
    order_time: str
    filled_quantity: int
    average_price: float
    remaining_quantity: int
    cancelled: bool


@dataclass(frozen=True)
class Holding:
    """One position in the account (a row of ``inquire-balance`` ``output1``)."""

    code: str
    name: str
    quantity: int
    orderable_quantity: int
    average_price: float
    price: int
    value: int
    profit_loss: int
    profit_loss_rate: float


@dataclass(frozen=True)
class Balance:
    """Positions and money: deposit (``cash``), evaluation total, net assets."""

    holdings: list[Holding]
    cash: int
    total_value: int
    net_assets: int


@dataclass(frozen=True)
class BrokerMetrics:
    """A snapshot of the client's counters, for ``/metrics`` and the harness's expectations."""

    requests_sent: int = 0
    token_issuance_attempts: int = 0
    token_issuances_succeeded: int = 0
    token_cooldown_rejections: int = 0
    rate_limited_retries: int = 0
    retries: int = 0
    unavailable_errors: int = 0
    orders_unknown: int = 0
    orders_reconciled: int = 0
    orders_confirmed_absent: int = 0
