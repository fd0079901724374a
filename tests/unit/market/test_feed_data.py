"""What the feed client makes of the data: prices, books, multi-record frames, malformed
frames, duplicates, gaps and REST resyncs, listeners and metrics."""

from __future__ import annotations

import asyncio

import pytest

from system.broker import BrokerUnavailable, Quote
from system.market import (
    BookLevel,
    FeedClient,
    OrderBook,
    PriceUpdate,
    metric_names,
    quote_resync,
)
from tests.unit.market.conftest import (
    ASKP1,
    FakeConnection,
    FakeServer,
    Quotes,
    book_record,
    frame,
    now,
    trade_record,
    trades,
)

pytestmark = pytest.mark.looptime


async def live(
    feed: FeedClient, server: FakeServer, *codes: str, book: bool = False
) -> FakeConnection:
    """Start ``feed`` with ``codes`` subscribed; its first connection, acks read."""
    for code in codes:
        await feed.subscribe(code, book=book)
    feed.start()
    return await server.connection(1)


def heard(feed: FeedClient) -> list[PriceUpdate]:
    updates: list[PriceUpdate] = []
    feed.add_listener(updates.append)
    return updates


async def test_a_trade_becomes_a_price_update(feed: FeedClient, server: FakeServer) -> None:
    updates = heard(feed)
    connection = await live(feed, server, "005930")
    connection.push(trades(trade_record(sign="5", change="400", rate="-0.55")))
    await connection.delivered()
    expected = PriceUpdate(
        "005930", 71900, -400, -0.55, 1000, at=now(), source="feed", traded_at="093354"
    )
    assert updates == [expected]
    assert feed.latest("005930") == expected
    assert feed.latest("000660") is None
    assert feed.status().last_message_at == now()


async def test_every_record_of_a_multi_record_frame_is_used_in_order(
    feed: FeedClient, server: FakeServer
) -> None:
    updates = heard(feed)
    connection = await live(feed, server, "005930", "000660")
    connection.push(
        trades(
            trade_record(accumulated=1000, price="71900"),
            trade_record("000660", volume=3, accumulated=300, price="180000"),
            trade_record(volume=5, accumulated=1005, price="72000"),
        )
    )
    await connection.delivered()
    assert [(u.code, u.price, u.volume) for u in updates] == [
        ("005930", 71900, 1000),
        ("000660", 180000, 300),
        ("005930", 72000, 1005),
    ]
    metrics = feed.metrics()
    assert (metrics["feed_frames"], metrics["feed_records"], metrics["feed_trades"]) == (
        1.0,
        3.0,
        3.0,
    )
    assert metrics["feed_gaps"] == 0.0


async def test_books_are_kept_per_code(feed: FeedClient, server: FakeServer) -> None:
    updates = heard(feed)
    connection = await live(feed, server, "005930", book=True)
    connection.push(frame("H0STASP0", book_record(**{f"f{ASKP1 + 9}": "0"})))
    await connection.delivered()
    book = feed.book("005930")
    assert book == OrderBook(
        code="005930",
        asks=tuple(BookLevel(71900 + 100 * i, 1000 + i) for i in range(9)),
        bids=tuple(BookLevel(71800 - 100 * i, 2000 + i) for i in range(10)),
        at=now(),
    )
    assert updates == []  # a book is not a trade
    assert feed.metrics()["feed_books"] == 1.0


async def test_a_book_for_a_code_subscribed_without_books_is_ignored(
    feed: FeedClient, server: FakeServer
) -> None:
    connection = await live(feed, server, "005930")
    connection.push(frame("H0STASP0", book_record()))
    await connection.delivered()
    assert feed.book("005930") is None
    assert feed.metrics()["feed_books"] == 0.0


@pytest.mark.parametrize(
    "garbage",
    [
        "not a frame",
        '{"header": {"tr_id": "H0STCNT0"',
        "0|H0STCNT0|002|" + trade_record(),
        "0|H0STXXX0|001|a^b",
        "0|H0STCNT0|001",
        '{"header":' * 5000,  # nested past the JSON reader's limit: it used to end the connection
        # One bad record spoils its whole frame: nothing of it is used.
        trades(trade_record(accumulated=1010), trade_record(accumulated=1020, price="-1")),
    ],
)
async def test_a_malformed_message_is_dropped_and_counted_and_reading_goes_on(
    feed: FeedClient, server: FakeServer, garbage: str
) -> None:
    updates = heard(feed)
    connection = await live(feed, server, "005930")
    connection.push(trades(trade_record(accumulated=1000)))
    await connection.delivered()
    quiet_since = feed.status().last_message_at
    connection.push(garbage)
    await connection.delivered()
    assert feed.status().last_message_at == quiet_since  # garbage is not a sign of life
    connection.push(trades(trade_record(volume=30, accumulated=1030)))
    await connection.delivered()
    assert [u.volume for u in updates] == [1000, 1030]
    metrics = feed.metrics()
    assert (metrics["feed_malformed_frames"], metrics["feed_trades"]) == (1.0, 2.0)
    assert metrics["feed_gaps"] == 0.0
    assert feed.status().state == "live"
    assert len(server.connections) == 1


async def test_an_encrypted_frame_is_counted_not_read(feed: FeedClient, server: FakeServer) -> None:
    connection = await live(feed, server, "005930")
    connection.push("1|H0STCNI0|001|c2VjcmV0IGZpbGw=")
    await connection.delivered()
    metrics = feed.metrics()
    assert (metrics["feed_frames"], metrics["feed_encrypted_frames"]) == (1.0, 1.0)
    assert (metrics["feed_records"], metrics["feed_malformed_frames"]) == (0.0, 0.0)


async def test_repeated_and_older_trades_are_dropped_as_duplicates(
    feed: FeedClient, server: FakeServer, quotes: Quotes
) -> None:
    updates = heard(feed)
    connection = await live(feed, server, "005930")
    connection.push(
        trades(trade_record(accumulated=1000), trade_record(volume=10, accumulated=1010)),
        trades(trade_record(volume=10, accumulated=1010)),  # the same trade again
        trades(trade_record(accumulated=1000)),  # an older one, late
        trades(trade_record(volume=5, accumulated=1015)),
    )
    await connection.delivered()
    assert [u.volume for u in updates] == [1000, 1010, 1015]
    metrics = feed.metrics()
    assert (metrics["feed_duplicates"], metrics["feed_gaps"], metrics["feed_trades"]) == (
        2.0,
        0.0,
        3.0,
    )
    assert metrics["feed_records"] == 5.0
    assert quotes.calls == []


async def test_a_gap_keeps_the_trade_and_resyncs_the_code_from_rest(
    feed: FeedClient, server: FakeServer, quotes: Quotes
) -> None:
    updates = heard(feed)
    connection = await live(feed, server, "005930", "000660")
    connection.push(
        trades(trade_record(accumulated=1000), trade_record("000660", accumulated=50)),
        trades(trade_record(volume=10, accumulated=1500, price="72300")),  # 490 shares missed
    )
    await connection.delivered()
    assert quotes.calls == [("005930", now())]
    assert [(u.code, u.source, u.price, u.volume) for u in updates] == [
        ("005930", "feed", 71900, 1000),
        ("000660", "feed", 71900, 50),
        ("005930", "feed", 72300, 1500),
        ("005930", "rest", 72500, 5000),
    ]
    assert feed.latest("005930") == PriceUpdate(
        "005930", 72500, 1000, 1.4, 5000, at=now(), source="rest"
    )
    metrics = feed.metrics()
    assert (metrics["feed_gaps"], metrics["feed_resyncs"], metrics["feed_trades"]) == (
        1.0,
        1.0,
        3.0,
    )


async def test_one_resync_at_a_time_per_code(
    feed: FeedClient, server: FakeServer, quotes: Quotes
) -> None:
    quotes.delay = 2.0
    connection = await live(feed, server, "005930")
    connection.push(
        trades(trade_record(accumulated=1000)),
        trades(trade_record(volume=10, accumulated=2000)),
        trades(trade_record(volume=10, accumulated=3000)),
    )
    await connection.delivered()
    assert len(quotes.calls) == 1
    assert feed.metrics()["feed_gaps"] == 2.0
    await quotes_answered(connection)
    connection.push(trades(trade_record(volume=10, accumulated=9000)))
    await connection.delivered()
    assert [code for code, _ in quotes.calls] == ["005930", "005930"]


async def quotes_answered(connection: FakeConnection) -> None:
    """Let virtual time run past the fake REST delay."""
    await asyncio.sleep(2.5)
    await connection.delivered()


async def test_a_rest_quote_older_than_the_feed_is_not_published(
    feed: FeedClient, server: FakeServer, quotes: Quotes
) -> None:
    updates = heard(feed)
    quotes.volume = 1400  # the REST answer predates the gap's trade (1500)
    connection = await live(feed, server, "005930")
    connection.push(
        trades(trade_record(accumulated=1000)),
        trades(trade_record(volume=10, accumulated=1500)),
    )
    await connection.delivered()
    assert [u.source for u in updates] == ["feed", "feed"]
    assert feed.latest("005930") == updates[-1]
    metrics = feed.metrics()
    assert (metrics["feed_resyncs"], metrics["feed_resyncs_stale"]) == (1.0, 1.0)


async def test_a_failed_resync_is_counted_and_the_feed_goes_on(
    feed: FeedClient, server: FakeServer, quotes: Quotes
) -> None:
    updates = heard(feed)
    quotes.error = BrokerUnavailable("GET /uapi/…/inquire-price: the broker is unavailable")
    connection = await live(feed, server, "005930")
    connection.push(
        trades(trade_record(accumulated=1000)),
        trades(trade_record(volume=10, accumulated=1500)),
    )
    await connection.delivered()
    connection.push(trades(trade_record(volume=10, accumulated=1510)))
    await connection.delivered()
    assert [(u.source, u.volume) for u in updates] == [
        ("feed", 1000),
        ("feed", 1500),
        ("feed", 1510),
    ]
    metrics = feed.metrics()
    assert (metrics["feed_resync_failures"], metrics["feed_resyncs"]) == (1.0, 0.0)
    assert feed.status().state == "live"


async def test_a_failing_listener_is_counted_and_the_others_still_hear(
    feed: FeedClient, server: FakeServer
) -> None:
    def broken(update: PriceUpdate) -> None:
        raise RuntimeError("broadcaster bug")

    feed.add_listener(broken)
    updates = heard(feed)
    connection = await live(feed, server, "005930")
    connection.push(trades(trade_record(accumulated=1000)))
    await connection.delivered()
    assert len(updates) == 1
    assert feed.metrics()["feed_listener_errors"] == 1.0
    feed.remove_listener(broken)
    feed.remove_listener(broken)  # idempotent
    connection.push(trades(trade_record(volume=10, accumulated=1010)))
    await connection.delivered()
    assert (len(updates), feed.metrics()["feed_listener_errors"]) == (2, 1.0)


async def test_metric_names_are_stable(feed: FeedClient) -> None:
    names = (
        "feed_frames",
        "feed_records",
        "feed_trades",
        "feed_books",
        "feed_duplicates",
        "feed_gaps",
        "feed_resyncs",
        "feed_resyncs_stale",
        "feed_resync_failures",
        "feed_malformed_frames",
        "feed_encrypted_frames",
        "feed_pingpongs",
        "feed_connect_attempts",
        "feed_connect_failures",
        "feed_reconnects",
        "feed_stalls",
        "feed_subscriptions_rejected",
        "feed_sessions_refused",
        "feed_listener_errors",
        "feed_subscriptions",
        "feed_subscriptions_active",
        "feed_state",
    )
    assert metric_names() == names
    assert tuple(feed.metrics()) == names
    assert set(feed.metrics().values()) == {0.0, 4.0}  # nothing yet; state 4 = stopped


async def test_quote_resync_turns_a_rest_quote_into_a_rest_update() -> None:
    async def get_price(code: str) -> Quote:
        return Quote(code, 71000, -500, -0.7, 12345, 71500, 71600, 70900, 92900, 50100, 71500, 100)

    update = await quote_resync(get_price)("005930")
    assert update == PriceUpdate("005930", 71000, -500, -0.7, 12345, at=now(), source="rest")
