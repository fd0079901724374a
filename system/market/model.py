"""What the realtime feeds give the rest of the system: prices, books, currency-pair quotes
and the feeds' state.

These types are the seam between the feed clients (``system.market``) and their consumers
(the gateway's broadcasters, the trading desk). Consumers depend on ``PriceFeed`` (and on
``RateQuote`` listeners) only, so they are tested with fakes and never need a socket.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

PriceSource = Literal["feed", "rest"]
FeedState = Literal["connecting", "live", "stalled", "reconnecting", "stopped"]

# The number the ``feed_state`` metric carries; higher is further from live data.
FEED_STATE_CODES: dict[FeedState, int] = {
    "live": 0,
    "connecting": 1,
    "reconnecting": 2,
    "stalled": 3,
    "stopped": 4,
}


@dataclass(frozen=True)
class PriceUpdate:
    """The latest trade price of one stock.

    ``at`` is the loop time the system learned it; ``source`` says whether it came from the
    realtime feed or from a REST quote (the fallback while the feed is down, and the resync
    after a reconnect or a gap). ``volume`` is the day's accumulated volume.
    """

    code: str
    price: int
    change: int
    change_rate: float
    volume: int
    at: float
    source: PriceSource = "feed"
    # The exchange's time of the trade (HHMMSS, KST) when the feed gave it: how late the
    # update is can be told from it. None for a REST quote.
    traded_at: str | None = None


@dataclass(frozen=True)
class BookLevel:
    price: int
    quantity: int


@dataclass(frozen=True)
class OrderBook:
    """The best ``asks`` (lowest first) and ``bids`` (highest first) of one stock."""

    code: str
    asks: tuple[BookLevel, ...]
    bids: tuple[BookLevel, ...]
    at: float


@dataclass(frozen=True)
class FeedStatus:
    """Where the feed connection stands, for ``/health``, metrics and the dashboard.

    ``since`` is the loop time ``state`` began; ``last_message_at`` the loop time anything
    (data or heartbeat) last arrived; ``reconnects`` counts reconnections since start;
    ``refused`` the codes whose trades the server refused on this connection, with why
    (``subscribe`` returned long before: the answer comes later, over the socket).
    """

    state: FeedState
    since: float
    subscriptions: tuple[str, ...] = ()
    reconnects: int = 0
    last_message_at: float | None = None
    detail: str = ""
    refused: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RateQuote:
    """The best ``bid`` and ``ask`` of a currency pair ``"BASE/QUOTE"``: prices of one unit
    of BASE in QUOTE, at loop time ``at`` (when the system learned them). ``ValueError`` if
    the quote makes no sense."""

    pair: str
    bid: float
    ask: float
    at: float

    def __post_init__(self) -> None:
        base, slash, quote = self.pair.partition("/")
        if not (slash and base and quote and "/" not in quote and base != quote):
            raise ValueError(
                f"pair {self.pair!r} is not BASE/QUOTE with two different currencies; "
                'write it like "USD/KRW"'
            )
        if not (math.isfinite(self.bid) and math.isfinite(self.ask) and self.bid > 0):
            raise ValueError(
                f"{self.pair}: bid {self.bid} and ask {self.ask} must be finite and positive"
            )
        if self.ask < self.bid:
            raise ValueError(
                f"{self.pair}: ask {self.ask} is below bid {self.bid}; a crossed quote is bad "
                "data, and pricing it would report an arbitrage that is not there"
            )

    @property
    def base(self) -> str:
        return self.pair.partition("/")[0]

    @property
    def quote(self) -> str:
        return self.pair.partition("/")[2]


PriceListener = Callable[[PriceUpdate], None]
RateListener = Callable[[RateQuote], None]
StatusListener = Callable[[FeedStatus], None]


class PriceFeed(Protocol):
    """A source of live prices the gateway and the trading core consume.

    Listeners are called synchronously, in the feed's task, for every update; they must not
    block (a broadcaster puts the update on its own queues and returns).
    """

    def add_listener(self, listener: PriceListener) -> None: ...

    def remove_listener(self, listener: PriceListener) -> None: ...

    def add_status_listener(self, listener: StatusListener) -> None: ...

    async def subscribe(self, code: str) -> None:
        """Start receiving ``code`` (6 digits); idempotent."""

    async def unsubscribe(self, code: str) -> None:
        """Stop receiving ``code``; idempotent."""

    def latest(self, code: str) -> PriceUpdate | None:
        """The last price known for ``code``, or None."""

    def book(self, code: str) -> OrderBook | None:
        """The last order book known for ``code``, or None."""

    def status(self) -> FeedStatus: ...

    def metrics(self) -> dict[str, float]:
        """Counters with stable names (``feed_*``), for ``/metrics`` and scenarios."""
