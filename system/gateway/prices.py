"""Prices to /ws clients: from the realtime feed while it is live, from REST quotes otherwise.

``PriceUpdateBroadcaster`` listens to a ``PriceFeed`` (``system.market.model``) and to the
``ConnectionManager``'s topics:

- The first client subscribing to a ticker subscribes the feed to it; the last one leaving
  unsubscribes it — but only subscriptions the gateway made itself: a code the feed already
  carried (for the trading core, say) is left alone.
- Every feed price of a subscribed ticker goes to that ticker's subscribers as
  ``price_update``, keyed per ticker (a client that is behind gets the newest price).
- A new subscriber immediately gets the latest price known, from the feed or the fallback.
- While the feed is not ``live`` (and for tickers the feed refused), subscribed tickers are
  quoted through ``TradingService.quote`` every ``fallback_interval_s`` and sent with
  ``source: "rest"`` and ``stale: true``. A feed price is stale while the feed is not live.
- Every change of the feed's state goes to all clients as ``feed_status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from system.broker import Quote
from system.gateway.connections import ConnectionManager
from system.gateway.protocol import error, feed_status, is_ticker, price_update
from system.market.errors import FeedError
from system.market.model import FeedState, FeedStatus, PriceFeed, PriceUpdate
from system.market.resync import quote_resync

log = logging.getLogger(__name__)


class QuoteSource(Protocol):
    """What the fallback needs of ``TradingService``."""

    async def quote(self, code: str) -> Quote: ...


def _price_key(code: str) -> str:
    return f"price:{code}"


class PriceUpdateBroadcaster:
    """Feed prices and REST fallback prices to the subscribers of each ticker (see module)."""

    def __init__(
        self,
        manager: ConnectionManager,
        feed: PriceFeed,
        quotes: QuoteSource,
        *,
        fallback_interval_s: float = 5.0,
        quote_timeout_s: float = 10.0,
    ) -> None:
        self.manager = manager
        self.feed = feed
        self.quotes = quotes
        # The feed client's own REST resync makes the same PriceUpdate from a quote.
        self._resync = quote_resync(quotes.quote)
        self.fallback_interval_s = fallback_interval_s
        self.quote_timeout_s = quote_timeout_s
        self._state: FeedState = feed.status().state
        self._announced: tuple[FeedState, int, str] | None = None
        self._wanted: set[str] = set()  # tickers with subscribers
        self._subscribed: set[str] = set()  # of those, the ones the feed was asked for
        self._owned: set[str] = set()  # of those, the ones the gateway added to the feed
        self._refused: dict[str, str] = {}  # tickers the feed refused, and why
        self._fallback: dict[str, PriceUpdate] = {}  # the last REST price of each ticker
        self._sync_needed = asyncio.Event()
        self._fallback_due = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self.updates_sent = 0
        self.fallback_quotes = 0
        self.fallback_failures = 0
        self.feed_refusals = 0

    # -- life -----------------------------------------------------------------------------

    def start(self) -> None:
        """Listen to the feed and the manager's topics; start the sync and fallback tasks."""
        if self._running:
            return
        self._running = True
        self._state = self.feed.status().state
        self.feed.add_listener(self.on_price)
        self.feed.add_status_listener(self.on_status)
        self.manager.add_topic_listener(self.on_topic)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(
                _rounds(self._sync_needed, self.sync_feed, "syncing feed subscriptions"),
                name="gateway feed sync",
            ),
            loop.create_task(
                _rounds(
                    self._fallback_due,
                    self.fallback_round,
                    "REST fallback round",
                    every_s=self.fallback_interval_s,
                ),
                name="gateway REST fallback",
            ),
        ]

    async def stop(self) -> None:
        """Stop listening and release the feed subscriptions the gateway made."""
        if not self._running:
            return
        self._running = False
        # PriceFeed has no remove_status_listener: on_status ignores calls once stopped.
        self.feed.remove_listener(self.on_price)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for code in sorted(self._owned):
            try:
                await self.feed.unsubscribe(code)
            except Exception as exc:
                log.warning("gateway: releasing feed subscription %s failed: %r", code, exc)
        self._owned.clear()
        self._subscribed.clear()

    # -- what the page asks for -----------------------------------------------------------

    @property
    def state(self) -> FeedState:
        return self._state

    @property
    def wanted(self) -> frozenset[str]:
        return frozenset(self._wanted)

    @property
    def tasks(self) -> tuple[asyncio.Task[None], ...]:
        """The background tasks (feed sync, REST fallback) while started."""
        return tuple(self._tasks)

    @property
    def owned(self) -> frozenset[str]:
        """Feed subscriptions the gateway made (and releases when nobody wants them)."""
        return frozenset(self._owned)

    @property
    def refused(self) -> dict[str, str]:
        return dict(self._refused)

    def status_message(self) -> dict[str, object]:
        return feed_status(self.feed.status())

    def send_latest(self, client_id: str, code: str) -> bool:
        """Queue the latest known price of ``code`` for one client; False if none is known."""
        live = self.feed.latest(code)
        rest = self._fallback.get(code)
        if live is None and rest is None:
            return False
        if rest is not None and (live is None or rest.at > live.at):
            message = price_update(rest, stale=True)
        else:
            assert live is not None
            message = price_update(live, stale=self._state != "live")
        return self.manager.send(client_id, message, key=_price_key(code))

    # -- listeners (called synchronously by the feed and the manager) ---------------------

    def on_price(self, update: PriceUpdate) -> None:
        if update.code not in self._wanted:
            return
        stale = self._state != "live"
        if self.manager.broadcast(
            update.code, price_update(update, stale=stale), key=_price_key(update.code)
        ):
            self.updates_sent += 1

    def on_status(self, status: FeedStatus) -> None:
        if not self._running:
            return
        previous, self._state = self._state, status.state
        announced = (status.state, status.reconnects, status.detail)
        if announced != self._announced:
            self._announced = announced
            self.manager.broadcast_all(feed_status(status), key="feed_status")
        if status.state != "live" and previous == "live":
            self._fallback_due.set()  # the first fallback round now, not an interval later
        if status.state == "live" and previous != "live":
            self._sync_needed.set()  # a reconnected feed may take what it refused before
        # The server's refusals arrive after subscribe() returned: treat them as its own.
        refused = dict(status.refused)
        for code in sorted(self._wanted & refused.keys()):
            if self._refused.get(code) != refused[code]:
                self._refuse(code, refused[code])
        for code in [c for c in self._refused if c in self._subscribed and c not in refused]:
            del self._refused[code]  # taken on a new connection

    def on_topic(self, topic: str, active: bool) -> None:
        if not is_ticker(topic):
            return
        if active:
            self._wanted.add(topic)
            if self._state != "live":
                self._fallback_due.set()
        else:
            self._wanted.discard(topic)
            self._fallback.pop(topic, None)
            self._refused.pop(topic, None)
        self._sync_needed.set()

    # -- feed subscriptions ---------------------------------------------------------------

    async def sync_feed(self) -> None:
        """Subscribe the feed to wanted tickers and unsubscribe the ones nobody wants."""
        for code in sorted(self._wanted - self._subscribed):
            carried = code in self.feed.status().subscriptions
            try:
                await self.feed.subscribe(code)
            except Exception as exc:
                # Feed errors and ValueErrors are written to be shown; other texts could
                # quote anything (a credential), so only their type is.
                shown = isinstance(exc, FeedError | ValueError)
                self._refuse(code, str(exc) if shown else type(exc).__name__)
                continue
            self._refused.pop(code, None)
            self._subscribed.add(code)
            if not carried:
                self._owned.add(code)
        for code in sorted(self._subscribed - self._wanted):
            self._subscribed.discard(code)
            if code not in self._owned:
                continue
            self._owned.discard(code)
            try:
                await self.feed.unsubscribe(code)
            except Exception as exc:
                log.warning("gateway: unsubscribing %s from the feed failed: %r", code, exc)

    def _refuse(self, code: str, why: str) -> None:
        first = code not in self._refused
        self._refused[code] = why
        self.feed_refusals += 1
        log.warning("gateway: the feed refused %s: %s", code, why)
        if first:
            self.manager.broadcast(
                code,
                error(
                    "feed_subscribe_failed",
                    f"the realtime feed could not subscribe {code}: {why}; its prices come "
                    f"from REST quotes every {self.fallback_interval_s:g} s instead, marked "
                    "stale",
                ),
            )
        self._fallback_due.set()

    # -- REST fallback --------------------------------------------------------------------

    def fallback_codes(self) -> list[str]:
        """Tickers that need REST prices now: all wanted ones while the feed is not live,
        else the ones the feed refused."""
        if self._state != "live":
            return sorted(self._wanted)
        return sorted(code for code in self._wanted if code in self._refused)

    async def fallback_round(self) -> int:
        """Quote every ticker of ``fallback_codes`` once and send the prices, stale."""
        codes = self.fallback_codes()
        results = await asyncio.gather(*(self._quote(code) for code in codes))
        return sum(results)

    async def _quote(self, code: str) -> bool:
        try:
            async with asyncio.timeout(self.quote_timeout_s):
                update = await self._resync(code)
        except Exception as exc:
            self.fallback_failures += 1
            log.warning("gateway: fallback quote for %s failed: %r", code, exc)
            return False
        self.fallback_quotes += 1
        if code not in self._wanted:  # everyone left while the quote was on its way
            return False
        self._fallback[code] = update
        self.manager.broadcast(code, price_update(update, stale=True), key=_price_key(code))
        self.updates_sent += 1
        return True


async def _rounds(
    due: asyncio.Event,
    work: Callable[[], Awaitable[object]],
    what: str,
    *,
    every_s: float | None = None,
) -> None:
    """Run ``work`` whenever ``due`` is set (and every ``every_s`` regardless, if given),
    until cancelled; a failing round is logged and the next one runs as usual."""
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_s):
                await due.wait()
        due.clear()
        try:
            await work()
        except Exception:
            log.exception("gateway: %s failed", what)
