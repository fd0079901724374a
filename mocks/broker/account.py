"""Simulated cash accounts: orders in, fills against the simulated market, holdings out.

Fill model, deliberately simple and documented: a market order, or a limit order that is
marketable at the current price, fills in full at the current price when it arrives. A limit
order that isn't marketable rests unfilled (it never fills later; the mock has no matching
engine yet). Buys reserve cash at the order price (market orders at the upper limit, as KRX
brokers do), so a buy the account can't pay for is rejected.

Market events (``mocks.market_events``) change what can fill:
- limit-up: there are no sellers, so a buy (market, or limit at any price) is booked and
  rests unfilled in the queue at the limit, as on KRX; a marketable sell fills at the limit.
  Limit-down is the mirror image: sells rest, marketable buys fill at the lower limit.
- VI halt: KRX collects orders for the auction that ends the halt; the mock has no auction,
  so a market order, which asks to trade now, is refused (``APBK1690``, the mock's code,
  saying when the auction ends), and a limit order is booked and rests unfilled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from mocks import krx
from mocks.market import Instrument, Market
from mocks.market_events import Effect

Side = Literal["buy", "sell"]


class OrderRefused(Exception):
    def __init__(self, code: str, detail: str | None = None) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


@dataclass
class Order:
    odno: str
    org_no: str
    side: Side
    code: str
    quantity: int
    price: int  # 0 for market orders
    division: str  # ORD_DVSN
    placed_at: datetime
    filled_quantity: int = 0
    fill_price: int = 0

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled_quantity


@dataclass
class Holding:
    code: str
    quantity: int
    cost: int  # total purchase cost, for the average price


@dataclass
class Account:
    cano: str
    product: str
    cash: int
    holdings: dict[str, Holding] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)


ORG_NO = "91252"  # KRX forwarding branch the mock reports on every order


class Accounts:
    def __init__(self, market: Market, initial_cash: int) -> None:
        self.market = market
        self.initial_cash = initial_cash
        self._accounts: dict[tuple[str, str], Account] = {}
        self._next_odno = 1

    def reset(self) -> None:
        self._accounts.clear()
        self._next_odno = 1

    def all(self) -> list[Account]:
        """Every account opened so far, in the order first used."""
        return list(self._accounts.values())

    def get(self, cano: str, product: str) -> Account:
        key = (cano, product)
        if key not in self._accounts:
            self._accounts[key] = Account(cano, product, self.initial_cash)
        return self._accounts[key]

    def place(
        self,
        account: Account,
        *,
        side: Side,
        code: str,
        quantity: int,
        price: int,
        division: str,
        step: int,
        placed_at: datetime,
    ) -> Order:
        """Validate, fill if marketable, and book the order. Raises OrderRefused."""
        instrument = self.market.instruments.get(code)
        if instrument is None:
            raise OrderRefused("KIOK0560", code)
        market_order = division == "01"
        if not market_order:
            if not krx.is_on_tick(price):
                raise OrderRefused("APBK1680", f"{price}원, 호가단위 {krx.tick_size(price)}원")
            if not instrument.lower_limit <= price <= instrument.upper_limit:
                raise OrderRefused(
                    "APBK1681", f"{instrument.lower_limit}~{instrument.upper_limit}원"
                )
        effect = self.market.effect(code, step)
        if market_order and effect.halt is not None:
            raise OrderRefused("APBK1690", f"{code}, 단일가매매 {effect.halt.end - step}초 남음")
        current = self.market.tick(code, step).price
        order = Order(
            odno=f"{self._next_odno:010d}",
            org_no=ORG_NO,
            side=side,
            code=code,
            quantity=quantity,
            price=0 if market_order else price,
            division=division,
            placed_at=placed_at,
        )
        if side == "buy":
            reserve = quantity * _reserve_price(order, instrument)
            if reserve + self._open_buys(account) > account.cash:
                raise OrderRefused("APBK0952")
        else:
            holding = account.holdings.get(code)
            if holding is None or holding.quantity < quantity + self._open_sells(account, code):
                raise OrderRefused("APBK0400")
        self._next_odno += 1
        marketable = market_order or (price >= current if side == "buy" else price <= current)
        if marketable and _counterparty(side, effect):
            self._fill(account, order, current)
        account.orders.append(order)
        return order

    def _open_buys(self, account: Account) -> int:
        """Cash the account's unfilled buys hold: a resting market buy (at limit-up) holds
        it at the upper limit, as it did when it was placed."""
        return sum(
            o.remaining * _reserve_price(o, self.market.instruments[o.code])
            for o in account.orders
            if o.side == "buy"
        )

    @staticmethod
    def _open_sells(account: Account, code: str) -> int:
        return sum(o.remaining for o in account.orders if o.side == "sell" and o.code == code)

    @staticmethod
    def _fill(account: Account, order: Order, price: int) -> None:
        order.filled_quantity = order.quantity
        order.fill_price = price
        amount = order.quantity * price
        holding = account.holdings.get(order.code)
        if order.side == "buy":
            account.cash -= amount
            if holding is None:
                account.holdings[order.code] = Holding(order.code, order.quantity, amount)
            else:
                holding.quantity += order.quantity
                holding.cost += amount
        else:
            assert holding is not None
            average = holding.cost / holding.quantity
            holding.quantity -= order.quantity
            holding.cost = round(average * holding.quantity)
            account.cash += amount
            if holding.quantity == 0:
                del account.holdings[order.code]


def _counterparty(side: Side, effect: Effect) -> bool:
    """Whether anyone trades with ``side`` now: nobody during a halt, no seller at
    limit-up, no buyer at limit-down."""
    if not effect.trading:
        return False
    return effect.pin != ("upper" if side == "buy" else "lower")


def _reserve_price(order: Order, instrument: Instrument) -> int:
    """The price a buy holds cash at: a market order's at the upper limit (KRX brokers'
    practice), a limit order's at its price."""
    return instrument.upper_limit if order.division == "01" else order.price
