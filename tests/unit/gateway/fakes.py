"""In-memory stand-ins for the gateway's collaborators: a PriceFeed, the trading service
(with its order history or without), the trading desk (its kill switch, book and marks),
and a WebSocket. The integration tests use the feed and the service too (over real
sockets, only the gateway's own side is real)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from system.broker import BrokerUnavailable, Quote
from system.broker.clock import loop_time
from system.health import Health, HealthState
from system.market.model import (
    FeedState,
    FeedStatus,
    OrderBook,
    PriceListener,
    PriceUpdate,
    StatusListener,
)
from system.service import OrderRecord
from system.trading.positions import Book


class FakeFeed:
    """A ``PriceFeed`` the test drives: ``emit`` a price, ``set_state`` the connection.

    ``refuse`` maps a code to the exception ``subscribe`` raises for it; ``calls`` records
    every subscribe/unsubscribe in order.
    """

    def __init__(self, state: FeedState = "live", carried: tuple[str, ...] = ()) -> None:
        self.state: FeedState = state
        self.detail = ""
        self.since = 0.0
        self.reconnects = 0
        self.subscriptions: list[str] = list(carried)
        self.prices: dict[str, PriceUpdate] = {}
        self.listeners: list[PriceListener] = []
        self.status_listeners: list[StatusListener] = []
        self.refuse: dict[str, Exception] = {}
        self.server_refused: dict[str, str] = {}  # refusals that came in over the socket
        self.calls: list[tuple[str, str]] = []

    # -- PriceFeed --
    def add_listener(self, listener: PriceListener) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: PriceListener) -> None:
        self.listeners.remove(listener)

    def add_status_listener(self, listener: StatusListener) -> None:
        self.status_listeners.append(listener)

    async def subscribe(self, code: str) -> None:
        self.calls.append(("subscribe", code))
        if code in self.refuse:
            raise self.refuse[code]
        if code not in self.subscriptions:
            self.subscriptions.append(code)

    async def unsubscribe(self, code: str) -> None:
        self.calls.append(("unsubscribe", code))
        if code in self.subscriptions:
            self.subscriptions.remove(code)
        self.prices.pop(code, None)

    def latest(self, code: str) -> PriceUpdate | None:
        return self.prices.get(code)

    def book(self, code: str) -> OrderBook | None:
        return None

    def status(self) -> FeedStatus:
        return FeedStatus(
            state=self.state,
            since=self.since,
            subscriptions=tuple(self.subscriptions),
            reconnects=self.reconnects,
            last_message_at=None,
            detail=self.detail,
            refused=tuple(sorted(self.server_refused.items())),
        )

    def metrics(self) -> dict[str, float]:
        return {"feed_messages": float(len(self.calls)), "reconnects": float(self.reconnects)}

    # -- the test's side --
    def emit(
        self, code: str, price: int, *, change: int = 0, volume: int = 1000, at: float | None = None
    ) -> PriceUpdate:
        update = PriceUpdate(
            code=code,
            price=price,
            change=change,
            change_rate=round(change * 100 / (price - change), 2) if price != change else 0.0,
            volume=volume,
            at=loop_time() if at is None else at,
        )
        self.prices[code] = update
        for listener in list(self.listeners):
            listener(update)
        return update

    def server_refuses(self, code: str, why: str | None) -> None:
        """The server answers ``code``'s registration with an error (None: accepts it)."""
        if why is None:
            self.server_refused.pop(code, None)
        else:
            self.server_refused[code] = why
        for listener in list(self.status_listeners):
            listener(self.status())

    def set_state(self, state: FeedState, detail: str = "") -> None:
        if state != self.state:
            self.since = loop_time()
        if state == "live" and self.state != "live":
            self.reconnects += 1
        self.state, self.detail = state, detail
        for listener in list(self.status_listeners):
            listener(self.status())


def make_quote(code: str, price: int, change: int = 0, volume: int = 5000) -> Quote:
    return Quote(
        code=code,
        price=price,
        change=change,
        change_rate=round(change * 100 / (price - change), 2) if price != change else 0.0,
        volume=volume,
        open=price,
        high=price,
        low=price,
        upper_limit=price * 13 // 10,
        lower_limit=price * 7 // 10,
        base_price=price - change,
        tick=100,
    )


class FakeService:
    """``TradingService``'s quote/health/metrics. ``prices`` are what ``quote`` answers;
    a code in ``failing`` raises ``BrokerUnavailable``; ``delay`` slows every quote."""

    def __init__(self, prices: dict[str, int] | None = None) -> None:
        self.prices = dict(prices or {})
        self.failing: set[str] = set()
        self.delay = 0.0
        self.calls: list[tuple[float, str]] = []
        self.state: HealthState = "healthy"
        self.reasons: tuple[str, ...] = ()

    async def quote(self, code: str) -> Quote:
        self.calls.append((loop_time(), code))
        if self.delay:
            await asyncio.sleep(self.delay)
        if code in self.failing or code not in self.prices:
            raise BrokerUnavailable(f"GET inquire-price for {code}: broker unreachable (fake)")
        return make_quote(code, self.prices[code], change=100)

    def health(self) -> Health:
        return Health(self.state, self.reasons)

    def metrics(self) -> dict[str, float]:
        return {"quotes_served": float(len(self.calls)), "health_state": 0.0}


class FakeOrderService(FakeService):
    """``FakeService`` with the trading service's order history: ``records`` oldest first,
    as ``TradingService.orders`` has them; ``limits`` records what ``recent_orders`` was
    asked for."""

    def __init__(self, records: list[OrderRecord] | None = None) -> None:
        super().__init__()
        self.records = list(records or [])
        self.limits: list[int] = []

    def recent_orders(self, limit: int) -> list[OrderRecord]:
        self.limits.append(limit)
        return self.records[::-1][:limit]


@dataclass(frozen=True)
class FakeHalt:
    """A halt as ``system.trading.risk.Halt`` has it."""

    reason: str
    detail: str
    at: float
    automatic: bool


@dataclass(frozen=True)
class FakeDeskSettings:
    mode: str = "live"


class FakeDesk:
    """The trading desk as the gateway sees it (``TradingDesk``). ``halt`` is what the gate
    holds (a test may set an automatic one); ``calls`` records every engage and release as
    (what, detail, by). ``book`` is a real ``Book`` (a test applies fills to it), ``marks``
    the latest price per code."""

    def __init__(self, halt: FakeHalt | None = None, mode: str = "live") -> None:
        self.halt = halt
        self.calls: list[tuple[str, str, str]] = []
        self.settings = FakeDeskSettings(mode)
        self.book = Book()
        self.marks: dict[str, int] = {}

    def engage(self, detail: str, *, by: str) -> bool:
        self.calls.append(("engage", detail, by))
        if self.halt is not None:
            return False
        self.halt = FakeHalt("kill switch", detail, 12.5, automatic=False)
        return True

    def release(self, *, by: str) -> bool:
        self.calls.append(("release", "", by))
        released, self.halt = self.halt is not None, None
        return released


class FakeSocket:
    """A ``ClientSocket``: records what is sent. ``reading`` cleared → sends block (a
    client that stopped reading); ``hang_close`` → close never completes."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed: tuple[int, str | None] | None = None
        self.aborted = False
        self.reading = asyncio.Event()
        self.reading.set()
        self.hang_close = False
        self.fail_sends = False

    async def send_text(self, data: str) -> None:
        await self.reading.wait()
        if self.fail_sends:
            raise ConnectionResetError("peer reset (fake)")
        self.sent.append(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        if self.hang_close:
            await asyncio.Event().wait()
        self.closed = (code, reason)

    def abort(self) -> None:
        self.aborted = True

    def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        decoded = [json.loads(text) for text in self.sent]
        return [m for m in decoded if kind is None or m["type"] == kind]


async def settle(rounds: int = 20) -> None:
    """Let queued tasks (writers, the feed sync) run; no time passes."""
    for _ in range(rounds):
        await asyncio.sleep(0)
