"""PriceUpdateBroadcaster: feed subscriptions follow the topics; prices reach subscribers;
REST quotes stand in, marked stale, while the feed is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from system.broker.clock import loop_time
from system.gateway import ConnectionManager, PriceUpdateBroadcaster
from system.market.errors import SubscriptionLimitExceeded
from tests.unit.gateway.fakes import FakeFeed, FakeService, FakeSocket, settle

pytestmark = pytest.mark.looptime


@dataclass
class Parts:
    manager: ConnectionManager
    feed: FakeFeed
    service: FakeService
    prices: PriceUpdateBroadcaster

    def join(self, *tickers: str) -> FakeSocket:
        socket = FakeSocket()
        client = self.manager.connect(socket)
        for ticker in tickers:
            self.manager.subscribe(client, ticker)
            self.prices.send_latest(client, ticker)
        return socket

    def leave(self, socket: FakeSocket) -> None:
        for client_id in self.manager.client_ids:
            client = self.manager.client(client_id)
            if client is not None and client.socket is socket:
                self.manager.disconnect(client_id)


@pytest.fixture
async def parts() -> AsyncIterator[Parts]:
    manager = ConnectionManager()
    feed = FakeFeed()
    service = FakeService({"005930": 80100, "000660": 182500})
    prices = PriceUpdateBroadcaster(
        manager, feed, service, fallback_interval_s=5, quote_timeout_s=2
    )
    prices.start()
    yield Parts(manager, feed, service, prices)
    await prices.stop()


def prices_of(socket: FakeSocket) -> list[tuple[str, int, str, bool]]:
    return [
        (m["ticker"], m["data"]["price"], m["data"]["source"], m["data"]["stale"])
        for m in socket.messages("price_update")
    ]


async def test_add_ticker(parts: Parts) -> None:
    parts.join("005930")
    parts.join("005930")
    await settle()
    assert parts.feed.calls == [("subscribe", "005930")]  # once, for the first subscriber
    assert parts.prices.wanted == {"005930"}
    assert parts.prices.owned == {"005930"}


async def test_remove_ticker(parts: Parts) -> None:
    first, second = parts.join("005930"), parts.join("005930")
    await settle()
    parts.leave(first)
    await settle()
    assert parts.feed.calls == [("subscribe", "005930")]
    parts.leave(second)
    await settle()
    assert parts.feed.calls == [("subscribe", "005930"), ("unsubscribe", "005930")]
    assert parts.prices.wanted == frozenset()


async def test_a_code_the_feed_already_carried_is_never_unsubscribed() -> None:
    manager, feed = ConnectionManager(), FakeFeed(carried=("005930",))
    prices = PriceUpdateBroadcaster(manager, feed, FakeService())
    prices.start()
    client = manager.connect(FakeSocket())
    manager.subscribe(client, "005930")
    await settle()
    manager.disconnect(client)
    await settle()
    await prices.stop()
    assert feed.calls == [("subscribe", "005930")]
    assert feed.subscriptions == ["005930"]  # the trading core still has its prices


async def test_feed_prices_reach_only_the_ticker_subscribers(parts: Parts) -> None:
    samsung, hynix = parts.join("005930"), parts.join("000660")
    await settle()
    parts.feed.emit("005930", 80200, change=200)
    parts.feed.emit("000660", 182600, change=100)
    parts.feed.emit("035420", 214000)  # nobody asked for it
    await settle()
    assert samsung.messages("price_update") == [
        {
            "type": "price_update",
            "ticker": "005930",
            "data": {
                "price": 80200,
                "change": 200,
                "change_rate": 0.25,
                "volume": 1000,
                "source": "feed",
                "stale": False,
                "at": loop_time(),
            },
        }
    ]
    assert prices_of(hynix) == [("000660", 182600, "feed", False)]
    assert parts.prices.updates_sent == 2


async def test_get_cached_price(parts: Parts) -> None:
    parts.join("005930")
    await settle()
    parts.feed.emit("005930", 80300)
    late = parts.join("005930")  # a new subscriber gets the latest price at once
    await settle()
    assert prices_of(late) == [("005930", 80300, "feed", False)]


async def test_a_ticker_without_a_known_price_sends_nothing_on_subscribe(parts: Parts) -> None:
    socket = parts.join("005930")
    await settle()
    assert socket.messages("price_update") == []


async def test_fetch_prices_from_rest_fallback_while_the_feed_reconnects(parts: Parts) -> None:
    socket = parts.join("005930", "000660")
    await settle()
    start = loop_time()
    parts.feed.set_state("reconnecting", "connection reset")
    await asyncio.sleep(0.1)
    # The first round runs at once, then one every fallback interval.
    assert prices_of(socket) == [
        ("000660", 182500, "rest", True),
        ("005930", 80100, "rest", True),
    ]
    await asyncio.sleep(12)
    calls = [(round(at - start, 1), code) for at, code in parts.service.calls]
    assert calls == [
        (0.0, "000660"),
        (0.0, "005930"),
        (5.0, "000660"),
        (5.0, "005930"),
        (10.0, "000660"),
        (10.0, "005930"),
    ]
    assert socket.messages("feed_status") == [
        {
            "type": "feed_status",
            "state": "reconnecting",
            "stale": True,
            "since": start,
            "reconnects": 0,
            "detail": "connection reset",
        }
    ]


async def test_feed_prices_are_stale_while_the_feed_is_not_live_and_fresh_again_after(
    parts: Parts,
) -> None:
    socket = parts.join("005930")
    await settle()
    parts.feed.set_state("stalled")
    parts.feed.emit("005930", 80500)
    await settle()  # delivered before the next one could replace it in the queue
    parts.feed.set_state("live")
    parts.feed.emit("005930", 80600)
    await asyncio.sleep(0.1)
    assert [p for p in prices_of(socket) if p[2] == "feed"] == [
        ("005930", 80500, "feed", True),
        ("005930", 80600, "feed", False),
    ]
    assert [m["state"] for m in socket.messages("feed_status")] == ["stalled", "live"]


async def test_the_fallback_stops_when_the_feed_is_live_again(parts: Parts) -> None:
    parts.join("005930")
    await settle()
    parts.feed.set_state("reconnecting")
    await asyncio.sleep(6)
    parts.feed.set_state("live")
    before = len(parts.service.calls)
    await asyncio.sleep(30)
    assert (before, len(parts.service.calls)) == (2, 2)


async def test_a_new_subscriber_while_the_feed_is_down_gets_a_rest_price_promptly(
    parts: Parts,
) -> None:
    parts.feed.set_state("reconnecting")
    await asyncio.sleep(1)
    socket = parts.join("005930")
    await asyncio.sleep(0.1)
    assert prices_of(socket) == [("005930", 80100, "rest", True)]
    late = parts.join("005930")  # the REST price is the latest one known
    await settle()
    assert prices_of(late) == [("005930", 80100, "rest", True)]


async def test_a_failed_fallback_quote_is_counted_and_sends_nothing(parts: Parts) -> None:
    socket = parts.join("005930")
    await settle()
    parts.service.failing.add("005930")
    parts.feed.set_state("reconnecting")
    await asyncio.sleep(0.1)
    assert prices_of(socket) == []
    assert (parts.prices.fallback_failures, parts.prices.fallback_quotes) == (1, 0)


async def test_a_slow_fallback_quote_is_given_up_after_the_timeout(parts: Parts) -> None:
    parts.join("005930")
    await settle()
    parts.service.delay = 60
    parts.feed.set_state("reconnecting")
    await asyncio.sleep(2.5)
    assert parts.prices.fallback_failures == 1


async def test_a_ticker_the_feed_refuses_is_reported_and_served_from_rest() -> None:
    manager, feed = ConnectionManager(), FakeFeed()
    refusal = SubscriptionLimitExceeded(code="000660", wanted=1, limit=40)
    feed.refuse["000660"] = refusal
    prices = PriceUpdateBroadcaster(manager, feed, FakeService({"000660": 182500}))
    prices.start()
    socket = FakeSocket()
    client = manager.connect(socket)
    manager.subscribe(client, "000660")
    await asyncio.sleep(0.1)
    (error,) = socket.messages("error")
    assert error["code"] == "feed_subscribe_failed"
    assert error["message"].startswith(
        "the realtime feed could not subscribe 000660: cannot subscribe 000660: it needs 1 more"
    )
    assert error["message"].endswith(
        "its prices come from REST quotes every 5 s instead, marked stale"
    )
    assert prices_of(socket) == [("000660", 182500, "rest", True)]
    assert prices.refused == {"000660": refusal.message}
    await prices.stop()


async def test_a_ticker_the_feed_server_refuses_later_is_reported_and_served_from_rest() -> None:
    # subscribe() succeeds; the server's error ack arrives afterwards, in the feed's status.
    manager, feed = ConnectionManager(), FakeFeed()
    prices = PriceUpdateBroadcaster(manager, feed, FakeService({"000660": 182500}))
    prices.start()
    socket = FakeSocket()
    client = manager.connect(socket)
    manager.subscribe(client, "000660")
    await asyncio.sleep(0.1)
    assert socket.messages("error") == []
    feed.server_refuses("000660", "OPSP0008 MAX SUBSCRIBE OVER")
    await asyncio.sleep(0.1)
    (error,) = socket.messages("error")
    assert error["code"] == "feed_subscribe_failed"
    assert "could not subscribe 000660: OPSP0008 MAX SUBSCRIBE OVER" in error["message"]
    assert prices_of(socket) == [("000660", 182500, "rest", True)]
    assert prices.refused == {"000660": "OPSP0008 MAX SUBSCRIBE OVER"}
    feed.server_refuses("000660", None)  # taken on the next connection
    assert prices.refused == {}
    await asyncio.sleep(10)
    assert prices_of(socket) == [("000660", 182500, "rest", True)]  # no more fallback
    await prices.stop()


async def test_stop_releases_the_feed_and_stops_listening(parts: Parts) -> None:
    socket = parts.join("005930")
    await settle()
    await parts.prices.stop()
    assert parts.feed.calls == [("subscribe", "005930"), ("unsubscribe", "005930")]
    parts.feed.emit("005930", 1)
    parts.feed.set_state("reconnecting")
    await asyncio.sleep(10)
    assert socket.messages("price_update") == socket.messages("feed_status") == []
    assert parts.service.calls == []
